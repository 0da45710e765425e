"""Each security event is recorded exactly once, with its actor and request id, from the API and the admin alike."""

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from tests.conftest import bearer_client, login
from tests.factories import DEFAULT_PASSWORD, UserFactory
from tests.users.lifecycle.support import events, link_in, messages_to
from users.models import SecurityEvent, User

pytestmark = pytest.mark.django_db(transaction=True)

RID = {"HTTP_X_REQUEST_ID": "req-under-test", "HTTP_USER_AGENT": "lifecycle-tests/1.0"}


def only(user_id, type) -> SecurityEvent:
    found = events(user_id, type)
    assert len(found) == 1, [(e.type, e.details) for e in events(user_id)]
    return found[0]


def assert_recorded(user_id, type, *, actor) -> SecurityEvent:
    event = only(user_id, type)
    assert event.actor_id == (actor.pk if actor is not None else None)
    assert event.request_id == "req-under-test"
    assert event.ip == "127.0.0.1"
    assert event.user_agent == "lifecycle-tests/1.0"
    return event


def token_client(user) -> APIClient:
    return bearer_client(login(user.email)["access"])


# ---------------------------------------------------------------- through the API


def test_self_registration_records_registered_and_verification_sent_by_the_user(api_client):
    response = api_client.post(
        "/api/v1/users", {"email": "new@example.com", "password": DEFAULT_PASSWORD}, format="json", **RID
    )

    user = User.objects.get(pk=response.json()["id"])
    assert_recorded(user.pk, "registered", actor=user)
    assert_recorded(user.pk, "email_verification_sent", actor=user)


def test_registration_by_staff_records_the_staff_member_as_actor(staff_user):
    response = token_client(staff_user).post(
        "/api/v1/users", {"email": "made@example.com", "password": DEFAULT_PASSWORD}, format="json", **RID
    )

    assert_recorded(response.json()["id"], "registered", actor=staff_user)


def test_login_success_is_recorded_with_its_session(user):
    APIClient().post("/api/v1/auth/token", {"email": user.email, "password": DEFAULT_PASSWORD}, format="json", **RID)

    event = assert_recorded(user.pk, "login_succeeded", actor=user)
    assert event.details["session_id"] == str(user.sessions.get().pk)


def test_login_failure_of_a_known_email_is_recorded_on_the_account(user):
    APIClient().post("/api/v1/auth/token", {"email": user.email, "password": "wrong-password"}, format="json", **RID)

    event = assert_recorded(user.pk, "login_failed", actor=None)
    assert "wrong-password" not in str(event.details)


def test_login_failure_of_an_unknown_email_is_recorded_without_an_account():
    APIClient().post(
        "/api/v1/auth/token", {"email": "Ghost@Example.com", "password": "wrong-password"}, format="json", **RID
    )

    [event] = SecurityEvent.objects.filter(type="login_failed")
    assert event.user_id is None and event.actor_id is None
    assert event.details == {"email": "ghost@example.com"}
    assert event.request_id == "req-under-test"


def test_logout_is_recorded(user):
    client = token_client(user)

    client.post("/api/v1/auth/logout", **RID)

    assert_recorded(user.pk, "logout", actor=user)


def test_logout_all_is_recorded(user):
    login(user.email)
    client = token_client(user)

    client.post("/api/v1/auth/logout-all", {"keep_current": True}, format="json", **RID)

    event = assert_recorded(user.pk, "logout_all", actor=user)
    assert event.details == {"sessions_ended": 1, "kept_current": True}


def test_password_change_is_recorded_without_the_passwords(user):
    client = token_client(user)

    client.post(
        "/api/v1/auth/password/change",
        {"current_password": DEFAULT_PASSWORD, "new_password": "another-long-passphrase"},
        format="json",
        **RID,
    )

    event = assert_recorded(user.pk, "password_changed", actor=user)
    assert event.details == {}


def test_password_reset_request_and_completion_are_recorded(user):
    client = APIClient()
    client.post("/api/v1/auth/password/reset", {"email": user.email}, format="json", **RID)
    params = link_in(messages_to(user.email)[0], "reset-password")

    client.post(
        "/api/v1/auth/password/reset/confirm",
        {**params, "new_password": "a-brand-new-passphrase"},
        format="json",
        **RID,
    )

    assert_recorded(user.pk, "password_reset_requested", actor=None)
    assert_recorded(user.pk, "password_reset_completed", actor=user)


def test_password_reset_request_for_an_unknown_email_is_recorded_without_an_account():
    APIClient().post("/api/v1/auth/password/reset", {"email": "ghost@example.com"}, format="json", **RID)

    [event] = SecurityEvent.objects.filter(type="password_reset_requested")
    assert event.user_id is None and event.details == {"email": "ghost@example.com"}


