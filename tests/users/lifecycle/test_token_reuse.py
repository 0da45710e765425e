"""A refresh token reused after the grace window: 401, an event, that session ended, other sessions untouched."""

import jwt
import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from core.exceptions import TOKEN_NOT_VALID
from tests.assertions import assert_error
from tests.conftest import bearer_client, login
from tests.users.lifecycle.support import events
from users.models import Session

pytestmark = pytest.mark.django_db(transaction=True)

REFRESH = "/api/v1/auth/token/refresh"


def refresh(token, **extra):
    return APIClient().post(REFRESH, {"refresh": token}, format="json", **extra)


def past_grace(session_id, settings):
    issued = timezone.now() - timezone.timedelta(seconds=settings.JWT_REFRESH_GRACE + 1)
    Session.objects.filter(pk=session_id).update(refresh_issued_at=issued)


def test_reuse_after_the_grace_window_ends_only_that_session_and_is_recorded(user, settings):
    victim, other = login(user.email), login(user.email)
    rotated = refresh(victim["refresh"]).json()
    sid = jwt.decode(rotated["access"], options={"verify_signature": False})["sid"]
    past_grace(sid, settings)

    reused = refresh(victim["refresh"], HTTP_X_REQUEST_ID="reuse-1")

    assert_error(reused, 401, TOKEN_NOT_VALID)
    assert_error(bearer_client(rotated["access"]).get("/api/v1/users/me"), 401, TOKEN_NOT_VALID)
    assert_error(refresh(rotated["refresh"]), 401, TOKEN_NOT_VALID)
    still = bearer_client(other["access"])
    assert still.get("/api/v1/users/me").status_code == 200
    assert refresh(other["refresh"]).status_code == 200
    [event] = events(user.pk, "token_reuse_detected")
    assert event.request_id == "reuse-1"
    assert event.actor_id is None
    assert event.details["session_id"] == sid


def test_session_ended_by_reuse_leaves_the_sessions_list(user, settings):
    victim, other = login(user.email), login(user.email)
    rotated = refresh(victim["refresh"]).json()
    victim_sid = Session.objects.get(user=user, generation=1).pk
    past_grace(victim_sid, settings)

    refresh(victim["refresh"])

    listed = bearer_client(other["access"]).get("/api/v1/auth/sessions").json()
    assert [s["id"] for s in listed] == [str(Session.objects.get(user=user, generation=0).pk)]
    assert Session.objects.get(pk=victim_sid).end_reason == "reuse_detected"
    assert rotated["access"]


def test_reuse_mails_nobody(user, settings):
    from django.core import mail

    victim = login(user.email)
    refresh(victim["refresh"])
    past_grace(Session.objects.get(user=user).pk, settings)

    refresh(victim["refresh"])

    assert mail.outbox == []


def test_reuse_within_the_grace_window_is_not_recorded(user):
    victim = login(user.email)
    refresh(victim["refresh"])

    assert refresh(victim["refresh"]).status_code == 200
    assert events(user.pk, "token_reuse_detected") == []
