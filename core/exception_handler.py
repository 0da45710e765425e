"""The one error envelope: error_response() builds every error body; api_exception_handler is DRF's hook."""

import logging
import traceback

import orjson
from django.conf import settings
from django.core.exceptions import ObjectDoesNotExist, PermissionDenied, RequestDataTooBig, SuspiciousOperation
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.signals import got_request_exception
from django.db import DatabaseError, InterfaceError, InternalError, OperationalError
from django.http import Http404, HttpResponse
from django_ratelimit.exceptions import Ratelimited
from rest_framework import exceptions as drf_exceptions
from rest_framework.serializers import as_serializer_error
from rest_framework.views import set_rollback
from rest_framework_simplejwt.exceptions import InvalidToken, TokenError

from core import exceptions as codes
from core.db import read_only_refusal
from core.logging import get_request_id
from core.metrics import record_db_error
from core.ratelimit import STORE_ERRORS

logger = logging.getLogger("core.errors")

__all__ = [
    "CODE_OVERRIDES",
    "api_exception_handler",
    "error_for_exception",
    "error_response",
    "unavailable_dependency",
]

# A dependency that is down: the shared cache (core.ratelimit.STORE_ERRORS, e.g. the rate-limit counters of a
# login) or the database (Django wraps every driver error).
DATABASE_DOWN_ERRORS = (OperationalError, InterfaceError)


def unavailable_dependency(exc: BaseException) -> str | None:
    """Return "database" or "cache" when ``exc`` means that dependency cannot serve the request now, else None."""
    if isinstance(exc, STORE_ERRORS):
        return "cache"
    if isinstance(exc, DATABASE_DOWN_ERRORS):
        return "database"
    # Up, but refusing to write: a PostgreSQL that is (or has become, after a failover) a read-only standby.
    # Django raises these as InternalError, which is otherwise a bug of ours and stays a 500.
    if isinstance(exc, InternalError) and read_only_refusal(exc):
        return "database"
    return None


CODE_OVERRIDES: dict[type, str] = {
    drf_exceptions.ValidationError: codes.VALIDATION_ERROR,
    drf_exceptions.Throttled: codes.RATE_LIMITED,
    drf_exceptions.NotAuthenticated: codes.NOT_AUTHENTICATED,
    drf_exceptions.AuthenticationFailed: codes.AUTHENTICATION_FAILED,
    InvalidToken: codes.TOKEN_NOT_VALID,
    drf_exceptions.PermissionDenied: codes.PERMISSION_DENIED,
    drf_exceptions.NotFound: codes.NOT_FOUND,
    drf_exceptions.MethodNotAllowed: codes.METHOD_NOT_ALLOWED,
    drf_exceptions.UnsupportedMediaType: codes.UNSUPPORTED_MEDIA_TYPE,
    drf_exceptions.ParseError: codes.PARSE_ERROR,
    drf_exceptions.NotAcceptable: codes.BAD_REQUEST,
}

GENERIC_MESSAGES = {
    500: "A server error occurred.",
    503: "The service is temporarily unavailable.",
}


def error_response(
    status: int,
    code: str,
    message: str,
    *,
    details: dict | None = None,
    request=None,
    headers: dict[str, str] | None = None,
    exc: BaseException | None = None,
) -> HttpResponse:
    """Return the contract's error envelope as a JSON response (``stack`` only for a 500 under DEBUG)."""
    body: dict = {"success": False, "error": message, "code": code}
    if details is not None:
        body["details"] = details
    body["request_id"] = getattr(request, "request_id", None) or get_request_id()
    if status >= 500 and settings.DEBUG and exc is not None:
        body["stack"] = traceback.format_exception(exc)
    response = HttpResponse(orjson.dumps(body), status=status, content_type="application/json")
    for name, value in (headers or {}).items():
        response[name] = value
    return response


def _flatten_details(detail) -> dict[str, list[str]]:
    """Return DRF error detail as field -> list of messages (non_field_errors for the whole body)."""
    if isinstance(detail, dict):
        out: dict[str, list[str]] = {}
        for field, value in detail.items():
            out[str(field)] = _messages(value)
        return out
    return {"non_field_errors": _messages(detail)}