def test_email_verification_is_recorded(user):
    token_client(user).post("/api/v1/auth/email/verify/resend", **RID)
    params = link_in(messages_to(user.email)[0], "verify-email")

    APIClient().post("/api/v1/auth/email/verify", params, format="json", **RID)

    assert_recorded(user.pk, "email_verification_sent", actor=user)
    assert_recorded(user.pk, "email_verified", actor=user)


def test_profile_change_records_the_field_names(user):
    token_client(user).patch("/api/v1/users/me", {"first_name": "Changed", "last_name": "Too"}, format="json", **RID)

    event = assert_recorded(user.pk, "profile_changed", actor=user)
    assert event.details == {"fields": ["first_name", "last_name"]}


def test_email_change_records_a_profile_change_and_a_new_verification(user):
    token_client(user).patch("/api/v1/users/me", {"email": "moved@example.com"}, format="json", **RID)

    assert assert_recorded(user.pk, "profile_changed", actor=user).details == {"fields": ["email"]}
    assert_recorded(user.pk, "email_verification_sent", actor=user)


def test_unchanged_profile_records_nothing(user):
    token_client(user).patch("/api/v1/users/me", {"first_name": user.first_name}, format="json", **RID)

    assert events(user.pk, "profile_changed") == []


def test_deactivation_and_activation_by_staff_are_recorded(user, staff_user):
    client = token_client(staff_user)

    client.patch(f"/api/v1/users/{user.pk}", {"is_active": False}, format="json", **RID)
    client.patch(f"/api/v1/users/{user.pk}", {"is_active": True}, format="json", **RID)

    assert_recorded(user.pk, "deactivated", actor=staff_user)
    assert_recorded(user.pk, "activated", actor=staff_user)
    assert events(user.pk, "profile_changed") == []


def test_staff_granted_and_removed_by_a_superuser_are_recorded(user, superuser):
    client = token_client(superuser)

    client.patch(f"/api/v1/users/{user.pk}", {"is_staff": True}, format="json", **RID)
    client.patch(f"/api/v1/users/{user.pk}", {"is_staff": False}, format="json", **RID)

    assert_recorded(user.pk, "staff_granted", actor=superuser)
    assert_recorded(user.pk, "staff_removed", actor=superuser)


def test_deletion_is_recorded_and_outlives_the_user(user, staff_user):
    token_client(user).delete("/api/v1/users/me", **RID)

    assert not User.objects.filter(pk=user.pk).exists()
    assert_recorded(user.pk, "deleted", actor=user)
    listed = token_client(staff_user).get(f"/api/v1/users/{user.pk}/events").json()["results"]
    assert "deleted" in [e["type"] for e in listed]


def test_failed_write_records_no_event(user, other_user):
    response = token_client(user).patch("/api/v1/users/me", {"email": other_user.email}, format="json", **RID)

    assert response.status_code == 400
    assert events(user.pk, "profile_changed") == []
    assert events(user.pk, "email_verification_sent") == []


# ---------------------------------------------------------------- through the admin


def admin_change(client, user, **changes):
    data = {
        "email": user.email,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "is_active": user.is_active,
        "is_staff": user.is_staff,
        "is_superuser": user.is_superuser,
        "email_verified": user.email_verified,
        "date_joined_0": user.date_joined.strftime("%Y-%m-%d"),
        "date_joined_1": user.date_joined.strftime("%H:%M:%S"),
        **changes,
    }
    form = {key: ("on" if value is True else value) for key, value in data.items() if value is not False}
    response = client.post(f"/admin/users/user/{user.pk}/change/", form, **RID)
    assert response.status_code == 302, response.content.decode()[:3000]
    return response


def test_admin_add_records_registered_by_the_staff_member(superuser, admin_client_for):
    response = admin_client_for(superuser).post(
        "/admin/users/user/add/",
        {
            "email": "added@example.com",
            "password1": DEFAULT_PASSWORD,
            "password2": DEFAULT_PASSWORD,
            "usable_password": "true",
        },
        **RID,
    )

    assert response.status_code == 302, response.content.decode()[:3000]
    added = User.objects.get(email="added@example.com")
    assert_recorded(added.pk, "registered", actor=superuser)
    assert_recorded(added.pk, "email_verification_sent", actor=superuser)
    assert len(messages_to("added@example.com")) == 1


def test_admin_profile_change_records_the_field_names(user, superuser, admin_client_for):
    admin_change(admin_client_for(superuser), user, first_name="Renamed")

    event = assert_recorded(user.pk, "profile_changed", actor=superuser)
    assert event.details == {"fields": ["first_name"]}
    assert User.objects.get(pk=user.pk).first_name == "Renamed"


