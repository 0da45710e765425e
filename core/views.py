"""Django-level error handlers (handler400/403/404/500) and the rate-limit view, all in the envelope."""

from django.core.exceptions import RequestDataTooBig

from core import exceptions as codes
from core.exception_handler import error_for_exception, error_response, server_error_response

__all__ = ["json_400", "json_403", "json_404", "json_500", "rate_limited"]


def json_400(request, exception=None):
    # Django routes RequestDataTooBig (a SuspiciousOperation) here when middleware reads the body.
    if isinstance(exception, RequestDataTooBig):
        return error_for_exception(exception, request)
    return error_response(400, codes.BAD_REQUEST, "Bad request.", request=request)


def json_403(request, exception=None):
    return error_response(
        403, codes.PERMISSION_DENIED, "You do not have permission to perform this action.", request=request
    )


def json_404(request, exception=None):
    return error_response(404, codes.NOT_FOUND, "Not found.", request=request)


def json_500(request):
    return error_response(500, codes.SERVER_ERROR, "A server error occurred.", request=request)


def rate_limited(request, exception):
    """RATELIMIT_VIEW: the answer to a django-ratelimit refusal raised outside DRF."""
    return error_for_exception(exception, request) or server_error_response(exception, request)
