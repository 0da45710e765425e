"""Keyset (seek) cursor pagination: no COUNT(*) and no OFFSET, so page N costs what page 1 costs."""

import base64
import binascii
import uuid
from datetime import UTC, datetime

import orjson
from django.core.paginator import Paginator
from django.db import connections
from django.db.models import DateTimeField, F, Q, Value
from django.db.models.functions import Coalesce
from django.utils.functional import cached_property
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import BasePagination
from rest_framework.response import Response
from rest_framework.utils.urls import replace_query_param

__all__ = ["EstimatedCountPaginator", "KeysetCursorPagination", "nullable_sort_key"]

# Nulls sort as the epoch so a nullable column (last_login) still gives a total order with the id.
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def nullable_sort_key(field: str) -> Coalesce:
    """Return the sort key of a nullable datetime column (nulls as the epoch); index this same expression."""
    return Coalesce(F(field), Value(EPOCH, output_field=DateTimeField()))


class KeysetCursorPagination(BasePagination):
    """Page by the ``ordering`` field plus the primary key; the cursor is the last row's (value, id).

    The view declares ``ordering_fields`` (name -> "text" | "datetime" | "nullable_datetime") and
    ``default_ordering`` ("-date_joined").
    """

    page_size = 20
    max_page_size = 100
    page_size_query_param = "page_size"
    cursor_query_param = "cursor"
    ordering_query_param = "ordering"

    def paginate_queryset(self, queryset, request, view=None):
        self.request = request
        self.base_url = request.build_absolute_uri()
        self.page_size = self._page_size(request)
        self.ordering = request.query_params.get(self.ordering_query_param) or view.default_ordering
        field = self.ordering.lstrip("-")
        kind = view.ordering_fields.get(field)
        if kind is None or self.ordering.count("-") > 1:
            raise ValidationError(
                {"ordering": [f"Choose one of: {', '.join(view.ordering_fields)} (prefix - to reverse)."]}
            )
        self.kind = kind
        descending = self.ordering.startswith("-")
        cursor = self._decode_cursor(request.query_params.get(self.cursor_query_param))

        key = nullable_sort_key(field) if kind == "nullable_datetime" else F(field)
        queryset = queryset.annotate(_sort_key=key)
        backwards = cursor is not None and cursor["d"] == "p"
        ascending = descending == backwards
        if cursor is not None:
            op = "gt" if ascending else "lt"
            value = cursor["v"]
            # (key, pk) > (v, id), written so the planner can range-scan the (key, pk) index on key >= v.
            queryset = queryset.filter(
                Q(**{f"_sort_key__{op}e": value}),
                Q(**{f"_sort_key__{op}": value}) | Q(**{f"pk__{op}": cursor["id"]}),
            )
        order = ("_sort_key", "pk") if ascending else ("-_sort_key", "-pk")
        rows = list(queryset.order_by(*order)[: self.page_size + 1])
        has_more = len(rows) > self.page_size
        rows = rows[: self.page_size]
        if backwards:
            rows.reverse()
            self.has_next, self.has_previous = True, has_more
        else:
            self.has_next, self.has_previous = has_more, cursor is not None
        self.page = rows
        return rows

    def get_paginated_response(self, data):
        return Response({"next": self._link("n"), "previous": self._link("p"), "results": data})

    def get_paginated_response_schema(self, schema):
        return {
            "type": "object",
            "required": ["next", "previous", "results"],
            "properties": {
                "next": {"type": "string", "nullable": True, "format": "uri"},
                "previous": {"type": "string", "nullable": True, "format": "uri"},
                "results": schema,
            },
        }

    def get_schema_operation_parameters(self, view):
        return [
            {
                "name": self.cursor_query_param,
                "required": False,
                "in": "query",
                "description": "The opaque cursor of a `next` or `previous` link.",
                "schema": {"type": "string"},
            },
            {
                "name": self.page_size_query_param,
                "required": False,
                "in": "query",
                "allowEmptyValue": False,  # ?page_size= is a 400, unlike the other query parameters
                "description": f"Results per page (default {self.page_size}; over {self.max_page_size} is capped).",
                # Capped, not refused (the contract): so no "maximum" here, which would tell clients to expect a 400.
                "schema": {"type": "integer", "minimum": 1},
            },
        ]

    def _page_size(self, request) -> int:
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None:
            return self.page_size
        try:
            size = int(raw)
        except ValueError:
            raise ValidationError({"page_size": ["A whole number is required."]}) from None
        if size < 1:
            raise ValidationError({"page_size": ["Must be at least 1."]})
        return min(size, self.max_page_size)

    def _link(self, direction: str) -> str | None:
        if not self.page or not (self.has_next if direction == "n" else self.has_previous):
            return None
        row = self.page[-1] if direction == "n" else self.page[0]
        value = row._sort_key
        payload = {
            "o": self.ordering,
            "d": direction,
            "v": value.isoformat() if isinstance(value, datetime) else value,
            "id": str(row.pk),
        }
        token = base64.urlsafe_b64encode(orjson.dumps(payload)).decode().rstrip("=")
        return replace_query_param(self.base_url, self.cursor_query_param, token)

    def _decode_cursor(self, raw: str | None) -> dict | None:
        if not raw:
            return None
        invalid = ValidationError({"cursor": ["Invalid cursor."]})
        try:
            payload = orjson.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
            if (
                not isinstance(payload, dict)
                or payload.get("o") != self.ordering
                or payload.get("d") not in ("n", "p")
            ):
                raise invalid
            payload["id"] = uuid.UUID(str(payload["id"]))
            if self.kind == "text":
                if not isinstance(payload["v"], str):
                    raise invalid
            else:
                payload["v"] = datetime.fromisoformat(str(payload["v"]))
                if payload["v"].tzinfo is None:
                    raise invalid
        except (ValueError, KeyError, TypeError, binascii.Error, orjson.JSONDecodeError):
            raise invalid from None
        return payload


class EstimatedCountPaginator(Paginator):
    """A Django admin paginator that never scans a large table to count it.

    Unfiltered, on PostgreSQL, the count is the planner's estimate (pg_class.reltuples, kept fresh by
    autovacuum) once the table is large; filtered, it counts at most ``max_count`` + 1 rows.
    """

    max_count = 10_000

    @cached_property
    def count(self) -> int:
        queryset = self.object_list
        connection = connections[queryset.db]
        if not queryset.query.where and connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT reltuples::bigint FROM pg_class WHERE oid = %s::regclass", [queryset.model._meta.db_table]
                )
                row = cursor.fetchone()
            if row and row[0] > self.max_count:
                return int(row[0])
        return queryset.order_by()[: self.max_count + 1].count()
