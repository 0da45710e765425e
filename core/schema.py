"""OpenAPI pieces: the error envelope component and a hook that documents every error response."""

from drf_spectacular.utils import OpenApiResponse, inline_serializer
from rest_framework import serializers

__all__ = ["ERROR_DESCRIPTIONS", "ErrorEnvelopeSerializer", "add_error_responses", "errors", "strip_trailing_slashes"]


class ErrorEnvelopeSerializer(serializers.Serializer):
    success = serializers.BooleanField(default=False)
    error = serializers.CharField(help_text="Human readable message.")
    code = serializers.CharField(help_text="Machine readable code, e.g. validation_error, token_not_valid.")
    details = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        required=False,
        help_text="Only for validation_error: field -> messages (non_field_errors for the whole body).",
    )
    request_id = serializers.CharField(help_text="The X-Request-ID of this response.")

    class Meta:
        ref_name = "ErrorEnvelope"


ERROR_DESCRIPTIONS = {
    400: "validation_error (with details), parse_error (malformed JSON) or bad_request",
    401: "not_authenticated (no Bearer credentials) or token_not_valid (bad, expired or revoked token)",
    403: "permission_denied",
    404: "not_found (unknown URL or object, or an object the caller may not see)",
    405: "method_not_allowed",
    413: "payload_too_large (body over the configured limit, default 1 MiB)",
    415: "unsupported_media_type (bodies are application/json only)",
    429: "rate_limited; the Retry-After header gives the seconds to wait",
    500: "server_error (generic message only)",
    503: "service_unavailable (database or cache needed and down)",
}

DetailSerializer = inline_serializer("Detail", fields={"detail": serializers.CharField()})


def errors(*statuses: int, **descriptions: str) -> dict:
    """Return extend_schema ``responses`` entries for these error statuses."""
    return {
        status: OpenApiResponse(
            ErrorEnvelopeSerializer, description=descriptions.get(f"e{status}", ERROR_DESCRIPTIONS[status])
        )
        for status in statuses
    }


def add_error_responses(result, generator, request, public):
    """Postprocessing hook: give every operation the envelope for the errors any request can meet."""
    envelope = {"$ref": "#/components/schemas/ErrorEnvelope"}
    for path, methods in result.get("paths", {}).items():
        for operation in methods.values():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            statuses = [405, 429, 500, 503]
            if operation.get("security") and {} not in operation["security"]:
                statuses.append(401)
            query = [p for p in operation.get("parameters", []) if p.get("in") == "query"]
            for parameter in query:
                # An empty query parameter (?ordering=) means the parameter is not given.
                parameter.setdefault("allowEmptyValue", True)
            if query:
                statuses.append(400)  # a filter, cursor or ordering that is not valid
            if "requestBody" in operation:
                statuses += [400, 413, 415]
            if "{" in path:
                statuses.append(404)
            for status in dict.fromkeys(statuses):
                operation["responses"].setdefault(
                    str(status),
                    {"description": ERROR_DESCRIPTIONS[status], "content": {"application/json": {"schema": envelope}}},
                )
    return result


def strip_trailing_slashes(result, generator, request, public):
    """Postprocessing hook: name API paths as the contract does (``/api/v1/users``; the slash form also works)."""
    result["paths"] = {
        (path.rstrip("/") if path.startswith("/api/v1/") else path): item for path, item in result["paths"].items()
    }
    return result
