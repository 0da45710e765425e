"""Every row of the contract's error table, through HTTP, in the one envelope."""

import json
import uuid

import pytest
from django.conf import settings as django_settings
from rest_framework.test import APIClient

from tests.assertions import assert_error
from tests.conftest import bearer_client, login
from tests.core.conftest import database_outage, dead_cache
from tests.factories import DEFAULT_PASSWORD

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.core.urls")]

SECRET_TEXT = "password=hunter2 at db-host-7"


# ---------------------------------------------------------------- 400


def test_invalid_field_returns_validation_error_with_field_details(api_client):
    response = api_client.post("/api/v1/users", {"email": "not-an-email", "password": "x"}, format="json")

    body = assert_error(response, 400, "validation_error", fields=["email"])
    assert body["error"].startswith("email: ")


def test_body_that_is_not_an_object_is_reported_under_non_field_errors(api_client):
    response = api_client.post("/api/v1/users", [1, 2], format="json")

    body = assert_error(response, 400, "validation_error", fields=["non_field_errors"])
    assert list(body["details"]) == ["non_field_errors"]


def test_malformed_json_returns_parse_error(api_client):
    response = api_client.post("/api/v1/auth/token", '{"email": "a@example.com",', content_type="application/json")

    assert_error(response, 400, "parse_error")


@pytest.mark.parametrize("path", ["/api/v1/users/me", "/api/v1/auth/token", "/admin/login/", "/api/schema/", "/nope"])
def test_host_outside_allowed_hosts_returns_bad_request(plain_client, path):
    response = plain_client.get(path, HTTP_HOST="attacker.example")

    body = assert_error(response, 400, "bad_request")
    assert "attacker.example" not in response.content.decode()
    assert body["error"] == "Bad request."


# ---------------------------------------------------------------- 401


def test_request_without_credentials_returns_not_authenticated(api_client):
    response = api_client.get("/api/v1/users/me")

    assert_error(response, 401, "not_authenticated")
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_request_with_another_scheme_returns_not_authenticated(api_client):
    api_client.credentials(HTTP_AUTHORIZATION="Basic dXNlckBleGFtcGxlLmNvbTpwYXNz")

    assert_error(api_client.get("/api/v1/users/me"), 401, "not_authenticated")


def test_wrong_password_and_unknown_email_return_the_same_authentication_failed(api_client, user):
    wrong = api_client.post("/api/v1/auth/token", {"email": user.email, "password": "wrong-password"}, format="json")
    unknown = api_client.post(
        "/api/v1/auth/token", {"email": "nobody@example.com", "password": DEFAULT_PASSWORD}, format="json"
    )

    wrong_body = assert_error(wrong, 401, "authentication_failed")
    unknown_body = assert_error(unknown, 401, "authentication_failed")
    assert wrong_body["error"] == unknown_body["error"]


@pytest.mark.parametrize(
    "header",
    ["Bearer not-a-jwt", "Bearer", "Bearer two parts", "Bearer eyJhbGciOiJub25lIn0.eyJzaWQiOiJ4In0."],
    ids=["garbage", "no-token", "three-parts", "alg-none"],
)
def test_bad_bearer_header_returns_token_not_valid(api_client, header):
    api_client.credentials(HTTP_AUTHORIZATION=header)

    response = api_client.get("/api/v1/users/me")

    assert_error(response, 401, "token_not_valid")
    assert response["WWW-Authenticate"].startswith("Bearer")


# ---------------------------------------------------------------- 403


def test_authenticated_caller_without_permission_returns_permission_denied(auth_client, user):
    response = auth_client(user).get("/api/v1/users")

    assert_error(response, 403, "permission_denied")


def test_right_password_on_unverified_email_returns_email_not_verified_when_required(api_client, user, settings):
    settings.REQUIRE_EMAIL_VERIFICATION = True
    assert not user.email_verified

    response = api_client.post(
        "/api/v1/auth/token", {"email": user.email, "password": DEFAULT_PASSWORD}, format="json"
    )

    assert_error(response, 403, "email_not_verified")


