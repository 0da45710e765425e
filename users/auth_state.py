"""Session and user state in the shared cache, read on every authenticated request in one round trip.

Two entries per request, fetched together in one round trip (with the per-user rate counter, on Redis):
- ``s:{sid}``: the session (owner, expiry, last use) or a tombstone once it ended;
- ``u:v1:{uid}``: the user's auth flags and the serialized user body (the representation every
  reader allowed to see that user gets), or a tombstone once deleted.

Readers fill a missing entry from the database with ``add`` (never overwriting). Writers delete the
entry at once; after their transaction commits, a session's writer ``set``s the committed state (an
open one only where its tombstone is not, see ``_session_open_store``), and a user's writer deletes the
entry again, for the next reader to refill. So a reader that raced a writer can never leave the older
state behind, and a revocation or an edit is seen by every instance on its next request. User entries,
which a reader may store after a writer's commit with what it read before, are stamped on Redis so that
such a store is refused (see ``_user_store``).
A dead cache means "ask the database", logged, never a 500. With SHARED_STATE_CACHE off (the embedded
default's per-process local-memory cache) nothing is cached here: every request reads the database.

An invalidation that cannot reach the cache (Redis partitioned away, not restarted empty) would leave
an old entry behind for when it comes back. So every key carries a generation kept in the database
(``StateCacheEpoch``, passed as the cache ``version``): a failed invalidation bumps it, and every process
re-reads it at most every STATE_CACHE_EPOCH_POLL seconds, so old entries stop being read everywhere
within that bound, and a write made during the outage is never hidden by what the cache held before.
"""

import contextlib
import functools
import logging
import os
import threading
import time
import uuid
from dataclasses import dataclass

import orjson
from django.conf import settings
from django.core.cache import cache, caches
from django.db import DatabaseError, transaction
from django.db.models import F
from django.utils import timezone
from redis.exceptions import ConnectionError as RedisConnectionError

from core.logging import OncePerInterval
from core.metrics import record_cache_lookup
from core.queries import only_row
from core.ratelimit import EXPIRY_FUDGE, STORE_DOWN, counter, redis_client

logger = logging.getLogger("users.auth_state")

SESSION_KEY = "s:{}"
# Bump the version when UserSerializer's output changes: old entries are then never read.
USER_KEY = "u:v1:{}"
GONE = "gone"
LAST_USED_RESOLUTION = 60  # seconds: Session.last_used_at is written at most once a minute.
CACHE_ERROR_LOG_INTERVAL = 10.0  # seconds between two "cache unavailable" log lines per process

_cache_warning = OncePerInterval(CACHE_ERROR_LOG_INTERVAL)
# This process's view of the cache generation: the value and when it was last read from the database.
_epoch = {"version": None, "checked": float("-inf")}
# Cache writes that invalidate: when one fails, the generation must move on.
INVALIDATING = frozenset({"delete", "delete_many", "set", "set_many"})


@dataclass(frozen=True, slots=True)
class AuthUser:
    """The caller of a token-authenticated request: enough for permissions and its own body, no row loaded."""

    id: uuid.UUID
    session_id: uuid.UUID
    is_active: bool
    is_staff: bool
    is_superuser: bool
    body: bytes
    # This window's per-user request count, counted in the same round trip (None: not counted here).
    rate_count: int | None = None

    is_authenticated = True
    is_anonymous = False

    @property
    def pk(self) -> uuid.UUID:
        return self.id

    def __str__(self):
        return str(self.id)


def _tombstone_ttl() -> int:
    # Tombstones outlive any access token that could still present them.
    return settings.JWT_ACCESS_TTL + 60


def _cache_failed(operation: str, exc: Exception) -> None:
    """Log a cache failure at most once per interval per process; a failed invalidation bumps the generation."""
    if _cache_warning.due():
        logger.warning("cache unavailable during %s, using the database: %s", operation, type(exc).__name__)
    if operation in INVALIDATING:
        cache_epoch_bump()


