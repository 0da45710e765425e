"""GET /api/v1/auth/sessions and DELETE /api/v1/auth/sessions/{id}: the caller's open sessions."""

import uuid
from datetime import datetime, timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from core.exceptions import NOT_AUTHENTICATED, NOT_FOUND, TOKEN_NOT_VALID
from tests.assertions import assert_error
from tests.conftest import bearer_client, login, me, refresh, sid
from users.models import Session

pytestmark = pytest.mark.django_db(transaction=True)

LIST = "/api/v1/auth/sessions"
FIELDS = {"id", "created_at", "last_used_at", "ip", "user_agent", "current"}


def test_sessions_list_is_a_json_list_of_the_callers_open_sessions(user):
    tokens = login(user.email, REMOTE_ADDR="192.0.2.10", HTTP_USER_AGENT="Firefox/140.0")

    response = bearer_client(tokens["access"]).get(LIST)

    assert response.status_code == 200
    body = response.json()
    assert isinstance(body, list)
    assert len(body) == 1
    session = body[0]
    assert set(session) == FIELDS
    assert session["id"] == sid(tokens["access"])
    assert session["ip"] == "192.0.2.10"
    assert session["user_agent"] == "Firefox/140.0"
    assert session["current"] is True
    created = datetime.fromisoformat(session["created_at"])
    last_used = datetime.fromisoformat(session["last_used_at"])
    assert abs(timezone.now() - created) < timedelta(minutes=1)
    assert last_used >= created


def test_sessions_list_is_newest_first_and_marks_only_the_current_one(user):
    first, second, third = (login(user.email, HTTP_USER_AGENT=f"agent-{n}") for n in range(3))

    body = bearer_client(second["access"]).get(LIST).json()

    assert [s["id"] for s in body] == [sid(third["access"]), sid(second["access"]), sid(first["access"])]
    assert [s["user_agent"] for s in body] == ["agent-2", "agent-1", "agent-0"]
    assert [s["current"] for s in body] == [False, True, False]
    for session in body:
        assert set(session) == FIELDS
        assert session["last_used_at"] is not None


def test_sessions_list_keeps_its_order_by_login_time(user):
    older, newer = login(user.email), login(user.email)
    now = timezone.now()
    Session.objects.filter(pk=sid(older["access"])).update(created_at=now - timedelta(hours=2))
    Session.objects.filter(pk=sid(newer["access"])).update(created_at=now - timedelta(hours=1))

    body = bearer_client(older["access"]).get(LIST).json()

    assert [s["id"] for s in body] == [sid(newer["access"]), sid(older["access"])]


def test_sessions_list_leaves_out_ended_expired_and_other_users_sessions(user, other_user):
    current, ended, expired = login(user.email), login(user.email), login(user.email)
    login(other_user.email)
    assert bearer_client(ended["access"]).post("/api/v1/auth/logout").status_code == 204
    Session.objects.filter(pk=sid(expired["access"])).update(expires_at=timezone.now() - timedelta(seconds=1))

    body = bearer_client(current["access"]).get(LIST).json()

    assert [s["id"] for s in body] == [sid(current["access"])]


def test_session_keeps_its_id_across_refreshes(user):
    tokens = login(user.email)
    rotated = refresh(tokens["refresh"]).json()

    body = bearer_client(rotated["access"]).get(LIST).json()

    assert [(s["id"], s["current"]) for s in body] == [(sid(tokens["access"]), True)]


def test_session_ip_follows_trusted_proxy_setting(settings, user):
    settings.TRUSTED_PROXY_COUNT = 1
    tokens = login(user.email, REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="203.0.113.7")

    body = bearer_client(tokens["access"]).get(LIST).json()

    assert body[0]["ip"] == "203.0.113.7"


def test_sessions_list_without_credentials_returns_401(db):
    assert_error(APIClient().get(LIST), 401, NOT_AUTHENTICATED)


def test_delete_session_returns_204_and_refuses_its_tokens(user):
    current, other = login(user.email), login(user.email)
    client = bearer_client(current["access"])

    response = client.delete(f"{LIST}/{sid(other['access'])}")

    assert response.status_code == 204
    assert_error(me(other["access"]), 401, TOKEN_NOT_VALID)
    assert_error(refresh(other["refresh"]), 401, TOKEN_NOT_VALID)
    assert [s["id"] for s in client.get(LIST).json()] == [sid(current["access"])]
    assert me(current["access"]).status_code == 200
    assert Session.objects.get(pk=sid(other["access"])).end_reason == Session.EndReason.REVOKED


def test_delete_current_session_works_like_logout(user):
    current, other = login(user.email), login(user.email)

    response = bearer_client(current["access"]).delete(f"{LIST}/{sid(current['access'])}/")

    assert response.status_code == 204
    assert_error(me(current["access"]), 401, TOKEN_NOT_VALID)
    assert_error(refresh(current["refresh"]), 401, TOKEN_NOT_VALID)
    assert me(other["access"]).status_code == 200


def test_delete_another_users_session_returns_404_and_leaves_it_open(user, other_user):
    mine, theirs = login(user.email), login(other_user.email)

    response = bearer_client(mine["access"]).delete(f"{LIST}/{sid(theirs['access'])}")

    assert_error(response, 404, NOT_FOUND)
    assert me(theirs["access"]).status_code == 200
    assert Session.objects.get(pk=sid(theirs["access"])).ended_at is None


def test_delete_unknown_session_returns_404(user):
    tokens = login(user.email)

    response = bearer_client(tokens["access"]).delete(f"{LIST}/{uuid.uuid4()}")

    assert_error(response, 404, NOT_FOUND)


def test_delete_an_already_ended_session_returns_404(user):
    current, other = login(user.email), login(user.email)
    client = bearer_client(current["access"])
    assert client.delete(f"{LIST}/{sid(other['access'])}").status_code == 204

    assert_error(client.delete(f"{LIST}/{sid(other['access'])}"), 404, NOT_FOUND)


def test_delete_session_with_a_malformed_id_returns_404(user):
    tokens = login(user.email)

    assert_error(bearer_client(tokens["access"]).delete(f"{LIST}/not-a-uuid"), 404, NOT_FOUND)


def test_delete_session_without_credentials_returns_401(user):
    tokens = login(user.email)

    assert_error(APIClient().delete(f"{LIST}/{sid(tokens['access'])}"), 401, NOT_AUTHENTICATED)
    assert me(tokens["access"]).status_code == 200


def test_revoking_a_session_records_a_logout_event_of_that_session(auth_client, user):
    from users.models import SecurityEvent

    login(user.email)  # a second session of the same user
    client = auth_client(user)
    sid = next(s["id"] for s in client.get("/api/v1/auth/sessions").json() if not s["current"])
    assert client.delete(f"/api/v1/auth/sessions/{sid}").status_code == 204
    events = SecurityEvent.objects.filter(user_id=user.pk, type=SecurityEvent.Type.LOGOUT)
    recorded = [(e.details["session_id"], e.details["via"], e.details["current"]) for e in events]
    assert recorded == [(sid, "sessions", False)]