def test_wrong_password_on_unverified_email_stays_authentication_failed(api_client, user, settings):
    settings.REQUIRE_EMAIL_VERIFICATION = True

    response = api_client.post(
        "/api/v1/auth/token", {"email": user.email, "password": "wrong-password"}, format="json"
    )

    assert_error(response, 401, "authentication_failed")


# ---------------------------------------------------------------- 404


@pytest.mark.parametrize(
    "path",
    [
        "/nope",
        "/api/v1/nope",
        "/api/v1/users/not-a-uuid",
        "/static/nope.css",
        "/static/admin/css/nope.css",
        "/static/drf_spectacular_sidecar/nope.js",
    ],
)
def test_unknown_url_returns_not_found(plain_client, path):
    assert_error(plain_client.get(path), 404, "not_found")


def test_unknown_url_returns_the_envelope_even_with_debug(plain_client, settings):
    settings.DEBUG = True

    assert_error(plain_client.get("/api/v1/nope"), 404, "not_found")


def test_unknown_object_returns_not_found(auth_client, staff_user):
    response = auth_client(staff_user).get(f"/api/v1/users/{uuid.uuid4()}")

    assert_error(response, 404, "not_found")


# ---------------------------------------------------------------- 405


def test_wrong_method_on_api_returns_method_not_allowed_with_allow(api_client):
    response = api_client.delete("/api/v1/auth/token")

    assert_error(response, 405, "method_not_allowed")
    assert "POST" in response["Allow"]


def test_wrong_method_on_non_api_page_returns_method_not_allowed(plain_client, superuser):
    plain_client.force_login(superuser)

    response = plain_client.get("/admin/logout/")

    assert_error(response, 405, "method_not_allowed")
    assert "POST" in response["Allow"]


# ---------------------------------------------------------------- 413


def _json_body_of_size(size: int) -> str:
    head = '{"email": "big@example.com", "password": "x"'
    return head + " " * (size - len(head) - 1) + "}"


def test_body_over_the_default_limit_returns_payload_too_large(api_client):
    assert django_settings.DATA_UPLOAD_MAX_MEMORY_SIZE == 1024 * 1024
    body = _json_body_of_size(1024 * 1024 + 1)

    response = api_client.post("/api/v1/users", body, content_type="application/json")

    assert_error(response, 413, "payload_too_large")


def test_body_at_the_limit_is_parsed(api_client):
    body = _json_body_of_size(1024 * 1024)
    assert len(body.encode()) == 1024 * 1024

    response = api_client.post("/api/v1/users", body, content_type="application/json")

    # Read and validated: the password is too short, which only a parsed body can tell.
    assert_error(response, 400, "validation_error", fields=["password"])


def test_content_length_over_the_limit_is_refused_before_reading_the_body(api_client):
    response = api_client.post(
        "/api/v1/auth/token", "{}", content_type="application/json", CONTENT_LENGTH=str(50 * 1024 * 1024)
    )

    assert_error(response, 413, "payload_too_large")


def test_configured_limit_applies(api_client, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 200

    response = api_client.post("/api/v1/auth/token", _json_body_of_size(201), content_type="application/json")

    assert_error(response, 413, "payload_too_large")


def test_body_over_the_limit_on_non_api_page_returns_payload_too_large(plain_client):
    body = "username=a%40example.com&password=" + "x" * (1024 * 1024)

    response = plain_client.post("/admin/login/", body, content_type="application/x-www-form-urlencoded")

    assert_error(response, 413, "payload_too_large")


# ---------------------------------------------------------------- 415


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("text/plain", "email=a@example.com"),
        ("application/x-www-form-urlencoded", "email=a%40example.com&password=x"),
        ("application/xml", "<login/>"),
    ],
)
def test_body_that_is_not_json_returns_unsupported_media_type(api_client, content_type, body):
    response = api_client.post("/api/v1/auth/token", body, content_type=content_type)

    assert_error(response, 415, "unsupported_media_type")


