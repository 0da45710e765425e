"""GET, PUT, PATCH and DELETE /api/v1/users/{id}: visibility, field-level write rules, revocation."""

import uuid

import pytest
from rest_framework.test import APIClient

from tests.assertions import assert_error
from tests.conftest import login
from tests.factories import DEFAULT_PASSWORD, UserFactory
from users.models import Session, User

# Deactivation and deletion reach the shared cache after commit, so these tests commit for real.
pytestmark = pytest.mark.django_db(transaction=True)


def url(user_or_id) -> str:
    return f"/api/v1/users/{getattr(user_or_id, 'pk', user_or_id)}"


def refresh(refresh_token: str):
    return APIClient().post("/api/v1/auth/token/refresh", {"refresh": refresh_token}, format="json")


# ---------------------------------------------------------------- retrieve


def test_retrieve_self_returns_the_user(user, auth_client):
    response = auth_client(user).get(url(user))

    assert response.status_code == 200
    body = response.json()
    user.refresh_from_db()
    assert body["id"] == str(user.pk)
    assert body["email"] == user.email
    assert body["first_name"] == user.first_name
    assert body["last_name"] == user.last_name
    assert body["is_active"] is True and body["is_staff"] is False and body["email_verified"] is False
    assert body["last_login"] is not None
    assert "password" not in body and "is_superuser" not in body


def test_retrieve_other_user_returns_404(user, other_user, auth_client):
    assert_error(auth_client(user).get(url(other_user)), 404, "not_found")


def test_retrieve_other_user_as_staff_returns_200(staff_user, user, auth_client):
    response = auth_client(staff_user).get(url(user))

    assert response.status_code == 200
    assert response.json()["email"] == user.email


def test_non_superuser_staff_may_read_a_superuser(staff_user, superuser, auth_client):
    assert auth_client(staff_user).get(url(superuser)).status_code == 200


def test_retrieve_unknown_id_returns_404(staff_user, auth_client):
    assert_error(auth_client(staff_user).get(url(uuid.uuid4())), 404, "not_found")


@pytest.mark.parametrize(
    "bad_id", ["not-a-uuid", "12345", "0" * 31, "8c0f5d52-4a0e-4e7b-9d55-3c8f1b2a6e710", "me-too", "%20"]
)
def test_retrieve_malformed_id_returns_404(staff_user, auth_client, bad_id):
    assert_error(auth_client(staff_user).get(url(bad_id)), 404, "not_found")


def test_retrieve_without_token_returns_401(user, api_client):
    assert_error(api_client.get(url(user)), 401, "not_authenticated")


def test_retrieve_with_another_auth_scheme_returns_401_not_authenticated(user, api_client):
    api_client.credentials(HTTP_AUTHORIZATION="Basic dXNlcjpwYXNz")

    assert_error(api_client.get(url(user)), 401, "not_authenticated")


def test_retrieve_with_trailing_slash_returns_200(user, auth_client):
    assert auth_client(user).get(url(user) + "/").status_code == 200


def test_post_to_a_user_returns_405(user, auth_client):
    assert_error(auth_client(user).post(url(user), {}, format="json"), 405, "method_not_allowed")


# ---------------------------------------------------------------- update: what anyone may change on themselves


def test_put_of_what_get_returned_returns_200_and_changes_nothing(user, auth_client):
    client = auth_client(user)
    before = client.get(url(user)).json()

    response = client.put(url(user), before, format="json")

    assert response.status_code == 200, response.content
    assert response.json() == before


@pytest.mark.parametrize(
    ("caller", "target"),
    [("staff_user", "user"), ("staff_user", "other_staff"), ("superuser", "staff_user"), ("superuser", "superuser")],
)
def test_put_of_what_get_returned_works_for_staff_on_others_and_themselves(request, auth_client, caller, target):
    target_user = UserFactory(staff=True) if target == "other_staff" else request.getfixturevalue(target)
    client = auth_client(request.getfixturevalue(caller))
    before = client.get(url(target_user)).json()

    response = client.put(url(target_user), before, format="json")

    assert response.status_code == 200, response.content
    assert response.json() == before


def test_put_replaces_the_writable_fields(user, auth_client):
    response = auth_client(user).put(
        url(user), {"email": "New@Example.com", "first_name": "Ann", "last_name": "Lee"}, format="json"
    )

    assert response.status_code == 200, response.content
    user.refresh_from_db()
    assert (user.email, user.first_name, user.last_name) == ("new@example.com", "Ann", "Lee")
    assert response.json()["email"] == "new@example.com"


def test_put_without_email_returns_400(user, auth_client):
    response = auth_client(user).put(url(user), {"first_name": "Ann"}, format="json")

    assert_error(response, 400, "validation_error", fields=["email"])
    user.refresh_from_db()
    assert user.first_name != "Ann"


