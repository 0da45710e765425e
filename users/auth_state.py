"""Session and user state in the shared cache, read on every authenticated request in one round trip.

Readers fill a missing entry from the database with ``add`` (never overwriting). Writers delete the
entry at once and ``set`` the committed state after their transaction commits. So a reader that raced
a writer can never leave the older state behind, and a revocation is seen by every instance on its
next request.
"""

import logging
import time
import uuid
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

logger = logging.getLogger("users.auth_state")

SESSION_KEY = "auth:s:{}"
USER_KEY = "auth:u:{}"
# Tombstones outlive any access token that could still present them.
GONE = "gone"
LAST_USED_RESOLUTION = 60  # seconds: Session.last_used_at is written at most once a minute.


@dataclass(frozen=True, slots=True)
class AuthUser:
    """The caller of a token-authenticated request: enough for permissions, no database row loaded."""

    id: uuid.UUID
    session_id: uuid.UUID
    is_active: bool
    is_staff: bool
    is_superuser: bool

    is_authenticated = True
    is_anonymous = False

    @property
    def pk(self) -> uuid.UUID:
        return self.id

    def __str__(self):
        return str(self.id)


def _tombstone_ttl() -> int:
    return settings.JWT_ACCESS_TTL + 60


def _cache_get_many(keys: list[str]) -> dict:
    try:
        return cache.get_many(keys)
    except Exception as exc:  # noqa: BLE001  (a dead cache means "ask the database", never a 500)
        logger.warning("auth state cache unavailable, reading the database: %s", type(exc).__name__)
        return {}


def _cache_call(method: str, *args, **kwargs) -> None:
    try:
        getattr(cache, method)(*args, **kwargs)
    except Exception as exc:  # noqa: BLE001
        logger.warning("auth state cache write failed (%s): %s", method, type(exc).__name__)


def _session_row(session_id: uuid.UUID):
    from users.models import Session

    row = (
        Session.objects.filter(pk=session_id).values_list("user_id", "ended_at", "expires_at", "last_used_at").first()
    )
    if row is None:
        return GONE
    user_id, ended_at, expires_at, last_used_at = row
    if ended_at is not None:
        return GONE
    return (str(user_id), int(expires_at.timestamp()), int(last_used_at.timestamp()))


def _user_row(user_id: uuid.UUID):
    from users.models import User

    row = User.objects.filter(pk=user_id).values_list("is_active", "is_staff", "is_superuser").first()
    return GONE if row is None else tuple(row)


def auth_user_get(*, session_id: uuid.UUID, user_id: uuid.UUID) -> AuthUser | None:
    """Return the caller when the session is open and the user active; None when the token must be refused."""
    skey, ukey = SESSION_KEY.format(session_id), USER_KEY.format(user_id)
    found = _cache_get_many([skey, ukey])
    session_state = found.get(skey)
    if session_state is None:
        session_state = _session_row(session_id)
        _cache_call(
            "add", skey, session_state, _tombstone_ttl() if session_state == GONE else settings.AUTH_STATE_CACHE_TTL
        )
    user_state = found.get(ukey)
    if user_state is None:
        user_state = _user_row(user_id)
        _cache_call("add", ukey, user_state, _tombstone_ttl() if user_state == GONE else settings.AUTH_STATE_CACHE_TTL)
    if session_state == GONE or user_state == GONE:
        return None
    owner, expires_at, last_used = session_state
    is_active, is_staff, is_superuser = user_state
    now = int(time.time())
    if owner != str(user_id) or expires_at <= now or not is_active:
        return None
    if now - last_used >= LAST_USED_RESOLUTION:
        _touch_session(session_id, skey, (owner, expires_at, now))
    return AuthUser(
        id=user_id, session_id=session_id, is_active=is_active, is_staff=is_staff, is_superuser=is_superuser
    )


def _touch_session(session_id: uuid.UUID, key: str, state: tuple) -> None:
    from users.models import Session

    updated = Session.objects.filter(pk=session_id, ended_at__isnull=True).update(last_used_at=timezone.now())
    if updated:
        # Only an open session's entry is refreshed; ``add`` semantics are not needed as the row was just checked.
        _cache_call("set", key, state, settings.AUTH_STATE_CACHE_TTL)


def session_state_publish(session) -> None:
    """After commit, write a session's state (open or ended) to the shared cache."""
    key = SESSION_KEY.format(session.pk)
    if session.ended_at is not None:
        state, ttl = GONE, _tombstone_ttl()
    else:
        state = (str(session.user_id), int(session.expires_at.timestamp()), int(session.last_used_at.timestamp()))
        ttl = settings.AUTH_STATE_CACHE_TTL
    _publish({key: state}, ttl)


def sessions_ended_publish(session_ids: list) -> None:
    """After commit, mark these sessions ended in the shared cache."""
    if session_ids:
        _publish({SESSION_KEY.format(sid): GONE for sid in session_ids}, _tombstone_ttl())


def user_state_publish(user, *, deleted: bool = False) -> None:
    """After commit, write a user's auth flags (or a deletion tombstone) to the shared cache."""
    key = USER_KEY.format(user.pk)
    state = GONE if deleted else (user.is_active, user.is_staff, user.is_superuser)
    ttl = _tombstone_ttl() if deleted else settings.AUTH_STATE_CACHE_TTL
    _publish({key: state}, ttl)


def _publish(entries: dict, ttl: int) -> None:
    _cache_call("delete_many", list(entries))
    transaction.on_commit(lambda: _cache_call("set_many", entries, ttl))
