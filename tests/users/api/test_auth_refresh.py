"""POST /api/v1/auth/token/refresh: rotation, the concurrent-refresh grace window, reuse detection."""

import base64
import json
import threading
from datetime import timedelta

import jwt
import pytest
from django.conf import settings as django_settings
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from core.exceptions import TOKEN_NOT_VALID, VALIDATION_ERROR
from tests.assertions import assert_error
from tests.conftest import bearer_client, login
from users.models import Session

pytestmark = pytest.mark.django_db(transaction=True)

URL = "/api/v1/auth/token/refresh"


def claims(token: str) -> dict:
    return jwt.decode(token, options={"verify_signature": False})


def refresh(token):
    return APIClient().post(URL, {"refresh": token}, format="json")


def me(access: str):
    return bearer_client(access).get("/api/v1/users/me")


def session_of(token: str) -> Session:
    return Session.objects.get(pk=claims(token)["sid"])


def test_refresh_returns_a_new_pair_of_the_same_session(user):
    tokens = login(user.email)

    response = refresh(tokens["refresh"])

    assert response.status_code == 200
    pair = response.json()
    assert set(pair) == {"access", "refresh"}
    assert pair["refresh"] != tokens["refresh"]
    sid = claims(tokens["access"])["sid"]
    assert claims(pair["access"])["sid"] == sid
    assert claims(pair["refresh"])["sid"] == sid
    assert me(pair["access"]).status_code == 200
    assert Session.objects.filter(user=user).count() == 1


def test_refresh_keeps_the_earlier_access_token_of_the_session_working(user):
    tokens = login(user.email)

    refresh(tokens["refresh"])

    assert me(tokens["access"]).status_code == 200


def test_rotated_refresh_token_can_be_rotated_again(user):
    tokens = login(user.email)
    second = refresh(tokens["refresh"]).json()

    third = refresh(second["refresh"])

    assert third.status_code == 200
    assert third.json()["refresh"] not in (tokens["refresh"], second["refresh"])
    assert len({claims(t)["sid"] for t in (tokens["refresh"], second["refresh"], third.json()["refresh"])}) == 1


def test_session_stores_only_a_hash_of_the_refresh_token(user):
    tokens = login(user.email)
    pair = refresh(tokens["refresh"]).json()

    session = session_of(pair["refresh"])

    stored = {value for value in vars(session).values() if isinstance(value, str)}
    assert pair["refresh"] not in stored
    assert tokens["refresh"] not in stored
    assert session.generation == 1


def test_spent_refresh_within_grace_window_returns_a_valid_pair_of_the_same_session(user):
    tokens = login(user.email)
    first = refresh(tokens["refresh"]).json()

    again = refresh(tokens["refresh"])

    assert again.status_code == 200
    pair = again.json()
    assert claims(pair["access"])["sid"] == claims(tokens["access"])["sid"]
    assert me(pair["access"]).status_code == 200
    # Both tabs now hold a refresh token of the live session; the session was not ended.
    assert me(first["access"]).status_code == 200
    assert refresh(pair["refresh"]).status_code == 200
    assert session_of(tokens["refresh"]).ended_at is None


def test_spent_refresh_after_grace_window_returns_401_and_ends_the_session(settings, user):
    settings.JWT_REFRESH_GRACE = 0
    tokens = login(user.email)
    rotated = refresh(tokens["refresh"]).json()
    other = login(user.email)

    reused = refresh(tokens["refresh"])

    assert_error(reused, 401, TOKEN_NOT_VALID)
    session = session_of(tokens["refresh"])
    assert session.ended_at is not None
    assert session.end_reason == Session.EndReason.REUSE_DETECTED
    # Every token of that session is dead at once: old and new access, the rotated refresh.
    assert_error(me(tokens["access"]), 401, TOKEN_NOT_VALID)
    assert_error(me(rotated["access"]), 401, TOKEN_NOT_VALID)
    assert_error(refresh(rotated["refresh"]), 401, TOKEN_NOT_VALID)
    # It is gone from the sessions list, and the user's other session keeps working.
    listed = bearer_client(other["access"]).get("/api/v1/auth/sessions").json()
    assert [s["id"] for s in listed] == [claims(other["access"])["sid"]]
    assert me(other["access"]).status_code == 200
    assert refresh(other["refresh"]).status_code == 200


def test_spent_refresh_older_than_the_default_grace_window_ends_the_session(user):
    tokens = login(user.email)
    rotated = refresh(tokens["refresh"]).json()
    # The rotation happened longer ago than JWT_REFRESH_GRACE (default 10 s).
    past = timezone.now() - timedelta(seconds=django_settings.JWT_REFRESH_GRACE + 1)
    Session.objects.filter(pk=claims(rotated["refresh"])["sid"]).update(refresh_issued_at=past)

    assert_error(refresh(tokens["refresh"]), 401, TOKEN_NOT_VALID)
    assert_error(me(rotated["access"]), 401, TOKEN_NOT_VALID)


