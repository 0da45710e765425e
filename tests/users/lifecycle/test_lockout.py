"""Per-account lockout: the 10th failure within the window locks; locked answers like a wrong password."""

import time
from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from core.exceptions import AUTHENTICATION_FAILED, RATE_LIMITED
from tests.assertions import assert_error
from tests.conftest import bearer_client, login
from tests.factories import DEFAULT_PASSWORD, UserFactory
from tests.users.lifecycle.support import events, messages_to
from users.models import LoginLockout, Session

pytestmark = pytest.mark.django_db(transaction=True)

TOKEN = "/api/v1/auth/token"
WRONG = "not-the-password"


@pytest.fixture(autouse=True)
def _generous_rate_limits(settings):
    """Lift the per-minute login limits: the lockout, not the rate limit, is the subject here."""
    settings.RATELIMIT_LOGIN_IP = "1000/m"
    settings.RATELIMIT_LOGIN_EMAIL = "1000/m"


def attempt(email, password=WRONG):
    return APIClient().post(TOKEN, {"email": email, "password": password}, format="json")


def fail(email, times):
    for _ in range(times):
        assert_error(attempt(email), 401, AUTHENTICATION_FAILED)


def test_ninth_failure_does_not_lock(user):
    fail(user.email, 9)

    assert attempt(user.email, DEFAULT_PASSWORD).status_code == 200


def test_tenth_failure_locks_and_the_right_password_gets_the_wrong_password_answer(user):
    fail(user.email, 9)
    tenth = attempt(user.email).json()

    locked = attempt(user.email, DEFAULT_PASSWORD)

    body = assert_error(locked, 401, AUTHENTICATION_FAILED)
    wrong = attempt(user.email).json()
    assert {k: v for k, v in body.items() if k != "request_id"} == {
        k: v for k, v in wrong.items() if k != "request_id"
    }
    assert {k: v for k, v in body.items() if k != "request_id"} == {
        k: v for k, v in tenth.items() if k != "request_id"
    }
    assert locked.headers.get("WWW-Authenticate") == attempt(user.email).headers.get("WWW-Authenticate")


def test_lock_stops_new_logins_but_leaves_the_devices_already_signed_in(user):
    # Else anyone who knows an email could sign its owner out everywhere with ten wrong passwords.
    tokens = login(user.email)

    fail(user.email, 10)

    assert bearer_client(tokens["access"]).get("/api/v1/users/me").status_code == 200
    refreshed = APIClient().post("/api/v1/auth/token/refresh", {"refresh": tokens["refresh"]}, format="json")
    assert refreshed.status_code == 200
    assert Session.objects.get(user=user).ended_at is None
    assert_error(attempt(user.email, DEFAULT_PASSWORD), 401, AUTHENTICATION_FAILED)  # refused while locked


def test_owner_is_mailed_once_per_lock(user):
    fail(user.email, 15)

    [message] = messages_to(user.email, "locked")
    assert "15 minutes" in message.body
    assert len(events(user.pk, "locked")) == 1


def test_lock_lifts_after_its_time(user, settings):
    settings.LOCKOUT_DURATION = 1
    fail(user.email, 10)
    assert_error(attempt(user.email, DEFAULT_PASSWORD), 401, AUTHENTICATION_FAILED)

    time.sleep(1.2)

    assert attempt(user.email, DEFAULT_PASSWORD).status_code == 200


def test_each_further_lock_lasts_twice_as_long(user, settings):
    settings.LOCKOUT_DURATION = 1
    fail(user.email, 10)
    first = LoginLockout.objects.get(email=user.email)
    time.sleep(1.2)

    fail(user.email, 10)

    second = LoginLockout.objects.get(email=user.email)
    assert second.lock_count == 2
    remaining = (second.locked_until - timezone.now()).total_seconds()
    assert 1.0 < remaining <= 2.0
    assert first.lock_count == 1


