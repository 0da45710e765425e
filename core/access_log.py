"""AccessLogMiddleware: one access line per request (JSON or text) and the request metrics, from one place."""

import functools
import os
import re
import time
from datetime import UTC, datetime

from django.conf import settings
from django.utils.functional import SimpleLazyObject, empty

from core.logging import write_access_line
from core.metrics import observe_request
from core.ratelimit import client_ip

__all__ = ["AccessLogMiddleware", "route_template"]

# Routes answered by middleware before URL resolution keep their own path as template.
MIDDLEWARE_ROUTES = {
    "/healthz": "/healthz",
    "/healthz/": "/healthz",
    "/readyz": "/readyz",
    "/readyz/": "/readyz",
    "/metrics": "/metrics",
    "/metrics/": "/metrics",
}
UNMATCHED = "unmatched"  # one label for every unknown URL: raw paths would make a series per scanner probe

_REGEX_GROUP_RE = re.compile(r"\(\?P<(\w+)>(?:[^()]|\([^()]*\))*\)")
_CONVERTER_RE = re.compile(r"<(?:\w+:)?(\w+)>")


@functools.lru_cache(maxsize=1024)
def route_template(route: str) -> str:
    """Return the URL pattern a request matched as ``/api/v1/users/{id}`` (``pk`` is named ``id``)."""

    def name(match: re.Match) -> str:
        return "{id}" if match[1] == "pk" else "{" + match[1] + "}"

    template = _REGEX_GROUP_RE.sub(name, route)
    template = _CONVERTER_RE.sub(name, template)
    template = template.replace("/?", "").replace("^", "").replace("$", "").replace("\\", "")
    return "/" + template.lstrip("/")


def _user_id(request) -> str | None:
    """Return the id of the authenticated caller without loading anything that was not loaded already."""
    user = request.__dict__.get("user")
    if isinstance(user, SimpleLazyObject):
        # Django's session user, evaluated only if the view needed it: never a query for the log's sake.
        user = user._wrapped if user._wrapped is not empty else None
    if user is None or not getattr(user, "is_authenticated", False):
        return None
    return str(user.pk)


class AccessLogMiddleware:
    """Write one access line per request and observe its count and latency by route template.

    Placed right after RequestIdMiddleware, it sees every answer, the middleware ones (health, /metrics,
    429) included, with its final status. The line holds method, route template, path (never the query
    string, which may carry secrets), status, duration in ms, request id, user id, client IP and response
    size; never a header or a body.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        start = getattr(request, "start_time", None) or time.perf_counter()
        response = self.get_response(request)
        duration = time.perf_counter() - start
        match = getattr(request, "resolver_match", None)
        if match is not None and match.route:
            route = route_template(match.route)
        else:
            route = MIDDLEWARE_ROUTES.get(request.path_info, UNMATCHED)
        status = response.status_code
        observe_request(route, request.method, status, duration)
        if settings.ACCESS_LOG:
            self.write(request, response, route, status, duration)
        return response

    def write(self, request, response, route, status, duration) -> None:
        length = response.get("Content-Length")
        if length is not None:
            size = int(length)
        else:
            size = None if response.streaming else len(response.content)
        line = {
            "ts": datetime.now(tz=UTC).isoformat(timespec="milliseconds"),
            "level": "ERROR" if status >= 500 else "INFO",
            "logger": "access",
            "method": request.method,
            "route": route,
            "path": request.path,
            "status": status,
            "duration_ms": round(duration * 1000, 2),
            "request_id": getattr(request, "request_id", None),
            "user_id": _user_id(request),
            "ip": client_ip(request),
            "bytes": size,
            "pid": os.getpid(),
        }
        exc = getattr(request, "_access_log_exception", None)
        if exc is not None:
            line["exc_type"] = type(exc).__name__
        write_access_line(line)

    def process_exception(self, request, exception):
        # The handler500 answer follows; the error itself is logged by Django (django.request) with its stack.
        request._access_log_exception = exception
