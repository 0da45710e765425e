"""POST /api/v1/auth/logout and /logout-all: sessions end at once, their access and refresh tokens refused."""

import pytest
from rest_framework.test import APIClient

from core.exceptions import NOT_AUTHENTICATED, TOKEN_NOT_VALID, VALIDATION_ERROR
from tests.assertions import assert_error
from tests.conftest import bearer_client, login, me, refresh, sid
from users.models import Session

pytestmark = pytest.mark.django_db(transaction=True)

LOGOUT = "/api/v1/auth/logout"
LOGOUT_ALL = "/api/v1/auth/logout-all"


def assert_session_works(tokens: dict) -> None:
    assert me(tokens["access"]).status_code == 200
    assert refresh(tokens["refresh"]).status_code == 200


def assert_session_refused(tokens: dict) -> None:
    assert_error(me(tokens["access"]), 401, TOKEN_NOT_VALID)
    assert_error(refresh(tokens["refresh"]), 401, TOKEN_NOT_VALID)


def test_logout_without_body_or_content_type_returns_204(user):
    tokens = login(user.email)

    response = bearer_client(tokens["access"]).generic("POST", LOGOUT, content_type=None)

    assert "CONTENT_TYPE" not in response.wsgi_request.META
    assert response.status_code == 204
    assert response.content == b""
    assert_session_refused(tokens)


def test_logout_with_an_empty_json_body_returns_204(user):
    tokens = login(user.email)

    response = bearer_client(tokens["access"]).post(LOGOUT, {}, format="json")

    assert response.status_code == 204
    assert_session_refused(tokens)


def test_logout_ends_the_session_and_refuses_its_tokens_at_once(user):
    tokens = login(user.email)
    assert me(tokens["access"]).status_code == 200

    assert bearer_client(tokens["access"]).post(LOGOUT).status_code == 204

    assert_session_refused(tokens)
    session = Session.objects.get(pk=sid(tokens["access"]))
    assert session.ended_at is not None
    assert session.end_reason == Session.EndReason.LOGOUT


def test_logout_refuses_every_access_token_the_session_issued(user):
    tokens = login(user.email)
    rotated = refresh(tokens["refresh"]).json()

    assert bearer_client(rotated["access"]).post(LOGOUT).status_code == 204

    assert_error(me(tokens["access"]), 401, TOKEN_NOT_VALID)
    assert_error(me(rotated["access"]), 401, TOKEN_NOT_VALID)
    assert_error(refresh(rotated["refresh"]), 401, TOKEN_NOT_VALID)


def test_logout_with_its_own_refresh_token_returns_204(user):
    tokens = login(user.email)

    response = bearer_client(tokens["access"]).post(LOGOUT, {"refresh": tokens["refresh"]}, format="json")

    assert response.status_code == 204
    assert_session_refused(tokens)


def test_logout_with_refresh_of_another_session_ignores_it(user):
    current, other = login(user.email), login(user.email)

    response = bearer_client(current["access"]).post(LOGOUT, {"refresh": other["refresh"]}, format="json")

    assert response.status_code == 204
    assert_error(me(current["access"]), 401, TOKEN_NOT_VALID)
    assert_session_works(other)


def test_logout_with_refresh_of_another_user_ignores_it(user, other_user):
    current, theirs = login(user.email), login(other_user.email)

    response = bearer_client(current["access"]).post(LOGOUT, {"refresh": theirs["refresh"]}, format="json")

    assert response.status_code == 204
    assert_session_works(theirs)


def test_logout_with_a_garbage_refresh_string_still_logs_out(user):
    tokens = login(user.email)

    response = bearer_client(tokens["access"]).post(LOGOUT, {"refresh": "garbage"}, format="json")

    assert response.status_code == 204
    assert_session_refused(tokens)


def test_logout_with_a_non_string_refresh_returns_400(user):
    tokens = login(user.email)

    response = bearer_client(tokens["access"]).post(LOGOUT, {"refresh": 7}, format="json")

    assert_error(response, 400, VALIDATION_ERROR, fields=["refresh"])
    assert_session_works(tokens)


def test_logout_keeps_the_users_other_sessions(user):
    first, second = login(user.email), login(user.email)

    assert bearer_client(first["access"]).post(LOGOUT).status_code == 204

    assert_session_refused(first)
    assert_session_works(second)


def test_second_logout_with_the_same_token_returns_401(user):
    tokens = login(user.email)
    client = bearer_client(tokens["access"])
    assert client.post(LOGOUT).status_code == 204

    assert_error(client.post(LOGOUT), 401, TOKEN_NOT_VALID)


@pytest.mark.parametrize("url", [LOGOUT, LOGOUT_ALL])
def test_logout_without_credentials_returns_401(db, url):
    assert_error(APIClient().post(url), 401, NOT_AUTHENTICATED)


@pytest.mark.parametrize("url", [LOGOUT, LOGOUT_ALL])
def test_logout_with_get_returns_405(user, url):
    tokens = login(user.email)

    assert_error(bearer_client(tokens["access"]).get(url), 405, "method_not_allowed")


def test_logout_all_ends_every_session_of_the_user(user, other_user):
    sessions = [login(user.email) for _ in range(3)]
    theirs = login(other_user.email)

    response = bearer_client(sessions[0]["access"]).generic("POST", LOGOUT_ALL, content_type=None)

    assert response.status_code == 204

    for tokens in sessions:
        assert_session_refused(tokens)
    assert not Session.objects.filter(user=user, ended_at__isnull=True).exists()
    assert set(Session.objects.filter(user=user).values_list("end_reason", flat=True)) == {"logout_all"}
    assert_session_works(theirs)


def test_logout_all_with_keep_current_false_ends_the_current_session_too(user):
    current, other = login(user.email), login(user.email)

    response = bearer_client(current["access"]).post(LOGOUT_ALL, {"keep_current": False}, format="json")

    assert response.status_code == 204
    assert_session_refused(current)
    assert_session_refused(other)


def test_logout_all_with_keep_current_keeps_only_the_current_session(user):
    current, *others = (login(user.email) for _ in range(3))

    response = bearer_client(current["access"]).post(LOGOUT_ALL, {"keep_current": True}, format="json")

    assert response.status_code == 204
    for tokens in others:
        assert_session_refused(tokens)
    assert_session_works(current)
    listed = bearer_client(current["access"]).get("/api/v1/auth/sessions").json()
    assert [s["id"] for s in listed] == [sid(current["access"])]


@pytest.mark.parametrize("value", ["yes", 1, None])
def test_logout_all_with_non_boolean_keep_current_returns_400(user, value):
    current, other = login(user.email), login(user.email)

    response = bearer_client(current["access"]).post(LOGOUT_ALL, {"keep_current": value}, format="json")

    assert_error(response, 400, VALIDATION_ERROR, fields=["keep_current"])
    assert_session_works(current)
    assert_session_works(other)


def test_tokens_after_logout_all_are_refused_even_when_issued_by_refresh(user):
    tokens = login(user.email)
    rotated = refresh(tokens["refresh"]).json()

    assert bearer_client(tokens["access"]).post(LOGOUT_ALL).status_code == 204

    assert_session_refused(rotated)
