"""Error codes of the contract and the ApplicationError family raised by services."""

__all__ = [
    "AUTHENTICATION_FAILED",
    "BAD_REQUEST",
    "EMAIL_NOT_VERIFIED",
    "EXPECTATION_FAILED",
    "HEADER_FIELDS_TOO_LARGE",
    "METHOD_NOT_ALLOWED",
    "NOT_AUTHENTICATED",
    "NOT_FOUND",
    "NOT_IMPLEMENTED",
    "PARSE_ERROR",
    "PAYLOAD_TOO_LARGE",
    "PERMISSION_DENIED",
    "RATE_LIMITED",
    "SERVER_ERROR",
    "SERVICE_UNAVAILABLE",
    "TOKEN_NOT_VALID",
    "UNSUPPORTED_MEDIA_TYPE",
    "URI_TOO_LONG",
    "VALIDATION_ERROR",
    "ApplicationError",
    "AuthenticationFailedError",
    "EmailNotVerifiedError",
    "PermissionDeniedError",
    "TokenNotValidError",
]

VALIDATION_ERROR = "validation_error"
PARSE_ERROR = "parse_error"
BAD_REQUEST = "bad_request"
NOT_AUTHENTICATED = "not_authenticated"
AUTHENTICATION_FAILED = "authentication_failed"
TOKEN_NOT_VALID = "token_not_valid"
PERMISSION_DENIED = "permission_denied"
EMAIL_NOT_VERIFIED = "email_not_verified"
NOT_FOUND = "not_found"
METHOD_NOT_ALLOWED = "method_not_allowed"
PAYLOAD_TOO_LARGE = "payload_too_large"
UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type"
RATE_LIMITED = "rate_limited"
SERVER_ERROR = "server_error"
SERVICE_UNAVAILABLE = "service_unavailable"
# Not in the contract's table: answers of gunicorn's HTTP parser, before the application (core/wire_errors.py).
URI_TOO_LONG = "uri_too_long"
EXPECTATION_FAILED = "expectation_failed"
HEADER_FIELDS_TOO_LARGE = "header_fields_too_large"
NOT_IMPLEMENTED = "not_implemented"


class ApplicationError(Exception):
    """A state problem a service reports; the handler renders it with its code and status."""

    code = "bad_request"
    http_status = 400
    message = "The request could not be processed."

    def __init__(self, message: str | None = None):
        super().__init__(message or self.message)
        self.message = message or self.message


class AuthenticationFailedError(ApplicationError):
    code = AUTHENTICATION_FAILED
    http_status = 401
    message = "No active account found with the given credentials."


class TokenNotValidError(ApplicationError):
    code = TOKEN_NOT_VALID
    http_status = 401
    message = "Token is invalid or expired."


class EmailNotVerifiedError(ApplicationError):
    code = EMAIL_NOT_VERIFIED
    http_status = 403
    message = "The email address of this account is not verified."


class PermissionDeniedError(ApplicationError):
    code = PERMISSION_DENIED
    http_status = 403
    message = "You do not have permission to perform this action."
