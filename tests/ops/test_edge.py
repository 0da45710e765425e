"""Edge protection in every environment: CORS, security headers, the body limit, HTTPS behind a balancer."""

import pytest
from django.test import Client
from rest_framework.test import APIClient

from tests.assertions import assert_error

pytestmark = pytest.mark.django_db

ALLOWED_ORIGIN = "https://app.example.com"
FOREIGN_ORIGIN = "https://evil.example.net"


@pytest.fixture
def cors(settings):
    settings.CORS_ALLOWED_ORIGINS = [ALLOWED_ORIGIN]
    return settings


def test_allowed_origin_gets_cors_headers_without_credentials(cors, api_client):
    response = api_client.get("/api/v1/users/me", HTTP_ORIGIN=ALLOWED_ORIGIN)

    assert response["Access-Control-Allow-Origin"] == ALLOWED_ORIGIN
    assert "Access-Control-Allow-Credentials" not in response
    assert "X-Request-ID" in response["Access-Control-Expose-Headers"]


def test_allowed_origin_preflight_is_answered(cors, api_client):
    response = api_client.options(
        "/api/v1/auth/token",
        HTTP_ORIGIN=ALLOWED_ORIGIN,
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST",
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS="authorization, content-type",
    )

    assert response.status_code == 200
    assert response["Access-Control-Allow-Origin"] == ALLOWED_ORIGIN
    assert "authorization" in response["Access-Control-Allow-Headers"].lower()


def test_foreign_origin_gets_no_cors_headers(cors, api_client):
    simple = api_client.get("/api/v1/users/me", HTTP_ORIGIN=FOREIGN_ORIGIN)
    preflight = api_client.options(
        "/api/v1/auth/token", HTTP_ORIGIN=FOREIGN_ORIGIN, HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST"
    )

    assert "Access-Control-Allow-Origin" not in simple
    assert "Access-Control-Allow-Origin" not in preflight


def test_a_request_without_origin_gets_vary_origin_and_no_cors_headers(cors, api_client):
    # Shared caches must not serve it to a cross-origin caller, and it allows nobody.
    for response in (api_client.get("/api/v1/users/me"), api_client.get("/admin/login/")):
        assert "origin" in response["Vary"].lower()
        assert not [name for name in response.headers if name.lower().startswith("access-control-")]


def test_rate_limited_answer_carries_cors_headers_for_the_allowed_origin(cors, settings):
    settings.RATELIMIT_ANON = "1/m"
    client = APIClient(REMOTE_ADDR="198.51.100.70")
    client.get("/api/v1/users/me", HTTP_ORIGIN=ALLOWED_ORIGIN)

    response = client.get("/api/v1/users/me", HTTP_ORIGIN=ALLOWED_ORIGIN)

    assert_error(response, 429, "rate_limited")
    assert response["Access-Control-Allow-Origin"] == ALLOWED_ORIGIN


@pytest.mark.parametrize("path", ["/api/v1/users/me", "/no/such/page", "/admin/login/", "/api/schema/"])
def test_security_headers_are_on_every_answer(api_client, path):
    response = api_client.get(path)

    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["X-Frame-Options"] == "DENY"
    assert response["Cross-Origin-Opener-Policy"] == "same-origin"


def test_no_hsts_outside_production_even_over_https(api_client):
    response = api_client.get("/api/v1/users/me", secure=True)

    assert "Strict-Transport-Security" not in response


def test_body_over_the_limit_is_payload_too_large(api_client, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024
    body = {"email": "big@example.com", "password": "p" * 2048}

    assert_error(api_client.post("/api/v1/auth/token", body, format="json"), 413, "payload_too_large")


def test_admin_login_body_over_the_limit_is_payload_too_large(settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024

    response = Client().post("/admin/login/", {"username": "a@example.com", "password": "p" * 2048})

    assert_error(response, 413, "payload_too_large")


def test_ssl_redirect_sends_plain_http_to_https_but_not_health_checks(settings):
    settings.SECURE_SSL_REDIRECT = True
    client = Client()

    redirected = client.get("/api/v1/users/me")
    behind_tls = client.get("/api/v1/users/me", HTTP_X_FORWARDED_PROTO="https")

    assert redirected.status_code == 301
    assert redirected["Location"] == "https://testserver/api/v1/users/me"
    assert behind_tls.status_code == 401
    for path in ("/healthz", "/readyz", "/metrics"):
        assert client.get(path).status_code == 200, path
