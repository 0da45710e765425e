"""users.tokens: JWT sessions issued, rotated, revoked and listed (service level, real database)."""

import hashlib
import uuid
from datetime import timedelta

import jwt
import pytest
from django.utils import timezone

from core.exceptions import TokenNotValidError
from tests.factories import UserFactory
from users.models import Session
from users.tokens import session_issue, session_list, session_revoke, session_revoke_all, session_rotate

pytestmark = pytest.mark.django_db


def claims(token: str) -> dict:
    return jwt.decode(token, options={"verify_signature": False})


def sha256(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue(user):
    return session_issue(user=user, ip="127.0.0.1", user_agent="pytest")


def test_session_issue_opens_a_session_whose_tokens_carry_its_id(user):
    pair = session_issue(user=user, ip="198.51.100.4", user_agent="curl/8.5")

    session = Session.objects.get(pk=pair.session_id)
    assert session.user_id == user.pk
    assert str(session.ip) == "198.51.100.4"
    assert session.user_agent == "curl/8.5"
    assert session.ended_at is None
    assert session.generation == 0
    access, refresh = claims(pair.access), claims(pair.refresh)
    assert access["sid"] == refresh["sid"] == str(session.pk)
    assert access["user_id"] == refresh["user_id"] == str(user.pk)
    assert (access["token_type"], refresh["token_type"]) == ("access", "refresh")
    assert refresh["gen"] == 0


def test_session_issue_stores_a_hash_of_the_refresh_token_never_the_token(user):
    pair = issue(user)

    session = Session.objects.get(pk=pair.session_id)
    assert session.refresh_hash == sha256(pair.refresh)
    row = Session.objects.filter(pk=pair.session_id).values().get()
    assert pair.refresh not in {str(value) for value in row.values()}


def test_session_expiry_follows_jwt_refresh_ttl(settings, user):
    settings.JWT_REFRESH_TTL = 3600

    pair = issue(user)

    session = Session.objects.get(pk=pair.session_id)
    refresh = claims(pair.refresh)
    assert refresh["exp"] == int(session.expires_at.timestamp())
    assert refresh["exp"] - refresh["iat"] == 3600


def test_session_issue_truncates_a_long_user_agent(user):
    pair = session_issue(user=user, ip=None, user_agent="x" * 2000)

    session = Session.objects.get(pk=pair.session_id)
    assert len(session.user_agent) == 512
    assert session.ip is None


def test_session_issue_records_last_login(user):
    issue(user)

    user.refresh_from_db()
    assert timezone.now() - user.last_login < timedelta(seconds=5)


def test_refresh_tokens_of_different_sessions_differ(user):
    first, second = issue(user), issue(user)

    assert claims(first.refresh)["jti"] != claims(second.refresh)["jti"]
    assert first.refresh != second.refresh


def test_session_rotate_spends_the_token_and_advances_the_generation(user):
    pair = issue(user)

    rotated = session_rotate(refresh=pair.refresh)

    session = Session.objects.get(pk=pair.session_id)
    assert rotated.session_id == pair.session_id
    assert rotated.refresh != pair.refresh
    assert session.generation == 1
    assert claims(rotated.refresh)["gen"] == 1
    assert session.refresh_hash == sha256(rotated.refresh)
    assert session.previous_refresh_hash == sha256(pair.refresh)


def test_session_rotate_slides_the_session_expiry(user):
    pair = issue(user)
    Session.objects.filter(pk=pair.session_id).update(expires_at=timezone.now() + timedelta(hours=1))

    rotated = session_rotate(refresh=pair.refresh)

    session = Session.objects.get(pk=pair.session_id)
    assert session.expires_at > timezone.now() + timedelta(days=6)
    assert claims(rotated.refresh)["exp"] == int(session.expires_at.timestamp())


def test_spent_token_within_grace_gets_the_current_refresh_token_again(user):
    pair = issue(user)
    rotated = session_rotate(refresh=pair.refresh)

    again = session_rotate(refresh=pair.refresh)

    assert again.session_id == pair.session_id
    # The same current token, rebuilt: both clients can go on refreshing the one session.
    assert again.refresh == rotated.refresh
    assert Session.objects.get(pk=pair.session_id).generation == 1
    assert session_rotate(refresh=again.refresh).session_id == pair.session_id


def test_spent_token_after_grace_raises_and_ends_the_session(settings, user):
    settings.JWT_REFRESH_GRACE = 0
    pair = issue(user)
    session_rotate(refresh=pair.refresh)

    with pytest.raises(TokenNotValidError):
        session_rotate(refresh=pair.refresh)

    session = Session.objects.get(pk=pair.session_id)
    assert session.ended_at is not None
    assert session.end_reason == Session.EndReason.REUSE_DETECTED


def test_token_two_generations_old_ends_the_session_even_within_grace(user):
    pair = issue(user)
    second = session_rotate(refresh=pair.refresh)
    session_rotate(refresh=second.refresh)

    with pytest.raises(TokenNotValidError):
        session_rotate(refresh=pair.refresh)

    assert Session.objects.get(pk=pair.session_id).end_reason == Session.EndReason.REUSE_DETECTED


@pytest.mark.parametrize("refresh", ["", "garbage", "a.b.c"])
def test_session_rotate_of_garbage_raises(db, refresh):
    with pytest.raises(TokenNotValidError):
        session_rotate(refresh=refresh)


def test_session_rotate_of_an_access_token_raises_and_leaves_the_session_open(user):
    pair = issue(user)

    with pytest.raises(TokenNotValidError):
        session_rotate(refresh=pair.access)

    assert Session.objects.get(pk=pair.session_id).ended_at is None


def test_session_rotate_of_an_ended_session_raises(user):
    pair = issue(user)
    session_revoke(user_id=user.pk, session_id=pair.session_id)

    with pytest.raises(TokenNotValidError):
        session_rotate(refresh=pair.refresh)


def test_session_rotate_of_an_expired_session_raises(user):
    pair = issue(user)
    Session.objects.filter(pk=pair.session_id).update(expires_at=timezone.now() - timedelta(seconds=1))

    with pytest.raises(TokenNotValidError):
        session_rotate(refresh=pair.refresh)


def test_session_rotate_of_an_inactive_user_raises(user):
    pair = issue(user)
    user.is_active = False
    user.save()

    with pytest.raises(TokenNotValidError):
        session_rotate(refresh=pair.refresh)


def test_session_revoke_ends_one_session_with_its_reason(user):
    first, second = issue(user), issue(user)

    session_revoke(user_id=user.pk, session_id=first.session_id, reason=Session.EndReason.LOGOUT)

    ended = Session.objects.get(pk=first.session_id)
    assert ended.ended_at is not None
    assert ended.end_reason == Session.EndReason.LOGOUT
    assert Session.objects.get(pk=second.session_id).ended_at is None


def test_session_revoke_of_another_users_session_raises_does_not_exist(user, other_user):
    theirs = issue(other_user)

    with pytest.raises(Session.DoesNotExist):
        session_revoke(user_id=user.pk, session_id=theirs.session_id)

    assert Session.objects.get(pk=theirs.session_id).ended_at is None


def test_session_revoke_of_an_unknown_or_ended_session_raises_does_not_exist(user):
    pair = issue(user)
    session_revoke(user_id=user.pk, session_id=pair.session_id)

    with pytest.raises(Session.DoesNotExist):
        session_revoke(user_id=user.pk, session_id=pair.session_id)
    with pytest.raises(Session.DoesNotExist):
        session_revoke(user_id=user.pk, session_id=uuid.uuid4())


def test_session_revoke_all_ends_every_open_session_and_counts_them(user, other_user):
    pairs = [issue(user) for _ in range(3)]
    session_revoke(user_id=user.pk, session_id=pairs[0].session_id)
    theirs = issue(other_user)

    ended = session_revoke_all(user_id=user.pk)

    assert ended == 2
    assert not Session.objects.filter(user=user, ended_at__isnull=True).exists()
    assert Session.objects.get(pk=pairs[1].session_id).end_reason == Session.EndReason.LOGOUT_ALL
    # An already ended session keeps its first reason.
    assert Session.objects.get(pk=pairs[0].session_id).end_reason == Session.EndReason.REVOKED
    assert Session.objects.get(pk=theirs.session_id).ended_at is None


def test_session_revoke_all_can_keep_one_session(user):
    kept, other = issue(user), issue(user)

    ended = session_revoke_all(
        user_id=user.pk, reason=Session.EndReason.PASSWORD_CHANGED, keep_session_id=kept.session_id
    )

    assert ended == 1
    assert Session.objects.get(pk=kept.session_id).ended_at is None
    assert Session.objects.get(pk=other.session_id).end_reason == Session.EndReason.PASSWORD_CHANGED


def test_session_list_returns_open_sessions_newest_first(user):
    old, ended, expired, new = (issue(user) for _ in range(4))
    session_revoke(user_id=user.pk, session_id=ended.session_id)
    Session.objects.filter(pk=expired.session_id).update(expires_at=timezone.now())
    issue(UserFactory())

    listed = list(session_list(user_id=user.pk))

    assert [s.pk for s in listed] == [new.session_id, old.session_id]
