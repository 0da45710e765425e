"""JWT sessions on SimpleJWT tokens (issue, rotate with a grace window, revoke), and the email/password tokens.

Every access and refresh token carries the session id (``sid``). A refresh token also carries its
generation (``gen``); its ``jti`` is an HMAC of (sid, gen), so the current refresh token can be
rebuilt for a concurrent refresh inside the grace window without ever storing a token: the
session keeps only SHA-256 hashes.
"""

import hashlib
import hmac
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth.tokens import PasswordResetTokenGenerator
from django.db import transaction
from django.utils import timezone
from django.utils.crypto import constant_time_compare
from django.utils.http import base36_to_int
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken

from core.exceptions import TokenNotValidError
from core.queries import only_row
from users.auth_state import session_state_publish, sessions_ended_publish
from users.models import Session, User

__all__ = [
    "EmailVerificationTokenGenerator",
    "PasswordResetLinkTokenGenerator",
    "TokenPair",
    "email_verification_token",
    "password_reset_token",
    "session_issue",
    "session_list",
    "session_revoke",
    "session_revoke_all",
    "session_rotate",
]


@dataclass(frozen=True)
class TokenPair:
    access: str
    refresh: str
    session_id: uuid.UUID


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _jti(session_id: uuid.UUID, generation: int) -> str:
    key = settings.SIMPLE_JWT["SIGNING_KEY"].encode()
    return hmac.new(key, f"refresh:{session_id}:{generation}".encode(), hashlib.sha256).hexdigest()[:32]


def _refresh_token(session: Session) -> str:
    token = RefreshToken()
    issued = session.refresh_issued_at
    token.set_iat(at_time=issued)
    token.set_exp(from_time=issued, lifetime=timedelta(seconds=settings.JWT_REFRESH_TTL))
    token["jti"] = _jti(session.pk, session.generation)
    token["user_id"] = str(session.user_id)
    token["sid"] = str(session.pk)
    token["gen"] = session.generation
    return str(token)


def _access_token(session: Session) -> str:
    token = AccessToken()
    token["user_id"] = str(session.user_id)
    token["sid"] = str(session.pk)
    return str(token)


def _now_seconds() -> datetime:
    # JWT times are whole seconds; keep the stored issue time equal to the token's ``iat``.
    return timezone.now().replace(microsecond=0)


# No savepoint when nested (a login's transaction): nothing catches its errors inside, and it saves two round trips.
@transaction.atomic(savepoint=False)
def session_issue(*, user: User, ip: str | None, user_agent: str) -> TokenPair:
    """Open a session for ``user`` (a login) and return its first token pair."""
    now = timezone.now()
    issued = now.replace(microsecond=0)
    session = Session(
        user=user,
        ip=ip,
        user_agent=(user_agent or "")[:512],
        # Full precision: the sessions list is ordered by created_at, and two logins can share a second.
        created_at=now,
        last_used_at=now,
        refresh_issued_at=issued,
        expires_at=issued + timedelta(seconds=settings.JWT_REFRESH_TTL),
        refresh_hash="",
    )
    refresh = _refresh_token(session)
    session.refresh_hash = _hash(refresh)
    session.save(force_insert=True)
    user.last_login = issued
    user.save(update_fields=["last_login"])
    session_state_publish(session, new=True)
    return TokenPair(access=_access_token(session), refresh=refresh, session_id=session.pk)


def session_rotate(*, refresh: str) -> TokenPair:
    """Spend ``refresh`` and return the next pair of its session.

    A spent token presented again within JWT_REFRESH_GRACE seconds gets the session's current pair
    (two tabs refreshing at once); later, it ends the whole session. Raises TokenNotValidError.
    """
    try:
        token = RefreshToken(refresh)
        session_id = uuid.UUID(str(token["sid"]))
        generation = int(token["gen"])
    except (TokenError, KeyError, ValueError, TypeError):
        raise TokenNotValidError() from None
    with transaction.atomic():
        session = only_row(Session.objects.select_for_update().select_related("user").filter(pk=session_id))
        if session is None or not session.is_open or not session.user.is_active:
            raise TokenNotValidError()
        presented = _hash(refresh)
        if generation == session.generation and hmac.compare_digest(presented, session.refresh_hash):
            return _rotate(session, presented)
        grace = timedelta(seconds=settings.JWT_REFRESH_GRACE)
        if (
            generation == session.generation - 1
            and hmac.compare_digest(presented, session.previous_refresh_hash)
            and timezone.now() - session.refresh_issued_at <= grace
        ):
            return TokenPair(access=_access_token(session), refresh=_refresh_token(session), session_id=session.pk)
        _end(session, Session.EndReason.REUSE_DETECTED)
        from users.services import security_event_record  # services imports this module

        security_event_record(
            type="token_reuse_detected",
            user_id=session.user_id,
            details={"session_id": str(session.pk), "generation": generation},
        )
    # Committed above: the reuse ends the session even though this request fails.
    raise TokenNotValidError("Token has already been used; its session has been ended.")


