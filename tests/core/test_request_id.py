"""X-Request-ID: a well-formed client id is kept, anything else replaced; every response carries one."""

import logging
import re

import pytest
from django.test import Client

from core.logging import RequestIdFilter, get_request_id
from tests.assertions import assert_error
from tests.conftest import login
from tests.core.conftest import database_outage
from tests.core.urls import RaiseView

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.core.urls")]

GENERATED_RE = re.compile(r"[0-9a-f]{32}")


@pytest.mark.parametrize(
    "request_id",
    ["abc", "req-1.2_3", "7f0c2a9e-6a3b-4a53-9c61-5d1f0e1f8d2a", "A" * 128, "a", "_.-"],
    ids=["short", "mixed", "uuid", "128-chars", "one-char", "punctuation-only"],
)
def test_well_formed_client_request_id_is_kept(plain_client, request_id):
    response = plain_client.get("/healthz", HTTP_X_REQUEST_ID=request_id)

    assert response["X-Request-ID"] == request_id


def test_kept_request_id_is_the_request_id_of_the_error_body(plain_client):
    response = plain_client.get("/api/v1/nope", HTTP_X_REQUEST_ID="trace-42")

    body = assert_error(response, 404, "not_found")
    assert body["request_id"] == "trace-42"


@pytest.mark.parametrize(
    "request_id",
    ["A" * 129, "has space", "semi;colon", "a/b", "<script>", "ünïcode", "new\\nline", "a,b", ""],
    ids=["129-chars", "space", "semicolon", "slash", "markup", "non-ascii", "backslash", "comma", "empty"],
)
def test_malformed_client_request_id_is_replaced(plain_client, request_id):
    response = plain_client.get("/api/v1/nope", HTTP_X_REQUEST_ID=request_id)

    assert response["X-Request-ID"] != request_id
    assert GENERATED_RE.fullmatch(response["X-Request-ID"])
    assert response.json()["request_id"] == response["X-Request-ID"]


def test_generated_request_ids_differ_between_requests(plain_client):
    ids = {plain_client.get("/healthz")["X-Request-ID"] for _ in range(5)}

    assert len(ids) == 5
    assert all(GENERATED_RE.fullmatch(i) for i in ids)


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("get", "/healthz", 200),
        ("get", "/readyz", 200),
        ("get", "/api/schema/", 200),
        ("get", "/api/docs/", 200),
        ("get", "/static/admin/css/base.css", 200),
        ("get", "/admin/login/", 200),
        ("get", "/admin/", 302),
        ("get", "/api/v1/users/me", 401),
        ("get", "/nope", 404),
        ("get", "/static/nope.css", 404),
        ("delete", "/api/v1/auth/token", 405),
        ("post", "/healthz", 405),
        ("get", "/test/raise", 500),
        ("get", "/test/plain-raise", 500),
    ],
)
def test_every_response_carries_a_request_id(plain_client, monkeypatch, method, path, status):
    monkeypatch.setattr(RaiseView, "exception", RuntimeError("boom"))

    response = getattr(plain_client, method)(path)

    assert response.status_code == status
    assert GENERATED_RE.fullmatch(response["X-Request-ID"])


@pytest.mark.parametrize("path", ["/healthz", "/api/v1/users/me"])
def test_response_to_a_host_outside_allowed_hosts_carries_a_request_id(plain_client, path):
    response = plain_client.get(path, HTTP_HOST="attacker.example", HTTP_X_REQUEST_ID="lb-probe-1")

    assert response["X-Request-ID"] == "lb-probe-1"


def test_response_of_an_authenticated_request_carries_the_client_request_id(user):
    access = login(user.email)["access"]

    response = Client().get("/api/v1/users/me", HTTP_AUTHORIZATION=f"Bearer {access}", HTTP_X_REQUEST_ID="app-7")

    assert response.status_code == 200
    assert response["X-Request-ID"] == "app-7"


def test_body_over_the_limit_carries_the_request_id(plain_client):
    response = plain_client.post(
        "/api/v1/users", "x" * (1024 * 1024 + 1), content_type="application/json", HTTP_X_REQUEST_ID="big-1"
    )

    body = assert_error(response, 413, "payload_too_large")
    assert body["request_id"] == "big-1"


def test_database_outage_answer_carries_the_request_id(plain_client):
    with database_outage():
        response = plain_client.get("/test/drf-count", HTTP_X_REQUEST_ID="outage-1")

    body = assert_error(response, 503, "service_unavailable")
    assert body["request_id"] == "outage-1"


class _Collect(logging.Handler):
    def __init__(self):
        super().__init__()
        self.addFilter(RequestIdFilter())
        self.records: list[logging.LogRecord] = []

    def emit(self, record):
        self.records.append(record)


def test_log_lines_of_a_request_carry_its_request_id(plain_client, monkeypatch):
    monkeypatch.setattr(RaiseView, "exception", RuntimeError("boom"))
    handler = _Collect()
    logger = logging.getLogger("core.errors")
    logger.addHandler(handler)
    try:
        response = plain_client.get("/test/raise", HTTP_X_REQUEST_ID="corr-9")
    finally:
        logger.removeHandler(handler)

    assert response.status_code == 500
    assert handler.records
    assert {r.request_id for r in handler.records} == {"corr-9"}


def test_request_id_does_not_outlive_its_request(plain_client):
    plain_client.get("/healthz", HTTP_X_REQUEST_ID="gone-after")

    assert get_request_id() is None
