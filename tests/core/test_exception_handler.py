"""DRF's exception handler: each exception a view may raise becomes the envelope with its status and code."""

import pytest
from django.core.exceptions import ObjectDoesNotExist, PermissionDenied, RequestDataTooBig, SuspiciousOperation
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.signals import got_request_exception
from django.db import IntegrityError, InterfaceError, OperationalError
from django.http import Http404
from django_ratelimit.exceptions import Ratelimited
from django_redis.exceptions import ConnectionInterrupted
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from rest_framework import exceptions as drf
from rest_framework_simplejwt.exceptions import InvalidToken, TokenError

from core.exceptions import (
    ApplicationError,
    AuthenticationFailedError,
    EmailNotVerifiedError,
    PermissionDeniedError,
    TokenNotValidError,
)
from core.ratelimit import RateLimitedError
from tests.assertions import assert_error
from tests.core.urls import RaiseView
from users.models import User

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.core.urls")]

CASES = [
    (drf.ValidationError({"email": ["Enter a valid email address."]}), 400, "validation_error"),
    (DjangoValidationError({"email": ["A user with this email already exists."]}), 400, "validation_error"),
    (drf.ParseError(), 400, "parse_error"),
    (SuspiciousOperation("forged"), 400, "bad_request"),
    (ApplicationError(), 400, "bad_request"),
    (drf.NotAuthenticated(), 401, "not_authenticated"),
    (drf.AuthenticationFailed(), 401, "authentication_failed"),
    (AuthenticationFailedError(), 401, "authentication_failed"),
    (InvalidToken(), 401, "token_not_valid"),
    (TokenError("Token is invalid or expired"), 401, "token_not_valid"),
    (TokenNotValidError(), 401, "token_not_valid"),
    (drf.PermissionDenied(), 403, "permission_denied"),
    (PermissionDenied(), 403, "permission_denied"),
    (PermissionDeniedError(), 403, "permission_denied"),
    (EmailNotVerifiedError(), 403, "email_not_verified"),
    (drf.NotFound(), 404, "not_found"),
    (Http404("No User matches the given query."), 404, "not_found"),
    (User.DoesNotExist(), 404, "not_found"),
    (ObjectDoesNotExist(), 404, "not_found"),
    (drf.MethodNotAllowed("PUT"), 405, "method_not_allowed"),
    (RequestDataTooBig(), 413, "payload_too_large"),
    (drf.UnsupportedMediaType("text/plain"), 415, "unsupported_media_type"),
    (drf.Throttled(wait=7), 429, "rate_limited"),
    (RateLimitedError(retry_after=17), 429, "rate_limited"),
    (Ratelimited(), 429, "rate_limited"),
    (RuntimeError("boom"), 500, "server_error"),
    (IntegrityError("duplicate key value violates unique constraint"), 500, "server_error"),
    (KeyError("sid"), 500, "server_error"),
    (OperationalError("could not connect to server"), 503, "service_unavailable"),
    (InterfaceError("connection already closed"), 503, "service_unavailable"),
    (ConnectionInterrupted(connection=None), 503, "service_unavailable"),
    (RedisConnectionError("Error 111 connecting"), 503, "service_unavailable"),
    (RedisTimeoutError("Timeout reading from socket"), 503, "service_unavailable"),
]


@pytest.fixture
def raising(monkeypatch, plain_client):
    """Return a function: raising(exc) -> the response of a DRF view that raises ``exc``."""

    def get(exc):
        monkeypatch.setattr(RaiseView, "exception", exc)
        return plain_client.get("/test/raise")

    return get


@pytest.mark.parametrize(("exc", "status", "code"), CASES, ids=[f"{type(c[0]).__name__}-{c[2]}" for c in CASES])
def test_exception_becomes_envelope_with_its_status_and_code(raising, exc, status, code):
    assert_error(raising(exc), status, code)