def _cache_version() -> int:
    """Return the cache generation (Django cache ``version``), re-read from the database every poll interval."""
    now = time.monotonic()
    if _epoch["version"] is None or now - _epoch["checked"] >= settings.STATE_CACHE_EPOCH_POLL:
        from users.models import StateCacheEpoch

        try:
            value = (
                StateCacheEpoch.objects.filter(pk=StateCacheEpoch.SINGLETON).values_list("value", flat=True).first()
            )
        except DatabaseError:
            value = None  # the database is down: keep the generation known so far (reported by /readyz)
        if value is not None or _epoch["version"] is None:
            _epoch["version"] = (value or 0) + 1
        _epoch["checked"] = now
    return _epoch["version"]


def cache_epoch_bump() -> None:
    """Move every process on to a new cache generation (after an invalidation could not reach the cache)."""
    from users.models import StateCacheEpoch

    try:
        updated = StateCacheEpoch.objects.filter(pk=StateCacheEpoch.SINGLETON).update(
            value=F("value") + 1, bumped_at=timezone.now()
        )
        if not updated:
            StateCacheEpoch.objects.get_or_create(pk=StateCacheEpoch.SINGLETON, defaults={"value": 1})
    except DatabaseError:
        logger.error("cache generation could not be bumped: entries cached before the outage may be served")
        raise
    # Never 0.0: time.monotonic() counts from boot, so "0.0" is not "long ago" on a machine up for minutes.
    _epoch["checked"] = float("-inf")  # this process reads the new generation on its next lookup
    logger.warning("cache generation bumped after a failed invalidation")


def _cache_get_many(
    keys: list[str], rate_counter: tuple[str, int] | None = None, sent: "Prefetch | None" = None
) -> tuple[dict, int | None]:
    """Return the cached entries among ``keys``, and, on Redis, count ``rate_counter`` in the same round trip.

    ``sent``: the same round trip, already sent by ``auth_prefetch``; its replies are read instead.
    The count is None when not counted here (the caller counts it itself), STORE_DOWN when the cache failed.
    """
    if not settings.SHARED_STATE_CACHE:
        return {}, None
    backend = caches["default"]  # the object behind django.core.cache.cache, looked up once
    pipelined = rate_counter is not None and redis_client(backend) is not None
    try:
        if pipelined:
            found, count = _redis_get_many_and_count(backend, keys, *rate_counter, sent=sent)
        else:
            found, count = backend.get_many(keys, version=_cache_version()), None
    except Exception as exc:  # noqa: BLE001  (a dead cache means "ask the database", never a 500)
        record_cache_lookup("auth_state", errors=1)
        _cache_failed("get_many", exc)
        return {}, (STORE_DOWN if pipelined else None)
    record_cache_lookup("auth_state", hits=len(found), misses=len(keys) - len(found))
    return found, count


def _state_commands(backend, keys: list[str], counter_key: str, period: int) -> list[tuple]:
    """The round trip (PERF.md): MGET of the state entries, INCR + EXPIRE of the per-user rate counter."""
    version = _cache_version()
    full_counter = backend.make_key(counter_key)  # the key core.ratelimit.hit() would use
    return [
        ("MGET", *(backend.make_key(key, version=version) for key in keys)),
        ("INCR", full_counter),
        ("EXPIRE", full_counter, period + EXPIRY_FUDGE),
    ]


def _redis_get_many_and_count(
    backend, keys: list[str], counter_key: str, period: int, sent: "Prefetch | None" = None
) -> tuple[dict, int]:
    client = backend.client
    replies = None
    retry = True
    if sent is not None:
        try:
            replies = sent.replies()
        except RedisConnectionError:
            # A connection Redis closed since its last use: sent again below, once, on a new one (the send
            # ahead was the first attempt: a Redis that is down is tried twice per request, as without it).
            retry = False
    if replies is None:
        replies = _send_pipelined(client, _state_commands(backend, keys, counter_key, period), retry=retry)
    values, count, _ = replies
    found = {key: client.decode(value) for key, value in zip(keys, values, strict=True) if value is not None}
    return found, count


# This thread's own connection to the cache's Redis, made with its pool's settings (address, database, password,
# TLS, timeouts, parser). redis-py's pipeline object and pool checkout (a poll() per checkout, metrics hooks)
# cost about 45 us a request here, a third of the round trip itself; a sync worker sends one command batch at a
# time, so one connection per thread is all it needs.
_own = threading.local()


def _own_connection(client):
    if getattr(_own, "client", None) is not client or _own.pid != os.getpid():
        pool = client.get_client(write=True).connection_pool
        _own.connection = pool.connection_class(**pool.connection_kwargs)
        _own.client, _own.pid = client, os.getpid()
    return _own.connection


