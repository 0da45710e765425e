"""The Django admin for staff: email login, user list with search and filters, forms, activate/deactivate."""

import re

import pytest
from django.contrib.auth.models import Permission
from django.test import Client

from tests.assertions import assert_error
from tests.conftest import bearer_client, login
from tests.factories import DEFAULT_PASSWORD, UserFactory
from users.models import User

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/users/user/"


def admin_login(user, password: str = DEFAULT_PASSWORD) -> Client:
    """Log in through the admin's own login form and return the client holding the session cookie."""
    client = Client()
    response = client.post("/admin/login/?next=/admin/", {"username": user.email, "password": password})
    assert response.status_code == 302, response.content[:500]
    assert response["Location"] == "/admin/"
    return client


def listed_emails(response) -> set[str]:
    html = response.content.decode()
    return set(re.findall(r'<th class="field-email"><a href="[^"]+">([^<]+)</a>', html))


@pytest.fixture
def admin_client_(superuser):
    return admin_login(superuser)


# ---------------------------------------------------------------- who may enter


def test_superuser_logs_in_with_email_and_sees_the_index(superuser):
    client = admin_login(superuser)

    response = client.get("/admin/")

    assert response.status_code == 200
    assert b"Site administration" in response.content


def test_login_form_asks_for_the_email():
    response = Client().get("/admin/login/")

    assert response.status_code == 200
    assert b"Email address" in response.content


def test_non_staff_user_cannot_log_in_to_admin(user):
    client = Client()

    response = client.post("/admin/login/?next=/admin/", {"username": user.email, "password": DEFAULT_PASSWORD})

    assert response.status_code == 200
    assert b"errornote" in response.content
    assert client.get("/admin/").status_code == 302


def test_inactive_staff_cannot_log_in_to_admin(db):
    staff = UserFactory(staff=True, inactive=True)

    response = Client().post("/admin/login/?next=/admin/", {"username": staff.email, "password": DEFAULT_PASSWORD})

    assert response.status_code == 200
    assert b"errornote" in response.content


def test_anonymous_visitor_is_sent_to_the_login_page():
    response = Client().get(CHANGELIST)

    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


def test_non_staff_session_of_the_site_does_not_open_the_admin(user):
    client = Client()
    client.force_login(user)

    response = client.get(CHANGELIST)

    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


def test_staff_without_user_permissions_is_refused_the_user_list(staff_user):
    client = admin_login(staff_user)

    response = client.get(CHANGELIST)

    assert_error(response, 403, "permission_denied")


def test_staff_with_view_permission_sees_the_user_list(staff_user):
    staff_user.user_permissions.add(Permission.objects.get(codename="view_user", content_type__app_label="users"))
    client = admin_login(staff_user)

    response = client.get(CHANGELIST)

    assert response.status_code == 200
    assert staff_user.email in listed_emails(response)


# ---------------------------------------------------------------- user list


@pytest.fixture
def people(db):
    return {
        "ann": UserFactory(email="ann.lee@example.com", first_name="Ann", last_name="Lee", email_verified=True),
        "bob": UserFactory(email="bob@example.org", first_name="Bob", last_name="Annand", inactive=True),
        "cat": UserFactory(email="cat@example.net", first_name="Cat", last_name="Stone", staff=True),
    }


def test_user_list_shows_email_names_flags_and_dates(admin_client_, people):
    response = admin_client_.get(CHANGELIST)

    assert response.status_code == 200
    html = response.content.decode()
    for column in ["email", "first_name", "last_name", "is_active", "is_staff", "email_verified", "date_joined"]:
        assert f"column-{column}" in html, column
    assert {"ann.lee@example.com", "bob@example.org", "cat@example.net"} <= listed_emails(response)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("ann.lee", {"ann.lee@example.com"}),
        ("EXAMPLE.ORG", {"bob@example.org"}),
        ("Stone", {"cat@example.net"}),
        ("ann", {"ann.lee@example.com", "bob@example.org"}),
    ],
    ids=["email", "email-any-case", "last-name", "first-or-last-name"],
)
def test_user_list_search_matches_email_and_names(admin_client_, people, query, expected):
    response = admin_client_.get(CHANGELIST, {"q": query})

    assert response.status_code == 200
    assert listed_emails(response) == expected


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"is_active__exact": "0"}, {"bob@example.org"}),
        ({"is_staff__exact": "1", "q": "example.net"}, {"cat@example.net"}),
        ({"email_verified__exact": "1"}, {"ann.lee@example.com"}),
    ],
    ids=["inactive", "staff", "verified"],
)
def test_user_list_filters_by_flags(admin_client_, people, params, expected):
    response = admin_client_.get(CHANGELIST, params)

    assert response.status_code == 200
    assert listed_emails(response) == expected