def test_patch_changes_only_the_fields_sent(user, auth_client):
    email, last_name = user.email, user.last_name

    response = auth_client(user).patch(url(user), {"first_name": "Ann"}, format="json")

    assert response.status_code == 200
    user.refresh_from_db()
    assert (user.first_name, user.last_name, user.email) == ("Ann", last_name, email)


def test_patch_may_blank_a_name(user, auth_client):
    response = auth_client(user).patch(url(user), {"last_name": ""}, format="json")

    assert response.status_code == 200
    user.refresh_from_db()
    assert user.last_name == ""


def test_empty_patch_returns_200_unchanged(user, auth_client):
    client = auth_client(user)
    before = client.get(url(user)).json()

    response = client.patch(url(user), {}, format="json")

    assert response.status_code == 200
    assert response.json() == before


def test_patch_ignores_unknown_and_read_only_fields(user, auth_client):
    client = auth_client(user)
    before = client.get(url(user)).json()

    response = client.patch(
        url(user),
        {
            "id": str(uuid.uuid4()),
            "email_verified": True,
            "date_joined": "2000-01-01T00:00:00Z",
            "last_login": "2000-01-01T00:00:00Z",
            "is_superuser": True,
            "nickname": "annie",
        },
        format="json",
    )

    assert response.status_code == 200, response.content
    assert response.json() == before
    user.refresh_from_db()
    assert user.email_verified is False and user.is_superuser is False


@pytest.mark.parametrize("method", ["put", "patch"])
def test_password_in_an_update_returns_400_and_keeps_the_old_password(user, auth_client, method):
    client = auth_client(user)
    body = {**client.get(url(user)).json(), "password": "a-brand-new-password"}

    response = getattr(client, method)(url(user), body, format="json")

    assert_error(response, 400, "validation_error", fields=["password"])
    user.refresh_from_db()
    assert user.check_password(DEFAULT_PASSWORD)


@pytest.mark.parametrize(
    ("field", "value"),
    [("email", 5), ("email", "not-an-email"), ("first_name", 7), ("last_name", ["x"]), ("first_name", "x" * 151)],
)
def test_patch_with_a_bad_value_returns_400(user, auth_client, field, value):
    response = auth_client(user).patch(url(user), {field: value}, format="json")

    assert_error(response, 400, "validation_error", fields=[field])


@pytest.mark.parametrize("body", ["null", "[]", "[1, 2]"])
def test_patch_with_a_non_object_body_returns_400_validation_error(user, auth_client, body):
    response = auth_client(user).patch(url(user), body, content_type="application/json")

    assert_error(response, 400, "validation_error", fields=["non_field_errors"])


def test_email_change_clears_email_verified(user, auth_client):
    User.objects.filter(pk=user.pk).update(email_verified=True)

    response = auth_client(user).patch(url(user), {"email": "Changed@Example.com"}, format="json")

    assert response.status_code == 200
    assert response.json()["email"] == "changed@example.com"
    assert response.json()["email_verified"] is False
    user.refresh_from_db()
    assert user.email == "changed@example.com" and user.email_verified is False


def test_same_email_in_another_case_keeps_email_verified(user, auth_client):
    User.objects.filter(pk=user.pk).update(email_verified=True)

    response = auth_client(user).patch(url(user), {"email": user.email.upper()}, format="json")

    assert response.status_code == 200
    assert response.json()["email_verified"] is True
    assert response.json()["email"] == user.email


def test_email_change_to_a_taken_email_in_another_case_returns_400(user, other_user, auth_client):
    response = auth_client(user).patch(url(user), {"email": other_user.email.upper()}, format="json")

    assert_error(response, 400, "validation_error", fields=["email"])
    user.refresh_from_db()
    assert user.email != other_user.email


def test_user_can_log_in_with_the_changed_email(user, auth_client):
    auth_client(user).patch(url(user), {"email": "moved@example.com"}, format="json")

    assert set(login("moved@example.com")) == {"access", "refresh"}


def test_change_by_staff_is_seen_by_the_user_at_once(staff_user, user, auth_client):
    user_client = auth_client(user)
    assert user_client.get("/api/v1/users/me").json()["first_name"] != "Renamed"

    auth_client(staff_user).patch(url(user), {"first_name": "Renamed"}, format="json")

    assert user_client.get("/api/v1/users/me").json()["first_name"] == "Renamed"
    assert user_client.get(url(user)).json()["first_name"] == "Renamed"


def test_change_by_the_user_is_seen_by_staff_at_once(staff_user, user, auth_client):
    staff_client = auth_client(staff_user)
    assert staff_client.get(url(user)).json()["email"] == user.email

    auth_client(user).patch(url(user), {"email": "moved@example.com"}, format="json")

    body = staff_client.get(url(user)).json()
    assert body["email"] == "moved@example.com"
    assert body["email_verified"] is False