def _send_pipelined(client, commands: list[tuple], *, retry: bool = True) -> list:
    """Send ``commands`` in one write and return their replies in order (no MULTI: they need no atomicity).

    A connection Redis closed since its last use (a restart) is reconnected once (unless ``retry`` is off:
    the caller's attempt was the first); any other failure raises, and the caller falls back to the database.
    """
    _settle_pending()  # replies of an earlier send on this connection come first: read them for their owner
    connection = _own_connection(client)
    packed = connection.pack_commands(commands)
    try:
        return _exchange(connection, packed, len(commands))
    except RedisConnectionError:
        if not retry:
            raise
        return _exchange(connection, packed, len(commands))


def _exchange(connection, packed, replies: int) -> list:
    _send(connection, packed)
    return _receive(connection, replies)


def _send(connection, packed) -> None:
    try:
        connection.send_packed_command(packed, check_health=False)
    except BaseException:
        connection.disconnect()  # part of the batch may have gone out: never reuse it as it is
        raise


def _receive(connection, replies: int) -> list:
    try:
        return [connection.read_response() for _ in range(replies)]
    except BaseException:
        connection.disconnect()  # replies may be half read: never reuse it as it is
        raise


class Prefetch:
    """The auth-state round trip of one request, sent before its view runs; replies read when first asked for.

    ``users.hot_path.AuthStatePrefetchMiddleware`` sends it at the top of the middleware chain, so that Redis
    answers while the rest of the chain runs; ``auth_user_get`` reads the replies instead of sending its own.
    Until read, the batch is this thread's pending one: any other send on the connection reads it first
    (``_settle_pending``), so no reply is ever taken for another command's. A send that failed keeps its
    error for the reader, which handles it as its own (a timeout is waited for once, not twice).
    """

    __slots__ = ("session_id", "user_id", "keys", "rate", "_connection", "_count", "_replies", "_error")

    def __init__(self, session_id: uuid.UUID, user_id: uuid.UUID, keys_and_rate, connection, count: int, error=None):
        self.session_id, self.user_id = session_id, user_id
        self.keys, self.rate = keys_and_rate  # what _auth_state_keys gave for this token: the reader reuses them
        self._connection, self._count = connection, count
        self._replies: list | None = None
        self._error: BaseException | None = error

    def replies(self) -> list:
        """Return the replies (read now if not yet), or raise what sending or reading them raised."""
        self.settle()
        if self._error is not None:
            raise self._error
        return self._replies

    def settle(self) -> None:
        """Read the replies if nobody has: the connection is clean for the next command whatever happened."""
        if self._replies is not None or self._error is not None:
            return
        if getattr(_own, "pending", None) is self:
            _own.pending = None
        try:
            self._replies = _receive(self._connection, self._count)
        except Exception as exc:  # noqa: BLE001  (kept for the reader: it falls back as for any cache failure)
            self._error = exc


def _settle_pending() -> None:
    pending = getattr(_own, "pending", None)
    if pending is not None:
        pending.settle()


def _auth_state_keys(session_id: uuid.UUID, user_id: uuid.UUID) -> tuple[list[str], tuple[str, int] | None]:
    """The entries a token's check reads (session, user) and its per-user rate counter (None: limits off).

    One place for both the round trip sent ahead and the one ``auth_user_get`` reads, so they always agree.
    """
    rate = counter("user", str(user_id), settings.RATELIMIT_USER) if settings.RATELIMIT_ENABLE else None
    return [SESSION_KEY.format(session_id), USER_KEY.format(user_id)], rate


def auth_prefetch(*, session_id: uuid.UUID, user_id: uuid.UUID) -> Prefetch | None:
    """Send the auth-state round trip of a verified token now; None where the view makes no such round trip
    (no Redis, or rate limits off: it reads the entries with a plain ``get_many`` then).

    What is sent is what ``auth_user_get`` would send for this token: the same keys, the same count.
    A failure to send is not reported here, but kept for the reader, which reports it (or, for a connection
    Redis closed, sends again on a new one).
    """
    keys_and_rate = keys, rate = _auth_state_keys(session_id, user_id)
    if not settings.SHARED_STATE_CACHE or rate is None:
        return None
    backend, client = _redis_backend()
    if client is None:
        return None
    commands = _state_commands(backend, keys, *rate)
    _settle_pending()
    connection = None
    try:
        connection = _own_connection(client)
        _send(connection, connection.pack_commands(commands))
    except Exception as exc:  # noqa: BLE001  (the reader meets it as if it had sent: same retry, same fallback)
        return Prefetch(session_id, user_id, keys_and_rate, connection, len(commands), error=exc)
    _own.pending = Prefetch(session_id, user_id, keys_and_rate, connection, len(commands))
    return _own.pending