# ---------------------------------------------------------------- add and change forms


def test_add_form_asks_for_email_and_password_and_no_username(admin_client_):
    response = admin_client_.get(f"{CHANGELIST}add/")

    assert response.status_code == 200
    html = response.content.decode()
    assert 'name="email"' in html and 'name="password1"' in html and 'name="password2"' in html
    assert 'name="username"' not in html


def test_add_form_creates_a_user_who_can_log_in_to_the_api(admin_client_):
    password = "a-fresh-admin-set-pass"
    response = admin_client_.post(
        f"{CHANGELIST}add/",
        {
            "email": "New.Person@Example.COM",
            "first_name": "New",
            "last_name": "Person",
            "password1": password,
            "password2": password,
            "usable_password": "true",
        },
    )

    assert response.status_code == 302, response.content[:2000]
    created = User.objects.get(email="new.person@example.com")
    assert created.first_name == "New" and created.is_active and not created.is_staff
    assert created.check_password(password)
    assert set(login("new.person@example.com", password)) == {"access", "refresh"}


def test_add_form_refuses_an_email_taken_in_another_case(admin_client_, user):
    response = admin_client_.post(
        f"{CHANGELIST}add/",
        {
            "email": user.email.upper(),
            "password1": "a-fresh-admin-set-pass",
            "password2": "a-fresh-admin-set-pass",
            "usable_password": "true",
        },
    )

    assert response.status_code == 200
    assert b"already exists" in response.content
    assert User.objects.filter(email__iexact=user.email).count() == 1


def test_add_form_refuses_a_lookalike_email_domain(admin_client_, user):
    lookalike = user.email + "\u200b"  # a zero-width space after the domain: the same address to the eye
    response = admin_client_.post(
        f"{CHANGELIST}add/",
        {
            "email": lookalike,
            "password1": "a-fresh-admin-set-pass",
            "password2": "a-fresh-admin-set-pass",
            "usable_password": "true",
        },
    )

    assert response.status_code == 200
    assert b"Enter a valid email address." in response.content
    assert User.objects.count() == 2  # the admin and ``user``: nothing created


def _change_form_data(user, **changes) -> dict:
    data = {
        "email": user.email,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "is_active": "on" if user.is_active else "",
        "email_verified": "on" if user.email_verified else "",
        "is_staff": "on" if user.is_staff else "",
        "is_superuser": "on" if user.is_superuser else "",
    }
    data.update(changes)
    return {key: value for key, value in data.items() if value != ""}


def test_change_form_shows_the_user(admin_client_, user):
    response = admin_client_.get(f"{CHANGELIST}{user.pk}/change/")

    assert response.status_code == 200
    html = response.content.decode()
    assert user.email in html
    assert 'name="email"' in html
    assert 'name="password"' not in html  # the hash is shown read-only, with a link to the password form


def test_change_form_saves_names_and_email_lower_cased(admin_client_, user):
    response = admin_client_.post(
        f"{CHANGELIST}{user.pk}/change/",
        _change_form_data(user, first_name="Renamed", email="Moved@Example.COM"),
    )

    assert response.status_code == 302, response.content[:2000]
    user.refresh_from_db()
    assert user.first_name == "Renamed"
    assert user.email == "moved@example.com"


def test_change_form_refuses_an_email_of_another_user(admin_client_, user, other_user):
    response = admin_client_.post(
        f"{CHANGELIST}{user.pk}/change/", _change_form_data(user, email=other_user.email.upper())
    )

    assert response.status_code == 200
    assert b"already exists" in response.content
    user.refresh_from_db()
    assert user.email != other_user.email


