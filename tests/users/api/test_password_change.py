"""POST /api/v1/auth/password/change: the caller's session survives, every other one ends at once."""

import pytest
from rest_framework.test import APIClient

from core.exceptions import AUTHENTICATION_FAILED, NOT_AUTHENTICATED, TOKEN_NOT_VALID, VALIDATION_ERROR
from tests.assertions import assert_error
from tests.conftest import bearer_client, login, me, refresh, sid
from tests.factories import DEFAULT_PASSWORD
from users.models import Session

pytestmark = pytest.mark.django_db(transaction=True)

URL = "/api/v1/auth/password/change"
NEW_PASSWORD = "a-much-newer-passphrase-77"


def change(access: str, current_password=DEFAULT_PASSWORD, new_password=NEW_PASSWORD):
    return bearer_client(access).post(
        URL, {"current_password": current_password, "new_password": new_password}, format="json"
    )


def login_response(email: str, password: str):
    return APIClient().post("/api/v1/auth/token", {"email": email, "password": password}, format="json")


def test_password_change_returns_204(user):
    tokens = login(user.email)

    response = change(tokens["access"])

    assert response.status_code == 204
    assert response.content == b""
    user.refresh_from_db()
    assert user.check_password(NEW_PASSWORD)


def test_password_change_ends_other_sessions_and_keeps_the_callers(user):
    current, other, third = login(user.email), login(user.email), login(user.email)

    assert change(current["access"]).status_code == 204

    for tokens in (other, third):
        assert_error(me(tokens["access"]), 401, TOKEN_NOT_VALID)
        assert_error(refresh(tokens["refresh"]), 401, TOKEN_NOT_VALID)
        assert Session.objects.get(pk=sid(tokens["access"])).end_reason == Session.EndReason.PASSWORD_CHANGED
    assert me(current["access"]).status_code == 200
    rotated = refresh(current["refresh"])
    assert rotated.status_code == 200
    assert me(rotated.json()["access"]).status_code == 200
    listed = bearer_client(current["access"]).get("/api/v1/auth/sessions").json()
    assert [s["id"] for s in listed] == [sid(current["access"])]


def test_password_change_leaves_other_users_sessions_alone(user, other_user):
    mine, theirs = login(user.email), login(other_user.email)

    assert change(mine["access"]).status_code == 204

    assert me(theirs["access"]).status_code == 200
    assert refresh(theirs["refresh"]).status_code == 200


def test_login_after_password_change_takes_only_the_new_password(user):
    tokens = login(user.email)
    assert change(tokens["access"]).status_code == 204

    assert_error(login_response(user.email, DEFAULT_PASSWORD), 401, AUTHENTICATION_FAILED)
    assert login_response(user.email, NEW_PASSWORD).status_code == 200


def test_password_change_with_wrong_current_password_returns_400_and_changes_nothing(user):
    current, other = login(user.email), login(user.email)

    response = change(current["access"], current_password="not-my-password")

    assert_error(response, 400, VALIDATION_ERROR, fields=["current_password"])
    assert set(response.json()["details"]) == {"current_password"}
    user.refresh_from_db()
    assert user.check_password(DEFAULT_PASSWORD)
    assert me(other["access"]).status_code == 200


@pytest.mark.parametrize(
    "new_password",
    [
        "short",  # under the minimum length
        "password1234",  # a common password
        "12345678901234",  # entirely numeric
    ],
)
def test_password_change_with_weak_new_password_returns_400_and_changes_nothing(user, new_password):
    current, other = login(user.email), login(user.email)

    response = change(current["access"], new_password=new_password)

    assert_error(response, 400, VALIDATION_ERROR, fields=["new_password"])
    user.refresh_from_db()
    assert user.check_password(DEFAULT_PASSWORD)
    assert me(other["access"]).status_code == 200


def test_password_change_to_a_password_like_the_email_returns_400(user):
    tokens = login(user.email)

    response = change(tokens["access"], new_password=user.email)

    assert_error(response, 400, VALIDATION_ERROR, fields=["new_password"])


@pytest.mark.parametrize(
    ("payload", "fields"),
    [
        ({}, ["current_password", "new_password"]),
        ({"current_password": DEFAULT_PASSWORD}, ["new_password"]),
        ({"new_password": NEW_PASSWORD}, ["current_password"]),
        ({"current_password": DEFAULT_PASSWORD, "new_password": 12345678901}, ["new_password"]),
    ],
)
def test_password_change_with_missing_or_mistyped_fields_returns_400(user, payload, fields):
    tokens = login(user.email)

    response = bearer_client(tokens["access"]).post(URL, payload, format="json")

    assert_error(response, 400, VALIDATION_ERROR, fields=fields)


def test_password_change_without_credentials_returns_401(db):
    response = APIClient().post(
        URL, {"current_password": DEFAULT_PASSWORD, "new_password": NEW_PASSWORD}, format="json"
    )

    assert_error(response, 401, NOT_AUTHENTICATED)


def test_password_change_with_a_token_of_an_ended_session_returns_401(user):
    tokens = login(user.email)
    assert bearer_client(tokens["access"]).post("/api/v1/auth/logout").status_code == 204

    assert_error(change(tokens["access"]), 401, TOKEN_NOT_VALID)
    user.refresh_from_db()
    assert user.check_password(DEFAULT_PASSWORD)