def _messages(value) -> list[str]:
    if isinstance(value, dict):
        # A nested serializer's errors: keep the first level readable as "sub: message".
        return [f"{key}: {msg}" for key, inner in value.items() for msg in _messages(inner)]
    if isinstance(value, list | tuple):
        return [msg for item in value for msg in _messages(item)]
    return [str(value)]


def _first_message(details: dict[str, list[str]]) -> str:
    for field, messages in details.items():
        if messages:
            return messages[0] if field == "non_field_errors" else f"{field}: {messages[0]}"
    return "Invalid input."


def _rate_limit_headers(exc) -> dict[str, str]:
    wait = getattr(exc, "retry_after", None) or getattr(exc, "wait", None) or 60
    return {"Retry-After": str(max(1, int(wait)))}


def error_for_exception(exc: BaseException, request=None) -> HttpResponse | None:
    """Return the envelope for a known exception, or None when it is unexpected (a 500)."""
    # Most specific first: Ratelimited subclasses PermissionDenied.
    if isinstance(exc, Ratelimited):
        return error_response(
            429, codes.RATE_LIMITED, "Too many requests.", request=request, headers=_rate_limit_headers(exc)
        )
    if isinstance(exc, RequestDataTooBig):
        return error_response(413, codes.PAYLOAD_TOO_LARGE, "Request body is too large.", request=request)
    if dependency := unavailable_dependency(exc):
        if dependency == "database":
            record_db_error(exc)
        logger.error("%s unavailable: %s", dependency, type(exc.__cause__ or exc).__name__)
        return error_response(503, codes.SERVICE_UNAVAILABLE, GENERIC_MESSAGES[503], request=request)
    if isinstance(exc, DjangoValidationError):
        exc = drf_exceptions.ValidationError(as_serializer_error(exc))
    elif isinstance(exc, Http404 | ObjectDoesNotExist):
        exc = drf_exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = drf_exceptions.PermissionDenied()
    elif isinstance(exc, SuspiciousOperation):
        return error_response(400, codes.BAD_REQUEST, "Bad request.", request=request)
    elif isinstance(exc, TokenError):
        exc = InvalidToken()
    if isinstance(exc, codes.ApplicationError):
        return error_response(exc.http_status, exc.code, exc.message, request=request)
    if not isinstance(exc, drf_exceptions.APIException):
        return None

    headers = {}
    if isinstance(exc, drf_exceptions.Throttled):
        headers = _rate_limit_headers(exc)
    auth_header = getattr(exc, "auth_header", None)
    if auth_header:
        headers["WWW-Authenticate"] = auth_header
    code = CODE_OVERRIDES.get(type(exc)) or next(
        (c for klass, c in CODE_OVERRIDES.items() if isinstance(exc, klass)), exc.default_code
    )
    if code == codes.VALIDATION_ERROR:
        details = _flatten_details(exc.detail)
        return error_response(
            exc.status_code, code, _first_message(details), details=details, request=request, headers=headers
        )
    detail = exc.detail
    if isinstance(detail, dict) and "detail" in detail:
        # SimpleJWT puts {"detail": ..., "code": ..., "messages": [...]} in its exceptions.
        message = str(detail["detail"])
    elif isinstance(detail, dict | list):
        message = _first_message(_flatten_details(detail))
    else:
        message = str(detail)
    return error_response(exc.status_code, code, message, request=request, headers=headers)


def server_error_response(exc: BaseException, request=None) -> HttpResponse:
    """Log an unexpected exception, tell error tracking, and return a generic 500."""
    logger.error("unhandled exception", exc_info=(type(exc), exc, exc.__traceback__))
    got_request_exception.send(sender=None, request=getattr(request, "_request", request))
    return error_response(500, codes.SERVER_ERROR, GENERIC_MESSAGES[500], request=request, exc=exc)


def api_exception_handler(exc, context):
    """DRF EXCEPTION_HANDLER: every exception raised in an API view becomes the envelope, rolled back."""
    request = context.get("request")
    set_rollback()
    response = error_for_exception(exc, request)
    if response is None:
        if isinstance(exc, DatabaseError):
            record_db_error(exc)
            logger.error("database error", exc_info=(type(exc), exc, exc.__traceback__))
        response = server_error_response(exc, request)
    return response