def test_admin_email_change_clears_verification_and_mails_the_new_address(user, superuser, admin_client_for):
    User.objects.filter(pk=user.pk).update(email_verified=True)
    user.refresh_from_db()

    admin_change(admin_client_for(superuser), user, email="admin-moved@example.com", email_verified=True)

    user.refresh_from_db()
    assert user.email == "admin-moved@example.com" and user.email_verified is False
    assert_recorded(user.pk, "email_verification_sent", actor=superuser)
    assert len(messages_to("admin-moved@example.com")) == 1


def test_admin_form_deactivation_records_it_and_ends_sessions(user, superuser, admin_client_for):
    tokens = login(user.email)

    admin_change(admin_client_for(superuser), user, is_active=False)

    assert_recorded(user.pk, "deactivated", actor=superuser)
    assert bearer_client(tokens["access"]).get("/api/v1/users/me").status_code == 401


def test_admin_actions_record_deactivation_and_activation(user, superuser, admin_client_for):
    client = admin_client_for(superuser)

    client.post("/admin/users/user/", {"action": "deactivate_users", "_selected_action": [str(user.pk)]}, **RID)
    client.post("/admin/users/user/", {"action": "activate_users", "_selected_action": [str(user.pk)]}, **RID)

    assert_recorded(user.pk, "deactivated", actor=superuser)
    assert_recorded(user.pk, "activated", actor=superuser)


def test_admin_staff_grant_and_removal_are_recorded(user, superuser, admin_client_for):
    client = admin_client_for(superuser)

    admin_change(client, user, is_staff=True)
    user.refresh_from_db()
    admin_change(client, user, is_staff=False)

    assert_recorded(user.pk, "staff_granted", actor=superuser)
    assert_recorded(user.pk, "staff_removed", actor=superuser)
    assert events(user.pk, "profile_changed") == []


def test_admin_password_change_is_recorded_and_ends_sessions(user, superuser, admin_client_for):
    tokens = login(user.email)

    response = admin_client_for(superuser).post(
        f"/admin/users/user/{user.pk}/password/",
        {"password1": "admin-set-passphrase", "password2": "admin-set-passphrase", "usable_password": "true"},
        **RID,
    )

    assert response.status_code == 302, response.content.decode()[:3000]
    assert_recorded(user.pk, "password_changed", actor=superuser)
    assert bearer_client(tokens["access"]).get("/api/v1/users/me").status_code == 401
    assert login(user.email, "admin-set-passphrase")["access"]


def test_admin_delete_is_recorded(user, superuser, admin_client_for):
    response = admin_client_for(superuser).post(f"/admin/users/user/{user.pk}/delete/", {"post": "yes"}, **RID)

    assert response.status_code == 302
    assert not User.objects.filter(pk=user.pk).exists()
    assert_recorded(user.pk, "deleted", actor=superuser)


def test_admin_bulk_delete_records_each_user_once(superuser, admin_client_for):
    doomed = UserFactory.create_batch(2)

    admin_client_for(superuser).post(
        "/admin/users/user/",
        {"action": "delete_selected", "_selected_action": [str(u.pk) for u in doomed], "post": "yes"},
        **RID,
    )

    for user in doomed:
        assert_recorded(user.pk, "deleted", actor=superuser)


def test_security_events_are_read_only_in_the_admin(user, superuser, admin_client_for):
    login(user.email)
    event = only(user.pk, "login_succeeded")
    client = admin_client_for(superuser)

    assert client.get("/admin/users/securityevent/add/").status_code == 403
    assert client.post(f"/admin/users/securityevent/{event.pk}/delete/", {"post": "yes"}).status_code == 403
    assert client.get(f"/admin/users/securityevent/{event.pk}/change/").status_code == 200
    assert SecurityEvent.objects.filter(pk=event.pk).exists()


def test_admin_security_log_filters_by_type_and_searches_by_email(user, other_user, superuser, admin_client_for):
    login(user.email)
    login(other_user.email)
    APIClient().post("/api/v1/auth/token", {"email": user.email, "password": "wrong"}, format="json")
    client = admin_client_for(superuser)

    by_email = client.get("/admin/users/securityevent/", {"q": user.email})
    by_type = client.get("/admin/users/securityevent/", {"type__exact": "login_failed"})
    by_date = client.get("/admin/users/securityevent/", {"created_at__year": timezone.now().year})

    assert by_email.status_code == by_type.status_code == by_date.status_code == 200
    assert {e.user_id for e in by_email.context["cl"].result_list} == {user.pk}
    assert {e.type for e in by_type.context["cl"].result_list} == {"login_failed"}
    assert by_date.context["cl"].result_count == SecurityEvent.objects.count()
