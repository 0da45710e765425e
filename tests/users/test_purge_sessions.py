"""manage.py purge_sessions: expired and long-ended sessions go, open ones stay."""

import io
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from tests.conftest import bearer_client, login
from users.models import Session
from users.tokens import session_issue

pytestmark = pytest.mark.django_db


def open_session(user, **changes) -> Session:
    pair = session_issue(user=user, ip="127.0.0.1", user_agent="pytest")
    if changes:
        Session.objects.filter(pk=pair.session_id).update(**changes)
    return Session.objects.get(pk=pair.session_id)


def purge(*args) -> str:
    out = io.StringIO()
    call_command("purge_sessions", *args, stdout=out)
    return out.getvalue()


def test_purge_deletes_expired_and_long_ended_sessions_and_keeps_open_ones(user, other_user):
    now = timezone.now()
    kept_open = open_session(user)
    kept_other_user = open_session(other_user)
    recently_ended = open_session(user, ended_at=now - timedelta(days=1), end_reason="logout")
    expired = open_session(user, expires_at=now - timedelta(seconds=1))
    long_expired = open_session(user, expires_at=now - timedelta(days=30))
    long_ended = open_session(user, ended_at=now - timedelta(days=8), end_reason="logout")

    output = purge()

    remaining = set(Session.objects.values_list("pk", flat=True))
    assert remaining == {kept_open.pk, kept_other_user.pk, recently_ended.pk}
    assert {expired.pk, long_expired.pk, long_ended.pk}.isdisjoint(remaining)
    assert "Purged 3 session(s)." in output


def test_purge_with_keep_days_zero_also_deletes_recently_ended_sessions(user):
    kept_open = open_session(user)
    open_session(user, ended_at=timezone.now() - timedelta(minutes=1), end_reason="logout")

    output = purge("--keep-days", "0")

    assert list(Session.objects.values_list("pk", flat=True)) == [kept_open.pk]
    assert "Purged 1 session(s)." in output


def test_purge_with_nothing_to_delete_keeps_everything(user):
    sessions = {open_session(user).pk, open_session(user).pk}

    output = purge()

    assert set(Session.objects.values_list("pk", flat=True)) == sessions
    assert "Purged 0 session(s)." in output


def test_sessions_still_work_after_a_purge(user):
    tokens = login(user.email)
    open_session(user, expires_at=timezone.now() - timedelta(days=1))

    purge()

    assert bearer_client(tokens["access"]).get("/api/v1/users/me").status_code == 200


def test_purge_deletes_login_failure_counters_that_no_longer_count(settings):
    from users.models import LoginLockout

    now = timezone.now()
    window, longest = timedelta(seconds=settings.LOCKOUT_WINDOW), timedelta(seconds=settings.LOCKOUT_MAX_DURATION)
    rows = {
        "counting@example.com": {"failures": 3, "window_started_at": now - window / 2},
        "locked@example.com": {"locked_until": now + timedelta(minutes=5), "lock_count": 1},
        "lock-remembered@example.com": {"locked_until": now - longest / 2, "lock_count": 2},
        "window-over@example.com": {"failures": 4, "window_started_at": now - window - timedelta(seconds=1)},
        "lock-forgotten@example.com": {"locked_until": now - longest - timedelta(seconds=1), "lock_count": 1},
    }
    for email, fields in rows.items():
        LoginLockout.objects.create(email=email, **fields)

    output = purge()

    assert set(LoginLockout.objects.values_list("email", flat=True)) == {
        "counting@example.com",
        "locked@example.com",
        "lock-remembered@example.com",
    }
    assert "Purged 2 stale login-failure counter(s)." in output