def _cache_call(method: str, *args, **kwargs) -> None:
    if not settings.SHARED_STATE_CACHE:
        return
    try:
        getattr(cache, method)(*args, version=_cache_version(), **kwargs)
    except Exception as exc:  # noqa: BLE001
        _cache_failed(method, exc)


def _session_state(session_id: uuid.UUID):
    from users.models import Session

    open_session = Session.objects.filter(pk=session_id, ended_at__isnull=True)
    row = only_row(open_session.values_list("user_id", "expires_at", "last_used_at"))
    if row is None:
        return GONE
    user_id, expires_at, last_used_at = row
    return (str(user_id), int(expires_at.timestamp()), int(last_used_at.timestamp()))


@functools.cache
def _body_serializer():
    """One UserSerializer for every body: its fields are read-only and the same for each user, so they are built
    once (about 175 us a body when each call built them, 15 us now)."""
    from users.serializers import UserSerializer

    serializer = UserSerializer()
    serializer.fields  # noqa: B018  (built here, once, before any thread shares it)
    return serializer


def user_body(user) -> bytes:
    """Return the JSON body of ``user`` exactly as the API renders it."""
    return orjson.dumps(_body_serializer().to_representation(user))


def _user_state(user_id: uuid.UUID):
    from users.models import User

    user = only_row(User.objects.filter(pk=user_id))
    if user is None:
        return GONE
    return (user.is_active, user.is_staff, user.is_superuser, user_body(user))


def _ttl(state, positive_ttl: int) -> int:
    return _tombstone_ttl() if state == GONE else positive_ttl


def auth_user_get(*, session_id: uuid.UUID, user_id: uuid.UUID, sent: Prefetch | None = None) -> AuthUser | None:
    """Return the caller when the session is open and the user active; None when the token must be refused.

    ``sent``: this token's round trip, sent earlier by ``auth_prefetch`` (ignored if it is another token's).
    """
    if sent is not None and (sent.session_id, sent.user_id) != (session_id, user_id):
        sent = None
    # The keys and counter this token's prefetch was sent with (computed once per request), else computed here.
    keys, rate = (sent.keys, sent.rate) if sent is not None else _auth_state_keys(session_id, user_id)
    skey, ukey = keys
    found, rate_count = _cache_get_many(keys, rate, sent)
    session_state = found.get(skey)
    if session_state is None:
        session_state = _session_state(session_id)
        _cache_call("add", skey, session_state, _ttl(session_state, settings.AUTH_STATE_CACHE_TTL))
    if session_state == GONE:
        return None
    user_state = found.get(ukey)
    if user_state is None:
        user_state = _user_fill(user_id)
    if user_state == GONE:
        return None
    owner, expires_at, last_used = session_state
    is_active, is_staff, is_superuser, body = user_state
    now = int(time.time())
    if owner != str(user_id) or expires_at <= now or not is_active:
        return None
    if now - last_used >= LAST_USED_RESOLUTION:
        _touch_session(session_id, skey)
    return AuthUser(
        id=user_id,
        session_id=session_id,
        is_active=is_active,
        is_staff=is_staff,
        is_superuser=is_superuser,
        body=body,
        rate_count=rate_count,
    )


def user_body_get(user_id: uuid.UUID) -> bytes | None:
    """Return the cached (or freshly loaded) body of a user, None when there is no such user."""
    key = USER_KEY.format(user_id)
    state = _cache_get_many([key])[0].get(key)
    if state is None:
        state = _user_fill(user_id)
    return None if state == GONE else state[3]