def test_serializer_errors_become_details_of_field_messages(raising):
    exc = drf.ValidationError({"email": ["Enter a valid email address."], "password": ["Too short.", "Too common."]})

    body = assert_error(raising(exc), 400, "validation_error", fields=["email", "password"])

    assert body["details"] == {"email": ["Enter a valid email address."], "password": ["Too short.", "Too common."]}
    assert body["error"] == "email: Enter a valid email address."


def test_error_for_the_whole_body_is_under_non_field_errors(raising):
    body = assert_error(raising(drf.ValidationError("Passwords do not match.")), 400, "validation_error")

    assert body["details"] == {"non_field_errors": ["Passwords do not match."]}
    assert body["error"] == "Passwords do not match."


def test_django_validation_error_of_a_service_keeps_its_fields(raising):
    exc = DjangoValidationError({"current_password": ["The current password is not correct."]})

    body = assert_error(raising(exc), 400, "validation_error", fields=["current_password"])

    assert body["details"] == {"current_password": ["The current password is not correct."]}


def test_nested_serializer_errors_stay_readable_strings(raising):
    exc = drf.ValidationError({"profile": {"city": ["This field is required."]}})

    body = assert_error(raising(exc), 400, "validation_error", fields=["profile"])

    assert body["details"] == {"profile": ["city: This field is required."]}


def test_application_error_message_is_the_error_text(raising):
    body = assert_error(raising(ApplicationError("This account cannot be changed now.")), 400, "bad_request")

    assert body["error"] == "This account cannot be changed now."


def test_simplejwt_dict_detail_gives_its_message_not_field_errors(raising):
    exc = InvalidToken({"detail": "Given token not valid for any token type", "code": "token_not_valid"})

    body = assert_error(raising(exc), 401, "token_not_valid")

    assert body["error"] == "Given token not valid for any token type"


@pytest.mark.parametrize(("exc", "seconds"), [(drf.Throttled(wait=7), "7"), (RateLimitedError(retry_after=17), "17")])
def test_rate_limit_keeps_the_retry_after_seconds(raising, exc, seconds):
    response = raising(exc)

    assert_error(response, 429, "rate_limited")
    assert response["Retry-After"] == seconds


@pytest.mark.parametrize("exc", [drf.NotAuthenticated(), InvalidToken()], ids=["not-authenticated", "invalid-token"])
def test_unauthenticated_keeps_the_www_authenticate_challenge(raising, exc):
    response = raising(exc)

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'


@pytest.mark.parametrize(
    "exc",
    [RuntimeError("secret token=abc123"), OperationalError("FATAL: password authentication failed for user svc")],
    ids=["unexpected", "database-down"],
)
def test_server_side_errors_never_show_the_exception_text(raising, exc):
    response = raising(exc)

    assert response.status_code >= 500
    content = response.content.decode()
    assert "abc123" not in content and "password authentication" not in content
    assert "stack" not in response.json()


def test_unexpected_exception_tells_error_tracking(raising):
    received = []

    def receiver(sender, request, **kwargs):
        received.append(request)

    got_request_exception.connect(receiver)
    try:
        response = raising(RuntimeError("boom"))
    finally:
        got_request_exception.disconnect(receiver)

    assert response.status_code == 500
    assert len(received) == 1
    assert received[0].path == "/test/raise"


def test_unexpected_exception_is_logged_with_its_traceback(raising, caplog):
    raising(RuntimeError("logged failure"))

    records = [r for r in caplog.records if r.name == "core.errors" and r.exc_info]
    assert len(records) == 1
    assert records[0].exc_info[0] is RuntimeError
    assert str(records[0].exc_info[1]) == "logged failure"


def test_handled_errors_do_not_tell_error_tracking(raising):
    received = []

    def receiver(sender, **kwargs):
        received.append(sender)

    got_request_exception.connect(receiver)
    try:
        raising(drf.NotFound())
    finally:
        got_request_exception.disconnect(receiver)

    assert received == []
