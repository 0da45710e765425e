"""One access line per request, JSON or text, with the route template; errors carry their stack in one line."""

import io
import logging
import re
import uuid
from datetime import datetime

import orjson
import pytest
from django.test import Client

from core.logging import JsonFormatter, RequestIdFilter

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.ops.urls")]


def test_access_line_of_an_authenticated_request_has_every_field(auth_client, user, json_logs):
    client = auth_client(user)
    json_logs()

    response = client.get(f"/api/v1/users/{user.pk}?search=query-string-is-never-logged")

    [line] = json_logs()
    assert response.status_code == 200
    assert set(line) == {
        "ts",
        "level",
        "logger",
        "method",
        "route",
        "path",
        "status",
        "duration_ms",
        "request_id",
        "user_id",
        "ip",
        "bytes",
        "pid",
    }
    assert datetime.fromisoformat(line["ts"]).tzinfo is not None
    assert line["level"] == "INFO" and line["logger"] == "access"
    assert (line["method"], line["route"], line["path"]) == ("GET", "/api/v1/users/{id}", f"/api/v1/users/{user.pk}")
    assert line["status"] == 200
    assert isinstance(line["duration_ms"], float) and 0 < line["duration_ms"] < 10_000
    assert line["request_id"] == response["X-Request-ID"]
    assert line["user_id"] == str(user.pk)
    assert line["ip"] == "127.0.0.1"
    assert line["bytes"] == len(response.content)


def test_anonymous_refused_request_is_logged_without_user(api_client, json_logs):
    response = api_client.get("/api/v1/users/me", HTTP_X_REQUEST_ID="client-chosen.id-1")

    [line] = json_logs()
    assert response.status_code == 401
    assert (line["route"], line["status"], line["user_id"]) == ("/api/v1/users/me", 401, None)
    assert line["request_id"] == "client-chosen.id-1"


@pytest.mark.parametrize(
    ("method", "path", "route", "status"),
    [
        ("get", "/api/v1/users", "/api/v1/users", 401),
        ("get", "/api/v1/users/", "/api/v1/users", 401),
        ("delete", f"/api/v1/auth/sessions/{uuid.UUID(int=7)}", "/api/v1/auth/sessions/{session_id}", 401),
        ("post", "/api/v1/auth/token", "/api/v1/auth/token", 400),
        ("get", "/healthz/", "/healthz", 200),
        ("get", "/readyz", "/readyz", 200),
        ("get", "/wp-admin/setup.php", "unmatched", 404),
        ("get", "/admin/login/", "/admin/login/", 200),
    ],
)
def test_route_is_the_url_template_never_the_raw_path(api_client, json_logs, method, path, route, status):
    response = getattr(api_client, method)(path, format="json")

    [line] = json_logs()
    assert (response.status_code, line["route"], line["path"]) == (status, route, path)


def test_unexpected_error_is_one_error_access_line_and_one_json_error_line_with_its_stack(json_logs):
    sink = io.StringIO()
    handler = logging.StreamHandler(sink)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RequestIdFilter())
    logging.getLogger().addHandler(handler)
    try:
        response = Client(raise_request_exception=False).get("/ops-test/items/7/fail")
    finally:
        logging.getLogger().removeHandler(handler)

    [access] = json_logs()
    assert response.status_code == 500
    assert access["level"] == "ERROR"
    assert (access["route"], access["status"], access["exc_type"]) == (
        "/ops-test/items/{item_id}/fail",
        500,
        "ZeroDivisionError",
    )
    errors = [orjson.loads(line) for line in sink.getvalue().splitlines()]
    [error] = [line for line in errors if line.get("exc_type") == "ZeroDivisionError"]
    assert error["level"] == "ERROR"
    assert error["request_id"] == response["X-Request-ID"] == access["request_id"]
    assert error["stack"].startswith("Traceback (most recent call last):")
    assert "ZeroDivisionError: item 7 failed" in error["stack"]
    assert "request" not in error  # Django passes the request object; its repr would carry the query string


def test_development_access_line_is_readable_text(api_client, settings, capsys):
    settings.LOG_FORMAT = "text"
    capsys.readouterr()

    response = api_client.get("/healthz", HTTP_X_REQUEST_ID="text-line-1")

    out = capsys.readouterr().out.strip()
    assert response.status_code == 200
    assert re.fullmatch(
        r"\S+ INFO access \[text-line-1\] GET /healthz 200 [\d.]+ms route=/healthz user=- ip=127\.0\.0\.1 bytes=15",
        out,
    ), out


def test_access_log_off_writes_no_line(api_client, settings, capsys):
    settings.ACCESS_LOG = False
    capsys.readouterr()

    assert api_client.get("/healthz").status_code == 200

    assert capsys.readouterr().out == ""