def test_failures_older_than_the_window_do_not_count(user, settings):
    settings.LOCKOUT_WINDOW = 60
    fail(user.email, 9)
    LoginLockout.objects.filter(email=user.email).update(window_started_at=timezone.now() - timedelta(seconds=61))

    fail(user.email, 1)

    assert attempt(user.email, DEFAULT_PASSWORD).status_code == 200


def test_success_resets_the_count(user):
    fail(user.email, 9)
    assert attempt(user.email, DEFAULT_PASSWORD).status_code == 200

    fail(user.email, 9)

    assert attempt(user.email, DEFAULT_PASSWORD).status_code == 200


def test_unknown_email_is_counted_and_locked_the_same_way():
    fail("ghost@example.com", 10)

    assert LoginLockout.objects.get(email="ghost@example.com").is_locked
    assert messages_to("ghost@example.com") == []


def test_counting_ignores_the_case_of_the_submitted_email(user):
    fail(user.email.upper(), 10)

    assert_error(attempt(user.email, DEFAULT_PASSWORD), 401, AUTHENTICATION_FAILED)


def test_rate_limited_attempts_are_not_counted(user, settings):
    settings.RATELIMIT_LOGIN_EMAIL = "5/m"
    answers = [attempt(user.email).status_code for _ in range(12)]
    assert answers == [401] * 5 + [429] * 7
    assert_error(attempt(user.email, DEFAULT_PASSWORD), 429, RATE_LIMITED)

    settings.RATELIMIT_LOGIN_EMAIL = "1000/m"

    assert LoginLockout.objects.get(email=user.email).failures == 5
    assert attempt(user.email, DEFAULT_PASSWORD).status_code == 200


def test_admin_unlock_lifts_the_lock_at_once(user, superuser, admin_client_for):
    fail(user.email, 10)

    response = admin_client_for(superuser).post(
        "/admin/users/user/", {"action": "unlock_users", "_selected_action": [str(user.pk)]}
    )

    assert response.status_code == 302
    assert attempt(user.email, DEFAULT_PASSWORD).status_code == 200
    [unlocked] = events(user.pk, "unlocked")
    assert unlocked.actor_id == superuser.pk


def test_another_account_is_not_affected_by_a_lock(user, other_user):
    fail(user.email, 10)

    assert attempt(other_user.email, DEFAULT_PASSWORD).status_code == 200


def test_admin_lists_locks_and_lifts_one_for_an_unknown_email(superuser, admin_client_for):
    fail("ghost@example.com", 10)
    client = admin_client_for(superuser)
    listed = client.get("/admin/users/loginlockout/", {"q": "ghost"})
    assert [row.email for row in listed.context["cl"].result_list] == ["ghost@example.com"]

    lockout = LoginLockout.objects.get(email="ghost@example.com")
    response = client.post(
        "/admin/users/loginlockout/", {"action": "lift_locks", "_selected_action": [str(lockout.pk)]}
    )

    assert response.status_code == 302
    assert not LoginLockout.objects.filter(email="ghost@example.com").exists()


def test_admin_lift_of_an_accounts_lock_lets_it_log_in_and_is_recorded(user, superuser, admin_client_for):
    fail(user.email, 10)
    lockout = LoginLockout.objects.get(email=user.email)

    admin_client_for(superuser).post(
        "/admin/users/loginlockout/", {"action": "lift_locks", "_selected_action": [str(lockout.pk)]}
    )

    assert attempt(user.email, DEFAULT_PASSWORD).status_code == 200
    assert events(user.pk, "unlocked")[0].actor_id == superuser.pk


def test_lifting_locks_needs_the_change_permission(user, admin_client_for):
    from django.contrib.auth.models import Permission

    viewer = UserFactory(staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_loginlockout"))
    fail(user.email, 10)
    lockout = LoginLockout.objects.get(email=user.email)

    admin_client_for(viewer).post(
        "/admin/users/loginlockout/", {"action": "lift_locks", "_selected_action": [str(lockout.pk)]}
    )

    assert LoginLockout.objects.get(email=user.email).is_locked