def _touch_session(session_id: uuid.UUID, key: str) -> None:
    from users.models import Session

    # Inside a caller's transaction, a savepoint keeps a failure here; in autocommit (every request) it needs none.
    guard = transaction.atomic() if transaction.get_connection().in_atomic_block else contextlib.nullcontext()
    try:
        with guard:
            updated = Session.objects.filter(pk=session_id, ended_at__isnull=True).update(last_used_at=timezone.now())
    except DatabaseError as exc:
        # Bookkeeping, not the answer: a database that cannot take the write (down, or a read-only standby after
        # a failover) must not fail a read the cache can serve. The next read tries again.
        _touch_failed(exc)
        return
    if updated:
        # Drop the entry, never ``set`` it: a logout committing between the UPDATE and a ``set`` would
        # have its tombstone overwritten by this open state. The next reader refills it with ``add``.
        _cache_call("delete", key)


_touch_warning = OncePerInterval(CACHE_ERROR_LOG_INTERVAL)


def _touch_failed(exc: Exception) -> None:
    """Log, at most once per interval per process, that a session's last use could not be recorded."""
    if _touch_warning.due():
        logger.warning("session last use not recorded, the database refused the write: %s", type(exc).__name__)


def session_state_publish(session, *, new: bool = False) -> None:
    """Drop a session's cached state now; after commit, write its committed state (open or ended).

    ``new``: the session was created in this transaction (a login), so no entry of its id can exist to drop.
    """
    key = SESSION_KEY.format(session.pk)
    if session.ended_at is not None:
        _publish({key: GONE}, _tombstone_ttl())
        return
    if not settings.SHARED_STATE_CACHE:
        return
    state = (str(session.user_id), int(session.expires_at.timestamp()), int(session.last_used_at.timestamp()))
    if not new:
        _cache_call("delete", key)
    transaction.on_commit(lambda: _session_open_store(session.pk, key, state))


# A revocation that committed after the writer of an open state may store its tombstone before that write
# lands. Ended is final: the open state is written only where no tombstone is, in one step on Redis.
_SET_UNLESS_ENDED = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
return 1
"""


def _session_open_store(session_id: uuid.UUID, key: str, state: tuple) -> None:
    ttl = settings.AUTH_STATE_CACHE_TTL
    backend, client = _redis_backend()
    if backend is None:
        # A local cache has no scripts: write, then read the row once more; a revocation after it wrote its own.
        _cache_call("set", key, state, ttl)
        if _session_state(session_id) == GONE:
            _cache_call("set", key, GONE, _tombstone_ttl())
        return
    full_key = backend.make_key(key, version=_cache_version())
    _run_script(client, _SET_UNLESS_ENDED, [full_key], client.encode(GONE), client.encode(state), ttl, operation="set")


def sessions_ended_publish(session_ids: list) -> None:
    """Drop these sessions' cached state now; after commit, mark them ended."""
    if session_ids:
        _publish({SESSION_KEY.format(sid): GONE for sid in session_ids}, _tombstone_ttl())


def user_state_publish(user_id: uuid.UUID) -> None:
    """Drop a user's cached entry now, and again after commit: the next reader fills it from the committed row.

    On Redis, the drop after commit also moves the user's stamp on, so that no reader who read the row before
    this commit can store what it read (see below). Dropping costs one round trip; writing the entry through
    would also re-read and re-serialize the row on every write, a login's included, for a read that may not come.
    """
    key = USER_KEY.format(user_id)
    _cache_call("delete", key)
    if settings.SHARED_STATE_CACHE:
        transaction.on_commit(lambda: _user_invalidate(user_id))