# ---------------------------------------------------------------- update: permission-limited fields


def test_non_staff_patch_of_is_staff_returns_400_and_leaves_it_unchanged(user, auth_client):
    response = auth_client(user).patch(url(user), {"is_staff": True}, format="json")

    assert_error(response, 400, "validation_error", fields=["is_staff"])
    user.refresh_from_db()
    assert user.is_staff is False


def test_non_staff_patch_of_is_active_returns_400(user, auth_client):
    response = auth_client(user).patch(url(user), {"is_active": False}, format="json")

    assert_error(response, 400, "validation_error", fields=["is_active"])
    user.refresh_from_db()
    assert user.is_active is True


def test_limited_fields_equal_to_the_current_values_are_accepted(user, auth_client):
    response = auth_client(user).patch(url(user), {"is_staff": False, "is_active": True}, format="json")

    assert response.status_code == 200, response.content


def test_rejected_limited_field_applies_no_other_change(user, auth_client):
    first_name = user.first_name

    response = auth_client(user).patch(url(user), {"first_name": "Sneaky", "is_staff": True}, format="json")

    assert_error(response, 400, "validation_error", fields=["is_staff"])
    user.refresh_from_db()
    assert user.first_name == first_name


def test_non_superuser_staff_changing_is_staff_of_another_returns_400(staff_user, user, auth_client):
    response = auth_client(staff_user).patch(url(user), {"is_staff": True}, format="json")

    assert_error(response, 400, "validation_error", fields=["is_staff"])
    user.refresh_from_db()
    assert user.is_staff is False


def test_non_superuser_staff_removing_their_own_staff_flag_returns_400(staff_user, auth_client):
    response = auth_client(staff_user).patch(url(staff_user), {"is_staff": False}, format="json")

    assert_error(response, 400, "validation_error", fields=["is_staff"])
    staff_user.refresh_from_db()
    assert staff_user.is_staff is True


def test_superuser_may_make_a_user_staff_and_their_token_gains_staff_rights(superuser, user, auth_client):
    user_client = auth_client(user)
    assert_error(user_client.get("/api/v1/users"), 403, "permission_denied")

    response = auth_client(superuser).patch(url(user), {"is_staff": True}, format="json")

    assert response.status_code == 200, response.content
    assert response.json()["is_staff"] is True
    user.refresh_from_db()
    assert user.is_staff is True
    assert user_client.get("/api/v1/users").status_code == 200


def test_superuser_removing_staff_takes_staff_rights_from_their_token_at_once(superuser, staff_user, auth_client):
    staff_client = auth_client(staff_user)
    assert staff_client.get("/api/v1/users").status_code == 200

    response = auth_client(superuser).patch(url(staff_user), {"is_staff": False}, format="json")

    assert response.status_code == 200
    assert_error(staff_client.get("/api/v1/users"), 403, "permission_denied")


def test_staff_may_deactivate_another_user(staff_user, user, auth_client):
    response = auth_client(staff_user).patch(url(user), {"is_active": False}, format="json")

    assert response.status_code == 200
    assert response.json()["is_active"] is False
    user.refresh_from_db()
    assert user.is_active is False


def test_deactivation_by_staff_makes_every_token_of_the_user_401_at_once(staff_user, user, auth_client):
    first = auth_client(user)
    second = auth_client(user)
    assert first.get("/api/v1/users/me").status_code == 200

    auth_client(staff_user).patch(url(user), {"is_active": False}, format="json")

    for client in (first, second):
        assert_error(client.get("/api/v1/users/me"), 401, "token_not_valid")
        assert_error(refresh(client.tokens["refresh"]), 401, "token_not_valid")
    assert not Session.objects.filter(user=user, ended_at__isnull=True).exists()


def test_deactivated_user_cannot_log_in(staff_user, user, auth_client, api_client):
    auth_client(staff_user).patch(url(user), {"is_active": False}, format="json")

    response = api_client.post(
        "/api/v1/auth/token", {"email": user.email, "password": DEFAULT_PASSWORD}, format="json"
    )

    assert_error(response, 401, "authentication_failed")


def test_reactivated_user_can_log_in_but_old_tokens_stay_dead(staff_user, user, auth_client):
    old = auth_client(user)
    staff_client = auth_client(staff_user)
    staff_client.patch(url(user), {"is_active": False}, format="json")

    response = staff_client.patch(url(user), {"is_active": True}, format="json")

    assert response.status_code == 200
    assert_error(old.get("/api/v1/users/me"), 401, "token_not_valid")
    assert auth_client(user).get("/api/v1/users/me").status_code == 200


