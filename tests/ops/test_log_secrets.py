"""No password, token, Authorization header, cookie or emailed link ever reaches a log line."""

import logging
import re

import pytest
from django.core import mail
from django.urls import NoReverseMatch, reverse
from rest_framework.test import APIClient

from core.logging import JsonFormatter, RequestIdFilter
from tests.conftest import bearer_client
from tests.factories import DEFAULT_PASSWORD, UserFactory

# Mail is sent after commit: the reset and verification links exist only with real transactions.
pytestmark = pytest.mark.django_db(transaction=True)

NEW_PASSWORD = "a-fresh-passphrase-for-the-log-test-7"
WRONG_PASSWORD = "not-the-password-but-still-a-secret-9"
REGISTER_PASSWORD = "registration-passphrase-for-logs-3"
TEXT_FORMATTER = logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s")
LINK_RE = re.compile(r"[?&](?:uid|token)=([^&\s\"'<>]+)")


def _link_secrets() -> set[str]:
    """Return every uid, token and whole link found in the mail sent so far."""
    found: set[str] = set()
    for message in mail.outbox:
        bodies = [message.body] + [content for content, _type in getattr(message, "alternatives", [])]
        for body in bodies:
            found.update(LINK_RE.findall(body))
            found.update(re.findall(r"https?://\S+?(?:uid|token)=[^\s\"'<>]+", body))
    return found


def _route_exists(name: str) -> bool:
    try:
        reverse(name)
    except NoReverseMatch:
        return False
    return True


def _confirm_from_mail(client: APIClient, route: str, **extra) -> None:
    """Post the uid and token of the last emailed link to ``route``."""
    body = mail.outbox[-1].body
    params = dict(re.findall(r"[?&](uid|token)=([^&\s\"'<>]+)", body))
    response = client.post(reverse(route), {**params, **extra}, format="json")
    assert response.status_code == 204, response.content


def _drive_every_auth_flow(user) -> set[str]:
    """Run every auth flow the API has, through HTTP; return every secret a client sent or received."""
    secrets = {DEFAULT_PASSWORD, NEW_PASSWORD, WRONG_PASSWORD, REGISTER_PASSWORD}
    anonymous = APIClient()

    # Registration.
    response = anonymous.post(
        "/api/v1/users", {"email": "logs-new@example.com", "password": REGISTER_PASSWORD}, format="json"
    )
    assert response.status_code in (201, 202), response.content

    # Login refused (wrong password, unknown email), then login.
    for email in (user.email, "nobody-logs@example.com"):
        response = anonymous.post("/api/v1/auth/token", {"email": email, "password": WRONG_PASSWORD}, format="json")
        assert response.status_code == 401, response.content
    first = anonymous.post("/api/v1/auth/token", {"email": user.email, "password": DEFAULT_PASSWORD}, format="json")
    assert first.status_code == 200, first.content
    pairs = [first.json()]

    # Refresh (rotation), then the spent refresh token again, then a forged one.
    refreshed = anonymous.post("/api/v1/auth/token/refresh", {"refresh": pairs[0]["refresh"]}, format="json")
    assert refreshed.status_code == 200, refreshed.content
    pairs.append(refreshed.json())
    anonymous.post("/api/v1/auth/token/refresh", {"refresh": pairs[0]["refresh"] + "x"}, format="json")

    # Authenticated reads, a refused token, sessions.
    client = bearer_client(pairs[1]["access"])
    assert client.get("/api/v1/users/me").status_code == 200
    assert client.get("/api/v1/auth/sessions").status_code == 200
    bearer_client(pairs[0]["access"] + "tampered").get("/api/v1/users/me")

    # Password change: wrong current password, then right.
    response = client.post(
        "/api/v1/auth/password/change",
        {"current_password": WRONG_PASSWORD, "new_password": NEW_PASSWORD},
        format="json",
    )
    assert response.status_code == 400, response.content
    response = client.post(
        "/api/v1/auth/password/change",
        {"current_password": DEFAULT_PASSWORD, "new_password": NEW_PASSWORD},
        format="json",
    )
    assert response.status_code == 204, response.content

    # A second session, logout-all of the others, logout with the refresh token.
    second = anonymous.post("/api/v1/auth/token", {"email": user.email, "password": NEW_PASSWORD}, format="json")
    assert second.status_code == 200, second.content
    pairs.append(second.json())
    other = bearer_client(pairs[2]["access"])
    assert other.post("/api/v1/auth/logout-all", {"keep_current": True}, format="json").status_code == 204
    assert other.post("/api/v1/auth/logout", {"refresh": pairs[2]["refresh"]}, format="json").status_code == 204

    # Lifecycle flows, where the API has them: email verification and password reset by emailed link.
    if _route_exists("auth:email-verify-resend"):
        third = anonymous.post("/api/v1/auth/token", {"email": user.email, "password": NEW_PASSWORD}, format="json")
        assert third.status_code == 200, third.content
        pairs.append(third.json())
        response = bearer_client(pairs[3]["access"]).post(reverse("auth:email-verify-resend"))
        assert response.status_code == 202, response.content
        if mail.outbox:
            _confirm_from_mail(anonymous, "auth:email-verify")
    if _route_exists("auth:password-reset"):
        mail.outbox.clear()
        response = anonymous.post(reverse("auth:password-reset"), {"email": user.email}, format="json")
        assert response.status_code == 202, response.content
        final_password = NEW_PASSWORD + "-reset"
        secrets.add(final_password)
        secrets |= _link_secrets()
        _confirm_from_mail(anonymous, "auth:password-reset-confirm", new_password=final_password)

    secrets |= _link_secrets()
    for pair in pairs:
        for token in (pair["access"], pair["refresh"]):
            secrets.add(token)
            secrets.add(token.rsplit(".", 1)[1])  # the signature alone is a leak too
    return secrets


def test_no_secret_of_any_auth_flow_reaches_the_logs(settings, caplog, capsys):
    settings.LOG_FORMAT = "json"
    caplog.set_level(logging.DEBUG)
    # What the service's stdout handler writes, filter included (request ids are stamped at emit time).
    json_handler = logging.StreamHandler(stream=_Sink())
    json_handler.setFormatter(JsonFormatter())
    json_handler.addFilter(RequestIdFilter())
    root = logging.getLogger()
    root.addHandler(json_handler)
    user = UserFactory()
    try:
        secrets = _drive_every_auth_flow(user)
    finally:
        root.removeHandler(json_handler)

    captured = capsys.readouterr()
    output = [captured.out, captured.err, json_handler.stream.text]
    for record in caplog.records:
        record.request_id = getattr(record, "request_id", "-")
        output.append(JsonFormatter().format(record))
        output.append(TEXT_FORMATTER.format(record))
    text = "\n".join(output)

    # The flows really ran and were logged: one access line per request at least.
    assert text.count('"logger":"access"') >= 14
    assert "/api/v1/auth/password/change" in text
    for secret in sorted(secrets, key=len):
        assert secret not in text, f"a secret of {len(secret)} characters is in the log output"
    for marker in ("Bearer ", "HTTP_AUTHORIZATION", "Authorization", "csrftoken", "sessionid="):
        assert marker not in text, marker


class _Sink:
    """A write-only text stream that keeps what was written."""

    def __init__(self):
        self.text = ""

    def write(self, data: str) -> int:
        self.text += data
        return len(data)

    def flush(self) -> None:
        return None