# User entries are stored by readers filling a miss, and dropped by writers after their commit. A reader that
# read the row before a writer's commit must not store what it read once that writer has dropped the entry.
# On Redis, each store carries a stamp taken BEFORE its read, from a per-user counter (UVER_KEY) that every
# writer increments after its commit, in the same script that raises the entry's tag (UTAG_KEY) to that stamp
# and drops the entry; a store whose stamp is below the tag is refused, in one script too. A writer's stamp is
# above every stamp taken before its commit, so nothing read before that commit is stored after it; equal
# stamps read after the same commit. Without Redis (a local-memory cache shared by one process, in tests)
# writers ``set`` the committed row instead, and readers ``add``: no stale ``add`` can land after that ``set``.
UVER_KEY = "uver:{}"
UTAG_KEY = "utag:{}"
# A writer's step. A counter that expired (no write or fill for longer than its TTL) restarts above the tag.
_INVALIDATE = """
local stamp = redis.call('INCR', KEYS[1])
local stored = tonumber(redis.call('GET', KEYS[2]) or '0')
if stamp <= stored then
    stamp = stored + 1
    redis.call('SET', KEYS[1], stamp)
end
redis.call('EXPIRE', KEYS[1], ARGV[1])
redis.call('SET', KEYS[2], stamp, 'EX', ARGV[2])
redis.call('DEL', KEYS[3])
return stamp
"""
# A reader's stamp. Reading it renews the counter, so it cannot expire (and restart below this stamp while the
# entry's tag has expired too) between this read and the reader's store.
_READER_STAMP = """
local stamp = redis.call('GET', KEYS[1])
if stamp then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return stamp
"""
_STORE_IF_NEWER = """
local stored = tonumber(redis.call('GET', KEYS[2]) or '-1')
if tonumber(ARGV[1]) < stored then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
redis.call('SET', KEYS[2], ARGV[1], 'EX', ARGV[3])
return 1
"""


def _redis_backend():
    backend = caches["default"]
    client = redis_client(backend)
    return (backend, client) if client is not None else (None, None)


def _stamp_ttl() -> int:
    return settings.USER_CACHE_TTL + _tombstone_ttl()


def _user_invalidate(user_id: uuid.UUID) -> None:
    """After a writer's commit: drop the user's entry (Redis: with the stamp moved on; else: write the row)."""
    backend, client = _redis_backend()
    if backend is None:
        _user_store(user_id, _user_state(user_id), None, operation="set")
        return
    version = _cache_version()
    keys = [backend.make_key(key.format(user_id), version=version) for key in (UVER_KEY, UTAG_KEY, USER_KEY)]
    # A failure is a failed invalidation: the cache generation moves on (``_cache_failed``).
    _run_script(client, _INVALIDATE, keys, _stamp_ttl(), settings.USER_CACHE_TTL, operation="delete")


STAMP_UNREACHABLE = -1  # the stamp could not be read: store nothing (the failure is logged, and counted)


def _user_stamp(user_id: uuid.UUID) -> int | None:
    """Return the user's write stamp for a reader about to read the row; None without Redis, or STAMP_UNREACHABLE."""
    backend, client = _redis_backend()
    if not settings.SHARED_STATE_CACHE or backend is None:
        return None
    key = backend.make_key(UVER_KEY.format(user_id), version=_cache_version())
    try:
        return int(client.get_client(write=True).eval(_READER_STAMP, 1, key, _stamp_ttl()) or 0)
    except Exception as exc:  # noqa: BLE001
        _cache_failed("get", exc)
        return STAMP_UNREACHABLE


def _user_fill(user_id: uuid.UUID):
    """Read a user's state from the database for a reader that missed, and store it unless a newer one is there."""
    stamp = _user_stamp(user_id)
    state = _user_state(user_id)
    _user_store(user_id, state, stamp, operation="add")
    return state


def _user_store(user_id: uuid.UUID, state, stamp: int | None, *, operation: str) -> None:
    if stamp == STAMP_UNREACHABLE:
        return  # Redis did not answer a moment ago: a second try would only wait for its timeout again
    key = USER_KEY.format(user_id)
    ttl = _ttl(state, settings.USER_CACHE_TTL)
    backend, client = _redis_backend()
    if stamp is None or backend is None:
        _cache_call(operation, key, state, ttl)  # no stamp: the plain rule (writers set, readers add)
        return
    version = _cache_version()
    keys = [backend.make_key(key, version=version), backend.make_key(UTAG_KEY.format(user_id), version=version)]
    _run_script(client, _STORE_IF_NEWER, keys, stamp, client.encode(state), ttl, operation=operation)


def _run_script(client, script: str, keys: list[str], *args, operation: str) -> None:
    """Run a cache-writing Lua script on Redis; a failure counts as a failed ``operation`` (``_cache_failed``)."""
    try:
        client.get_client(write=True).eval(script, len(keys), *keys, *args)
    except Exception as exc:  # noqa: BLE001
        _cache_failed(operation, exc)


def _publish(entries: dict, ttl: int) -> None:
    _cache_call("delete_many", list(entries))
    transaction.on_commit(lambda: _cache_call("set_many", entries, ttl))