def test_refresh_of_an_ended_session_returns_401(user):
    tokens = login(user.email)
    assert bearer_client(tokens["access"]).post("/api/v1/auth/logout").status_code == 204

    assert_error(refresh(tokens["refresh"]), 401, TOKEN_NOT_VALID)


def test_refresh_of_an_expired_session_returns_401(user):
    tokens = login(user.email)
    Session.objects.filter(pk=claims(tokens["refresh"])["sid"]).update(expires_at=timezone.now())

    assert_error(refresh(tokens["refresh"]), 401, TOKEN_NOT_VALID)


def test_refresh_of_a_deactivated_user_returns_401(user):
    tokens = login(user.email)
    # Saved through the ORM: the session itself stays open, so the user check alone must refuse.
    user.is_active = False
    user.save()

    assert_error(refresh(tokens["refresh"]), 401, TOKEN_NOT_VALID)
    assert_error(me(tokens["access"]), 401, TOKEN_NOT_VALID)


def test_refresh_after_staff_deactivates_the_user_returns_401(user, staff_user, auth_client):
    tokens = login(user.email)

    response = auth_client(staff_user).patch(f"/api/v1/users/{user.pk}", {"is_active": False}, format="json")

    assert response.status_code == 200
    assert_error(refresh(tokens["refresh"]), 401, TOKEN_NOT_VALID)
    assert_error(me(tokens["access"]), 401, TOKEN_NOT_VALID)


def test_refresh_of_a_deleted_user_returns_401(user):
    tokens = login(user.email)

    assert bearer_client(tokens["access"]).delete("/api/v1/users/me").status_code == 204

    assert_error(refresh(tokens["refresh"]), 401, TOKEN_NOT_VALID)


@pytest.mark.parametrize("token", ["not-a-jwt", "a.b.c", "eyJhbGciOiJIUzI1NiJ9.e30.x", "é.é.é"])
def test_malformed_refresh_token_returns_401(db, token):
    assert_error(refresh(token), 401, TOKEN_NOT_VALID)


def test_refresh_signed_with_another_key_returns_401_and_leaves_the_session_alone(user):
    tokens = login(user.email)
    forged = jwt.encode(claims(tokens["refresh"]), "not-the-signing-key-of-this-service", algorithm="HS256")

    assert_error(refresh(forged), 401, TOKEN_NOT_VALID)
    # A forgery naming a real session must not let a stranger end it.
    assert session_of(tokens["refresh"]).ended_at is None
    assert refresh(tokens["refresh"]).status_code == 200


def test_refresh_with_a_tampered_claim_returns_401(user, other_user):
    tokens = login(user.email)
    header, _payload, signature = tokens["refresh"].split(".")
    payload = claims(tokens["refresh"]) | {"user_id": str(other_user.pk), "gen": 5}
    body = base64.urlsafe_b64encode(json.dumps(payload).encode()).rstrip(b"=").decode()

    assert_error(refresh(f"{header}.{body}.{signature}"), 401, TOKEN_NOT_VALID)
    assert refresh(tokens["refresh"]).status_code == 200


def test_access_token_sent_as_refresh_returns_401(user):
    tokens = login(user.email)

    assert_error(refresh(tokens["access"]), 401, TOKEN_NOT_VALID)
    assert refresh(tokens["refresh"]).status_code == 200


@pytest.mark.parametrize("payload", [{}, {"refresh": ""}, {"refresh": 123}, {"refresh": None}])
def test_refresh_with_missing_or_mistyped_field_returns_400(db, payload):
    response = APIClient().post(URL, payload, format="json")

    assert_error(response, 400, VALIDATION_ERROR, fields=["refresh"])


def test_refresh_needs_no_access_token(user):
    tokens = login(user.email)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Bearer garbage")

    response = client.post(URL, {"refresh": tokens["refresh"]}, format="json")

    assert response.status_code == 200


def test_concurrent_refreshes_with_one_token_all_get_a_pair_of_the_live_session(user):
    if connection.vendor == "sqlite" and connection.is_in_memory_db():
        # Threads on SQLite's shared-cache memory database fail with "table is locked" instead of waiting;
        # a SQLite file (the embedded default) and PostgreSQL serialise them as production does.
        pytest.skip("concurrent writers need a file or server database")
    tokens = login(user.email)
    start = threading.Barrier(4)
    results = []

    def refresh_once():
        try:
            start.wait(timeout=10)
            response = refresh(tokens["refresh"])
            results.append((response.status_code, response.json()))
        finally:
            connection.close()

    threads = [threading.Thread(target=refresh_once) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert [status for status, _body in results] == [200] * 4, results
    session = session_of(tokens["refresh"])
    assert session.ended_at is None
    assert session.generation == 1
    for _status, pair in results:
        assert claims(pair["access"])["sid"] == str(session.pk)
        assert me(pair["access"]).status_code == 200
    # Every client ends up holding the one current refresh token.
    assert len({pair["refresh"] for _status, pair in results}) == 1