def _rotate(session: Session, presented_hash: str) -> TokenPair:
    now = _now_seconds()
    session.previous_refresh_hash = presented_hash
    session.generation += 1
    session.refresh_issued_at = now
    session.expires_at = now + timedelta(seconds=settings.JWT_REFRESH_TTL)
    session.last_used_at = timezone.now()
    refresh = _refresh_token(session)
    session.refresh_hash = _hash(refresh)
    session.save(
        update_fields=[
            "previous_refresh_hash",
            "generation",
            "refresh_issued_at",
            "expires_at",
            "last_used_at",
            "refresh_hash",
        ]
    )
    session_state_publish(session)
    return TokenPair(access=_access_token(session), refresh=refresh, session_id=session.pk)


def _end(session: Session, reason: str) -> None:
    session.ended_at = timezone.now()
    session.end_reason = reason
    session.save(update_fields=["ended_at", "end_reason"])
    session_state_publish(session)


@transaction.atomic
def session_revoke(*, user_id: uuid.UUID, session_id: uuid.UUID, reason: str = Session.EndReason.REVOKED) -> None:
    """End one open session of ``user_id``; raise Session.DoesNotExist when it has none of that id."""
    session = Session.objects.select_for_update().get(pk=session_id, user_id=user_id, ended_at__isnull=True)
    _end(session, reason)


@transaction.atomic
def session_revoke_all(
    *, user_id: uuid.UUID, reason: str = Session.EndReason.LOGOUT_ALL, keep_session_id: uuid.UUID | None = None
) -> int:
    """End every open session of ``user_id`` but ``keep_session_id``; return how many ended."""
    sessions = Session.objects.filter(user_id=user_id, ended_at__isnull=True)
    if keep_session_id is not None:
        sessions = sessions.exclude(pk=keep_session_id)
    ids = list(sessions.select_for_update().values_list("pk", flat=True))
    Session.objects.filter(pk__in=ids).update(ended_at=timezone.now(), end_reason=reason)
    sessions_ended_publish(ids)
    return len(ids)


def session_list(*, user_id: uuid.UUID):
    """Return the open sessions of ``user_id``, newest first."""
    return Session.objects.filter(user_id=user_id, ended_at__isnull=True, expires_at__gt=timezone.now()).order_by(
        "-created_at", "-pk"
    )


class PasswordResetLinkTokenGenerator(PasswordResetTokenGenerator):
    """The token of a password reset link: single-use (the password hash is in it), PASSWORD_RESET_TIMEOUT."""

    key_salt = "users.tokens.PasswordResetLinkTokenGenerator"


class EmailVerificationTokenGenerator(PasswordResetTokenGenerator):
    """The token of an email verification link: single-use, bound to the address, EMAIL_VERIFICATION_TIMEOUT.

    The hash covers the email and ``email_verified``, so verifying (or changing the address) spends it.
    """

    key_salt = "users.tokens.EmailVerificationTokenGenerator"

    def _make_hash_value(self, user, timestamp):
        return f"{user.pk}{user.email}{user.email_verified}{timestamp}"

    def check_token(self, user, token):
        # Django's check_token applies PASSWORD_RESET_TIMEOUT; this link has its own lifetime.
        if not (user and token) or token.count("-") != 1:
            return False
        ts_b36 = token.split("-")[0]
        try:
            ts = base36_to_int(ts_b36)
        except ValueError:
            return False
        if not any(
            constant_time_compare(self._make_token_with_timestamp(user, ts, secret), token)
            for secret in [self.secret, *self.secret_fallbacks]
        ):
            return False
        return self._num_seconds(self._now()) - ts <= settings.EMAIL_VERIFICATION_TIMEOUT


password_reset_token = PasswordResetLinkTokenGenerator()
email_verification_token = EmailVerificationTokenGenerator()
