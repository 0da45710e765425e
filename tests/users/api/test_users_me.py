"""GET, PUT, PATCH and DELETE /api/v1/users/me: the caller's own account."""

import pytest
from rest_framework.test import APIClient

from tests.assertions import assert_error
from tests.factories import DEFAULT_PASSWORD
from users.models import User

# Deleting the account must reach the shared cache after commit, so these tests commit for real.
pytestmark = pytest.mark.django_db(transaction=True)

ME = "/api/v1/users/me"


def test_get_me_returns_the_caller(user, auth_client):
    response = auth_client(user).get(ME)

    assert response.status_code == 200
    body = response.json()
    assert body["id"] == str(user.pk)
    assert body["email"] == user.email
    assert "password" not in body


def test_get_me_matches_get_by_id(user, auth_client):
    client = auth_client(user)

    assert client.get(ME).json() == client.get(f"/api/v1/users/{user.pk}").json()


def test_get_me_as_staff_returns_the_staff_member(staff_user, user, auth_client):
    assert auth_client(staff_user).get(ME).json()["id"] == str(staff_user.pk)


@pytest.mark.parametrize("path", [ME, ME + "/"])
def test_me_answers_with_and_without_trailing_slash(user, auth_client, path):
    response = auth_client(user).get(path)

    assert response.status_code == 200
    assert response.json()["id"] == str(user.pk)


@pytest.mark.parametrize("method", ["get", "put", "patch", "delete"])
def test_me_without_token_returns_401(api_client, method):
    assert_error(getattr(api_client, method)(ME), 401, "not_authenticated")


def test_me_with_a_forged_token_returns_401_token_not_valid(user, auth_client):
    access = auth_client(user).tokens["access"]
    header, payload, signature = access.split(".")
    forged = f"{header}.{payload}.{signature[:-4]}AAAA"
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {forged}")

    assert_error(client.get(ME), 401, "token_not_valid")


def test_put_me_of_what_get_returned_returns_200(user, auth_client):
    client = auth_client(user)
    before = client.get(ME).json()

    response = client.put(ME, before, format="json")

    assert response.status_code == 200, response.content
    assert response.json() == before


def test_put_me_replaces_the_writable_fields(user, auth_client):
    response = auth_client(user).put(
        ME, {"email": "ME@Example.com", "first_name": "Ann", "last_name": "Lee"}, format="json"
    )

    assert response.status_code == 200, response.content
    user.refresh_from_db()
    assert (user.email, user.first_name, user.last_name) == ("me@example.com", "Ann", "Lee")


def test_patch_me_changes_one_field(user, auth_client):
    last_name = user.last_name

    response = auth_client(user).patch(ME, {"first_name": "Ann"}, format="json")

    assert response.status_code == 200
    assert response.json()["first_name"] == "Ann"
    user.refresh_from_db()
    assert (user.first_name, user.last_name) == ("Ann", last_name)


def test_patch_me_email_clears_email_verified(user, auth_client):
    User.objects.filter(pk=user.pk).update(email_verified=True)

    response = auth_client(user).patch(ME, {"email": "fresh@example.com"}, format="json")

    assert response.status_code == 200
    assert response.json()["email_verified"] is False


def test_patch_me_to_a_taken_email_returns_400(user, other_user, auth_client):
    response = auth_client(user).patch(ME, {"email": other_user.email.title()}, format="json")

    assert_error(response, 400, "validation_error", fields=["email"])


@pytest.mark.parametrize("method", ["put", "patch"])
def test_password_in_me_update_returns_400(user, auth_client, method):
    client = auth_client(user)
    body = {**client.get(ME).json(), "password": "another-long-password"}

    response = getattr(client, method)(ME, body, format="json")

    assert_error(response, 400, "validation_error", fields=["password"])
    user.refresh_from_db()
    assert user.check_password(DEFAULT_PASSWORD)


def test_patch_me_is_staff_as_non_staff_returns_400(user, auth_client):
    response = auth_client(user).patch(ME, {"is_staff": True}, format="json")

    assert_error(response, 400, "validation_error", fields=["is_staff"])
    user.refresh_from_db()
    assert user.is_staff is False


@pytest.mark.parametrize("who", ["user", "staff_user", "superuser"])
def test_patch_me_is_active_false_returns_400_for_everyone(request, auth_client, who):
    me = request.getfixturevalue(who)

    response = auth_client(me).patch(ME, {"is_active": False}, format="json")

    assert_error(response, 400, "validation_error", fields=["is_active"])
    me.refresh_from_db()
    assert me.is_active is True


@pytest.mark.parametrize("body", ["null", "[]"])
def test_patch_me_with_a_non_object_body_returns_400(user, auth_client, body):
    response = auth_client(user).patch(ME, body, content_type="application/json")

    assert_error(response, 400, "validation_error", fields=["non_field_errors"])


def test_delete_me_returns_204_and_removes_the_account(user, auth_client, api_client):
    client = auth_client(user)

    response = client.delete(ME)

    assert response.status_code == 204
    assert not User.objects.filter(pk=user.pk).exists()
    assert_error(client.get(ME), 401, "token_not_valid")
    login = api_client.post("/api/v1/auth/token", {"email": user.email, "password": DEFAULT_PASSWORD}, format="json")
    assert_error(login, 401, "authentication_failed")


def test_delete_me_ends_the_callers_other_sessions_too(user, auth_client):
    first, second = auth_client(user), auth_client(user)
    assert second.get(ME).status_code == 200

    assert first.delete(ME).status_code == 204

    assert_error(second.get(ME), 401, "token_not_valid")
    refreshed = APIClient().post("/api/v1/auth/token/refresh", {"refresh": second.tokens["refresh"]}, format="json")
    assert_error(refreshed, 401, "token_not_valid")


def test_delete_me_leaves_other_users_alone(user, other_user, auth_client):
    other_client = auth_client(other_user)

    auth_client(user).delete(ME)

    assert other_client.get(ME).status_code == 200
    assert User.objects.filter(pk=other_user.pk).exists()


def test_post_to_me_returns_405(user, auth_client):
    assert_error(auth_client(user).post(ME, {}, format="json"), 405, "method_not_allowed")
