"""Request ids, health endpoints ahead of host checks, and the envelope safety net for non-DRF responses."""

import re
import secrets
import time

import orjson
from corsheaders.middleware import CorsMiddleware as LibraryCorsMiddleware
from django.conf import settings
from django.contrib.auth.middleware import AuthenticationMiddleware
from django.contrib.messages.middleware import MessageMiddleware
from django.contrib.sessions.middleware import SessionMiddleware
from django.core.exceptions import PermissionDenied, RequestDataTooBig, SuspiciousOperation
from django.http import Http404, HttpResponse
from django.utils.cache import patch_vary_headers
from django_ratelimit.exceptions import Ratelimited

from core import exceptions as codes
from core.exception_handler import error_for_exception, error_response, server_error_response, unavailable_dependency
from core.health import readiness
from core.logging import request_id_var

__all__ = [
    "AdminAuthenticationMiddleware",
    "AdminMessageMiddleware",
    "AdminSessionMiddleware",
    "CorsMiddleware",
    "ErrorEnvelopeMiddleware",
    "HealthCheckMiddleware",
    "RequestIdMiddleware",
]

REQUEST_ID_RE = re.compile(r"[A-Za-z0-9._-]{1,128}")
REQUEST_ID_HEADER = "X-Request-ID"

STATUS_CODES = {
    400: codes.BAD_REQUEST,
    401: codes.NOT_AUTHENTICATED,
    403: codes.PERMISSION_DENIED,
    404: codes.NOT_FOUND,
    405: codes.METHOD_NOT_ALLOWED,
    413: codes.PAYLOAD_TOO_LARGE,
    415: codes.UNSUPPORTED_MEDIA_TYPE,
    429: codes.RATE_LIMITED,
    503: codes.SERVICE_UNAVAILABLE,
}
STATUS_MESSAGES = {
    400: "Bad request.",
    401: "Authentication credentials were not provided.",
    403: "You do not have permission to perform this action.",
    404: "Not found.",
    405: "Method not allowed.",
    413: "Request body is too large.",
    415: "Unsupported media type.",
    429: "Too many requests.",
    503: "The service is temporarily unavailable.",
}
KEPT_HEADERS = ("Allow", "Retry-After", "WWW-Authenticate", "Vary")


class RequestIdMiddleware:
    """Keep a well-formed client ``X-Request-ID`` or make one; put it on the request, the logs and the response."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        incoming = request.META.get("HTTP_X_REQUEST_ID", "")
        # 32 random hex digits, like uuid4().hex, at a quarter of its cost (no UUID object built).
        request_id = incoming if REQUEST_ID_RE.fullmatch(incoming) else secrets.token_hex(16)
        request.request_id = request_id
        request.start_time = time.perf_counter()
        token = request_id_var.set(request_id)
        try:
            response = self.get_response(request)
        finally:
            request_id_var.reset(token)
        response[REQUEST_ID_HEADER] = request_id
        return response


class HealthCheckMiddleware:
    """Answer /healthz and /readyz before anything checks the Host header (load balancers use IPs)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        path = request.path_info
        if path not in ("/healthz", "/readyz", "/healthz/", "/readyz/"):
            return self.get_response(request)
        if request.method not in ("GET", "HEAD"):
            response = error_response(405, codes.METHOD_NOT_ALLOWED, "Method not allowed.", request=request)
            response["Allow"] = "GET, HEAD"
            return response
        if path.startswith("/healthz"):
            return _json({"status": "ok"}, 200)
        checks = readiness()
        failing = sorted(name for name, state in checks.items() if state != "ok")
        if failing:
            return error_response(
                503, codes.SERVICE_UNAVAILABLE, f"Not ready: {', '.join(failing)} unavailable.", request=request
            )
        return _json({"status": "ok", "checks": checks}, 200)


def _json(body: dict, status: int) -> HttpResponse:
    response = HttpResponse(orjson.dumps(body), status=status, content_type="application/json")
    response["Cache-Control"] = "no-store"
    return response


class CorsMiddleware(LibraryCorsMiddleware):
    """django-cors-headers' middleware, minus its cost on requests that carry no ``Origin`` header.

    Those are not cross-origin requests (browsers send Origin on every CORS request and preflight), so there
    is nothing to allow: such a response only gets ``Vary: Origin``, as the library gives it, without the
    library building ``request.headers`` (a dict of every header) first, which was most of its 40 us.
    An ``OPTIONS`` without Origin is therefore answered by the view, not as a preflight.
    """

    def __call__(self, request):
        if "HTTP_ORIGIN" in request.META:
            return super().__call__(request)
        response = self.get_response(request)
        if self.is_enabled(request):
            patch_vary_headers(response, ("origin",))
        return response


class ErrorEnvelopeMiddleware:
    """Turn what non-DRF code raises or returns as an error (413, 405, 503, HTML pages) into the envelope."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if response.status_code < 400 or response.get("Content-Type", "").startswith("application/json"):
            return response
        status = response.status_code
        code = STATUS_CODES.get(status, codes.SERVER_ERROR if status >= 500 else codes.BAD_REQUEST)
        message = STATUS_MESSAGES.get(status, "A server error occurred." if status >= 500 else "Bad request.")
        envelope = error_response(status, code, message, request=request)
        for header in KEPT_HEADERS:
            if header in response:
                envelope[header] = response[header]
        return envelope

    def process_exception(self, request, exception):
        # Ratelimited subclasses PermissionDenied: without this, django-ratelimit's decorator answers 403.
        if isinstance(exception, (RequestDataTooBig, Ratelimited)) or unavailable_dependency(exception):
            return error_for_exception(exception, request)
        if settings.DEBUG and not isinstance(exception, Http404 | PermissionDenied | SuspiciousOperation):
            # Django's DEBUG page is HTML; the contract's development 500 is the envelope with its "stack".
            return server_error_response(exception, request)
        return None


class _SkipForApi:
    """Skip the wrapped middleware's request and response work under /api/v1/.

    The API authenticates with Bearer tokens and speaks JSON: it reads no cookie, session, CSRF token
    or flash message, so the admin's session machinery is pure cost there (PERF.md). Its views are
    csrf_exempt (DRF), and request.user is set by DRF's authentication.
    """

    api_prefix = "/api/v1/"

    def __call__(self, request):
        if request.path_info.startswith(self.api_prefix):
            return self.get_response(request)
        return super().__call__(request)


class AdminSessionMiddleware(_SkipForApi, SessionMiddleware):
    """django.contrib.sessions' middleware, for everything but the API."""


class AdminAuthenticationMiddleware(_SkipForApi, AuthenticationMiddleware):
    """Django's session authentication, for everything but the API (Bearer tokens, set by DRF)."""


class AdminMessageMiddleware(_SkipForApi, MessageMiddleware):
    """django.contrib.messages' middleware, for everything but the API."""