# ---------------------------------------------------------------- 429


def test_rate_limited_login_returns_rate_limited_with_retry_after(api_client, user, settings):
    settings.RATELIMIT_LOGIN_EMAIL = "2/m"
    attempt = {"email": user.email, "password": "wrong-password"}
    for _ in range(2):
        assert_error(api_client.post("/api/v1/auth/token", attempt, format="json"), 401, "authentication_failed")

    response = api_client.post("/api/v1/auth/token", attempt, format="json")

    assert_error(response, 429, "rate_limited")
    assert 1 <= int(response["Retry-After"]) <= 60


def test_rate_limited_non_api_view_returns_rate_limited(plain_client):
    assert plain_client.get("/test/plain-limited").status_code == 200

    response = plain_client.get("/test/plain-limited")

    assert_error(response, 429, "rate_limited")
    assert int(response["Retry-After"]) >= 1


# ---------------------------------------------------------------- 500


@pytest.mark.parametrize("path", ["/test/raise", "/test/plain-raise"], ids=["api-view", "plain-view"])
def test_unexpected_exception_returns_generic_server_error(plain_client, path, monkeypatch):
    from tests.core.urls import RaiseView

    monkeypatch.setattr(RaiseView, "exception", RuntimeError(f"api view failed: {SECRET_TEXT}"))

    response = plain_client.get(path)

    body = assert_error(response, 500, "server_error")
    assert body["error"] == "A server error occurred."
    assert "hunter2" not in response.content.decode()
    assert "RuntimeError" not in response.content.decode()


@pytest.mark.parametrize("path", ["/test/raise", "/test/plain-raise"], ids=["api-view", "plain-view"])
def test_unexpected_exception_with_debug_carries_the_stack(plain_client, path, settings, monkeypatch):
    from tests.core.urls import RaiseView

    monkeypatch.setattr(RaiseView, "exception", RuntimeError(f"api view failed: {SECRET_TEXT}"))
    settings.DEBUG = True

    response = plain_client.get(path)

    assert response.status_code == 500
    body = response.json()
    assert body["code"] == "server_error"
    assert body["request_id"] == response["X-Request-ID"]
    assert set(body) == {"success", "error", "code", "request_id", "stack"}
    stack = "".join(body["stack"])
    assert "Traceback" in stack and "RuntimeError" in stack


# ---------------------------------------------------------------- 503


def _login_body() -> str:
    return json.dumps({"email": "ann@example.com", "password": DEFAULT_PASSWORD})


@pytest.mark.parametrize(
    "send",
    [
        lambda client: client.get("/test/drf-count"),
        lambda client: client.get("/test/plain-count"),
        lambda client: client.post("/api/v1/auth/token", _login_body(), content_type="application/json"),
    ],
    ids=["api-view", "plain-view", "login"],
)
def test_database_down_returns_service_unavailable(plain_client, database_down, send):
    response = send(plain_client)

    body = assert_error(response, 503, "service_unavailable")
    assert body["error"] == "The service is temporarily unavailable."
    assert "db-internal-7" not in response.content.decode()


def test_database_down_on_admin_returns_service_unavailable(plain_client, superuser):
    plain_client.force_login(superuser)

    with database_outage():
        response = plain_client.get("/admin/users/user/")

    assert_error(response, 503, "service_unavailable")


def test_cache_down_on_login_returns_service_unavailable(user, cache_down):
    response = APIClient().post(
        "/api/v1/auth/token", {"email": user.email, "password": DEFAULT_PASSWORD}, format="json"
    )

    assert_error(response, 503, "service_unavailable")


def test_cache_down_does_not_stop_authenticated_requests(user, settings):
    client = bearer_client(login(user.email)["access"])
    settings.CACHES = dead_cache()

    response = client.get("/api/v1/users/me")

    assert response.status_code == 200
    assert response.json()["id"] == str(user.id)