@pytest.mark.parametrize("who", ["staff_user", "superuser"])
def test_staff_deactivating_themselves_returns_400(request, auth_client, who):
    me = request.getfixturevalue(who)

    response = auth_client(me).patch(url(me), {"is_active": False}, format="json")

    assert_error(response, 400, "validation_error", fields=["is_active"])
    me.refresh_from_db()
    assert me.is_active is True


def test_staff_may_change_another_users_names_and_email(staff_user, user, auth_client):
    response = auth_client(staff_user).patch(
        url(user), {"first_name": "Renamed", "email": "renamed@example.com"}, format="json"
    )

    assert response.status_code == 200
    user.refresh_from_db()
    assert (user.first_name, user.email) == ("Renamed", "renamed@example.com")


def test_non_staff_update_of_another_user_returns_404_and_changes_nothing(user, other_user, auth_client):
    client = auth_client(user)
    email = other_user.email

    assert_error(client.patch(url(other_user), {"email": "stolen@example.com"}, format="json"), 404, "not_found")
    assert_error(client.put(url(other_user), {"email": "stolen@example.com"}, format="json"), 404, "not_found")
    other_user.refresh_from_db()
    assert other_user.email == email


def test_update_of_unknown_id_returns_404(staff_user, auth_client):
    response = auth_client(staff_user).patch(url(uuid.uuid4()), {"first_name": "X"}, format="json")

    assert_error(response, 404, "not_found")


# ---------------------------------------------------------------- superusers are changed only by superusers


@pytest.mark.parametrize(
    ("method", "body"),
    [
        ("patch", {"email": "taken-over@example.com"}),
        ("patch", {"first_name": "X"}),
        ("patch", {"is_active": False}),
        ("put", {"email": "taken-over@example.com"}),
    ],
)
def test_non_superuser_staff_changing_a_superuser_returns_403(staff_user, superuser, auth_client, method, body):
    email = superuser.email

    response = getattr(auth_client(staff_user), method)(url(superuser), body, format="json")

    assert_error(response, 403, "permission_denied")
    superuser.refresh_from_db()
    assert superuser.email == email and superuser.is_active is True and superuser.first_name != "X"


def test_non_superuser_staff_deleting_a_superuser_returns_403(staff_user, superuser, auth_client):
    assert_error(auth_client(staff_user).delete(url(superuser)), 403, "permission_denied")
    assert User.objects.filter(pk=superuser.pk).exists()


def test_superuser_may_change_another_superuser(superuser, auth_client):
    other = UserFactory(superuser=True)

    response = auth_client(superuser).patch(url(other), {"first_name": "Changed"}, format="json")

    assert response.status_code == 200
    other.refresh_from_db()
    assert other.first_name == "Changed"


# ---------------------------------------------------------------- delete


def test_delete_self_returns_204_and_the_token_stops_working(user, auth_client):
    client = auth_client(user)

    response = client.delete(url(user))

    assert response.status_code == 204
    assert response.content == b""
    assert not User.objects.filter(pk=user.pk).exists()
    assert_error(client.get("/api/v1/users/me"), 401, "token_not_valid")
    assert_error(refresh(client.tokens["refresh"]), 401, "token_not_valid")


def test_staff_deleting_a_user_makes_all_their_tokens_401(staff_user, user, auth_client, api_client):
    first, second = auth_client(user), auth_client(user)
    assert first.get("/api/v1/users/me").status_code == 200

    response = auth_client(staff_user).delete(url(user))

    assert response.status_code == 204
    for client in (first, second):
        assert_error(client.get("/api/v1/users/me"), 401, "token_not_valid")
    assert not Session.objects.filter(user_id=user.pk).exists()
    login_again = api_client.post(
        "/api/v1/auth/token", {"email": user.email, "password": DEFAULT_PASSWORD}, format="json"
    )
    assert_error(login_again, 401, "authentication_failed")


def test_non_staff_deleting_another_user_returns_404_and_keeps_them(user, other_user, auth_client):
    assert_error(auth_client(user).delete(url(other_user)), 404, "not_found")
    assert User.objects.filter(pk=other_user.pk).exists()


def test_delete_unknown_id_returns_404(staff_user, auth_client):
    assert_error(auth_client(staff_user).delete(url(uuid.uuid4())), 404, "not_found")


def test_delete_without_token_returns_401(user, api_client):
    assert_error(api_client.delete(url(user)), 401, "not_authenticated")
    assert User.objects.filter(pk=user.pk).exists()


def test_deleted_email_can_register_again(user, auth_client, api_client):
    auth_client(user).delete(url(user))

    response = api_client.post("/api/v1/users", {"email": user.email, "password": "a-long-enough-pass"}, format="json")

    assert response.status_code == 201
    assert response.json()["id"] != str(user.pk)