def test_password_form_sets_a_new_password(admin_client_, user):
    response = admin_client_.post(
        f"{CHANGELIST}{user.pk}/password/",
        {"password1": "an-admin-chosen-pass", "password2": "an-admin-chosen-pass", "usable_password": "true"},
    )

    assert response.status_code == 302, response.content[:2000]
    user.refresh_from_db()
    assert user.check_password("an-admin-chosen-pass")


# ---------------------------------------------------------------- actions that end API sessions at once

sessions_test = pytest.mark.django_db(transaction=True)


def _action(client, action: str, users) -> None:
    response = client.post(
        CHANGELIST, {"action": action, "_selected_action": [str(u.pk) for u in users], "index": "0"}
    )
    assert response.status_code == 302, response.content[:2000]


@sessions_test
def test_deactivate_action_ends_the_users_api_sessions_at_once(superuser, user, other_user):
    tokens = login(user.email)
    client = bearer_client(tokens["access"])
    bystander = bearer_client(login(other_user.email)["access"])
    assert client.get("/api/v1/users/me").status_code == 200

    _action(admin_login(superuser), "deactivate_users", [user])

    user.refresh_from_db()
    assert not user.is_active
    assert_error(client.get("/api/v1/users/me"), 401, "token_not_valid")
    refreshed = bearer_client("").post("/api/v1/auth/token/refresh", {"refresh": tokens["refresh"]}, format="json")
    assert_error(refreshed, 401, "token_not_valid")
    assert bystander.get("/api/v1/users/me").status_code == 200


@sessions_test
def test_deactivated_user_cannot_log_in_to_the_api(superuser, user):
    _action(admin_login(superuser), "deactivate_users", [user])

    response = bearer_client("").post(
        "/api/v1/auth/token", {"email": user.email, "password": DEFAULT_PASSWORD}, format="json"
    )

    assert_error(response, 401, "authentication_failed")


@sessions_test
def test_deactivate_action_spares_the_staff_member_using_it(superuser, user):
    client = admin_login(superuser)

    _action(client, "deactivate_users", [user, superuser])

    superuser.refresh_from_db()
    user.refresh_from_db()
    assert superuser.is_active and not user.is_active
    assert client.get(CHANGELIST).status_code == 200


@sessions_test
def test_activate_action_lets_the_user_log_in_again(superuser):
    dormant = UserFactory(inactive=True)

    _action(admin_login(superuser), "activate_users", [dormant])

    dormant.refresh_from_db()
    assert dormant.is_active
    assert bearer_client(login(dormant.email)["access"]).get("/api/v1/users/me").status_code == 200


@sessions_test
def test_unticking_active_on_the_change_form_ends_the_users_api_sessions(superuser, user):
    client = bearer_client(login(user.email)["access"])

    response = admin_login(superuser).post(f"{CHANGELIST}{user.pk}/change/", _change_form_data(user, is_active=""))

    assert response.status_code == 302, response.content[:2000]
    assert_error(client.get("/api/v1/users/me"), 401, "token_not_valid")


@sessions_test
def test_deleting_a_user_in_the_admin_ends_the_users_api_sessions(superuser, user):
    client = bearer_client(login(user.email)["access"])

    response = admin_login(superuser).post(f"{CHANGELIST}{user.pk}/delete/", {"post": "yes"})

    assert response.status_code == 302, response.content[:2000]
    assert not User.objects.filter(pk=user.pk).exists()
    assert_error(client.get("/api/v1/users/me"), 401, "token_not_valid")


# ---------------------------------------------------------------- sessions


def test_sessions_cannot_be_added_by_hand(admin_client_):
    assert_error(admin_client_.get("/admin/users/session/add/"), 403, "permission_denied")


def test_session_page_never_shows_refresh_token_hashes(admin_client_, user):
    login(user.email)
    session = user.sessions.get()

    response = admin_client_.get(f"/admin/users/session/{session.pk}/change/")

    assert response.status_code == 200
    html = response.content.decode()
    assert session.refresh_hash not in html
    assert "refresh_hash" not in html
