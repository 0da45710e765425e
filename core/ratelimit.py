"""Rate limits counted in the shared cache, the client IP behind trusted proxies, and the cache-down policy.

Every limit of the contract's table, in the shared cache so it holds across workers and instances:

- endpoint limits (login, registration, password reset, admin login): ``enforce_rate_limits()``, called by
  the view (``RateLimitMiddleware`` for the admin login), all of a request's limits counted in one round trip;
- ``RATELIMIT_ANON`` per client IP: ``RateLimitMiddleware``, before any work, for every request that is not
  a Bearer-authenticated API request;
- ``RATELIMIT_USER`` per user: ``RequestRateThrottle`` (DRF), once the token is verified; it also counts, per
  IP, the API requests whose Bearer header a view ignored (login, refresh, the schema), so a junk
  ``Authorization`` header does not escape the anonymous limit.

When the shared cache is down (Redis stopped or unreachable), decided per kind of limit:

- per-user and anonymous limits fail open: the request is served, the failure logged (at most every
  ``STORE_ERROR_LOG_INTERVAL`` seconds per process) and counted in ``ratelimit_store_errors_total``;
- endpoint limits (login, registration, password reset, admin login) fail closed: 503
  ``service_unavailable``, logged and counted. These are the endpoints an attacker guesses passwords or
  sends mail through, and a cache outage is exactly when a per-process fallback would multiply every limit
  by the number of workers and instances. The cost is bounded: signed-in clients keep working and keep
  refreshing their tokens (neither needs a rate limit), so only new logins wait for the cache.
"""

import functools
import hashlib
import logging
import time
from typing import NamedTuple

from django.conf import settings
from django.core.cache import caches
from django.urls import NoReverseMatch, reverse
from django_ratelimit.core import _get_window, _split_rate
from django_ratelimit.exceptions import Ratelimited
from django_redis.exceptions import ConnectionInterrupted
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError as RedisResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError
from rest_framework.throttling import BaseThrottle

from core.logging import OncePerInterval
from core.metrics import record_rate_limit_store_error, record_rate_limited

logger = logging.getLogger("core.ratelimit")

__all__ = [
    "STORE_ERRORS",
    "RateLimitMiddleware",
    "RateLimitedError",
    "RequestRateThrottle",
    "STORE_DOWN",
    "Limit",
    "client_ip",
    "count_request",
    "counter",
    "enforce_rate_limits",
    "has_bearer_credentials",
    "hit",
    "redis_client",
    "under_user_limit",
    "verdict",
]

# The shared cache is down, or up but refusing to write: django-redis's ConnectionInterrupted, or redis-py's own
# errors where they escape it (core.exception_handler answers these 503). A refusal is an error reply: OOM from a
# Redis full under noeviction (as the README asks it to run), READONLY from a primary demoted by a failover,
# MISCONF after a failed snapshot.
STORE_ERRORS = (ConnectionInterrupted, RedisConnectionError, RedisTimeoutError, RedisResponseError)
STORE_ERROR_LOG_INTERVAL = 10.0  # seconds: one warning per process and interval, however many requests fail
EXPIRY_FUDGE = 5  # seconds a counter outlives its window, as django-ratelimit does
STORE_DOWN = -1  # a counter that could not be read: the per-user limit fails open


class RateLimitedError(Ratelimited):
    """A refused request, with the seconds until its window resets."""

    def __init__(self, retry_after: int):
        super().__init__("Too many requests.")
        self.retry_after = retry_after


def client_ip(request) -> str:
    """Return the client IP: REMOTE_ADDR, or X-Forwarded-For counted back TRUSTED_PROXY_COUNT hops."""
    hops = settings.TRUSTED_PROXY_COUNT
    if hops > 0:
        forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if part.strip()]
        # Each trusted proxy appends the address it saw; the client is the one the outermost trusted proxy saw.
        # Whatever the client wrote itself is further left, so it can never be picked.
        if len(forwarded) >= hops:
            return forwarded[-hops]
    return request.META.get("REMOTE_ADDR", "")


def has_bearer_credentials(request) -> bool:
    """Return True when the request carries ``Authorization: Bearer ...`` (verified or not)."""
    header = request.META.get("HTTP_AUTHORIZATION")
    return bool(header) and header.split(None, 1)[0] == "Bearer"


@functools.lru_cache(maxsize=64)
def _parse_rate(rate: str) -> tuple[int, int]:
    return _split_rate(rate)


def _retry_after(value: str, period: int) -> int:
    return max(1, int(_get_window(value, period) - time.time()) + 1)


_store_warning = OncePerInterval(STORE_ERROR_LOG_INTERVAL)


def _store_unavailable(limit: str, outcome: str, exc: BaseException) -> None:
    record_rate_limit_store_error(limit, outcome)
    if _store_warning.due():
        logger.warning("rate-limit store unavailable (%s): %s", outcome, type(exc).__name__, extra={"limit": limit})


class Limit(NamedTuple):
    """One endpoint limit: ``value`` (an IP, an email, a user id) may make ``rate`` requests in ``group``."""

    group: str
    value: str
    rate: str


# Counts one request against each counter in turn and stops at the first over its limit: the limits after it
# are not counted (a client refused for its IP does not use up the limit of the email it tries). Returns the
# 1-based position of the refused limit, or 0. ARGV holds (limit, seconds to live) for each key.
_COUNT_IN_TURN = """
for i, key in ipairs(KEYS) do
    local count = redis.call('INCR', key)
    redis.call('EXPIRE', key, ARGV[2 * i])
    if count > tonumber(ARGV[2 * i - 1]) then return i end
end
return 0
"""


def _endpoint_key(limit: Limit, period: int) -> str:
    # Hashed: no email or client-supplied text in a cache key, and every key the same length.
    digest = hashlib.sha256(f"{limit.group}\0{limit.value}".encode()).hexdigest()[:32]
    return f"rl:{limit.group}:{digest}:{_get_window(limit.value, period)}"


def _count_in_turn(limits: list[Limit]) -> int:
    """Count one request against each limit in turn (one round trip on Redis); return the refused one's position."""
    cache = caches[settings.RATELIMIT_USE_CACHE]
    counters = []
    for limit in limits:
        allowed, period = _parse_rate(limit.rate)
        counters.append((_endpoint_key(limit, period), allowed, period + EXPIRY_FUDGE))
    client = redis_client(cache)
    if client is not None:
        keys = [cache.make_key(key) for key, _allowed, _ttl in counters]
        args = [value for _key, allowed, ttl in counters for value in (allowed, ttl)]
        return int(client.get_client(write=True).eval(_COUNT_IN_TURN, len(keys), *keys, *args))
    for position, (key, allowed, ttl) in enumerate(counters, start=1):
        if _local_incr(cache, key, ttl) > allowed:
            return position
    return 0


def enforce_rate_limits(*limits: Limit) -> None:
    """Count one request against each of ``limits``, in turn; raise RateLimitedError for the first over its rate.

    One round trip to the shared cache for all of them. Fails closed: when that cache is down the store error
    is logged, counted and raised again, and the error handler answers 503 ``service_unavailable``.
    """
    limits = [limit for limit in limits if limit.value]
    if not limits or not settings.RATELIMIT_ENABLE:
        return
    try:
        refused = _count_in_turn(limits)
    except STORE_ERRORS as exc:
        _store_unavailable(limits[0].group, "fail_closed", exc)
        raise
    if refused:
        limit = limits[refused - 1]
        record_rate_limited(limit.group)
        raise RateLimitedError(_retry_after(limit.value, _parse_rate(limit.rate)[1]))


def redis_client(backend):
    """Return ``backend``'s django-redis client when the cache is Redis, else None (local memory, dummy)."""
    client = getattr(backend, "client", None)
    return client if hasattr(client, "get_client") else None


def _shared_incr(key: str, period: int) -> int:
    """Increment a window counter in the shared cache: one round trip on Redis (INCR and EXPIRE pipelined)."""
    cache = caches[settings.RATELIMIT_USE_CACHE]
    client = redis_client(cache)
    if client is not None:
        full_key = cache.make_key(key)
        pipe = client.get_client(write=True).pipeline(transaction=False)
        pipe.incr(full_key)
        pipe.expire(full_key, period + EXPIRY_FUDGE)
        return pipe.execute()[0]
    return _local_incr(cache, key, period + EXPIRY_FUDGE)


def _local_incr(cache, key: str, ttl: int) -> int:
    """Increment a counter in a cache without scripts (local memory): created at 1 with ``ttl``."""
    return 1 if cache.add(key, 1, ttl) else cache.incr(key)


def counter(group: str, value: str, rate: str) -> tuple[str, int]:
    """Return the cache key of the current window's counter for ``value`` in ``group``, and its period."""
    _limit, period = _parse_rate(rate)
    return f"rl:{group}:{value}:{_get_window(value, period)}", period


def verdict(group: str, value: str, rate: str, count: int) -> int | None:
    """Return the seconds to wait when ``count`` (this window's, this request included) is over ``rate``."""
    limit, period = _parse_rate(rate)
    if count <= limit:
        return None
    record_rate_limited(group)
    return _retry_after(value, period)


def under_user_limit(count: int | None, rate: str) -> bool:
    """Return True when a per-user ``count`` counted in the auth round trip is known and within ``rate``.

    No side effect: a count over the limit, not counted (None) or unreadable (STORE_DOWN) returns False,
    and RequestRateThrottle decides (429, count it itself, or fail open).
    """
    return count is not None and count != STORE_DOWN and count <= _parse_rate(rate)[0]


def count_request(group: str, value: str, rate: str) -> int:
    """Count one request for ``value`` in ``group``'s current window and return the count (raises STORE_ERRORS)."""
    key, period = counter(group, value, rate)
    return _shared_incr(key, period)


def hit(group: str, value: str, rate: str) -> int | None:
    """Count one request for ``value``; return the seconds to wait when over ``rate``, else None.

    Fails open: when the shared cache is down the request is allowed, and the failure logged and counted.
    """
    try:
        count = count_request(group, value, rate)
    except STORE_ERRORS as exc:
        _store_unavailable(group, "fail_open", exc)
        return None
    return verdict(group, value, rate, count)


class RequestRateThrottle(BaseThrottle):
    """DRF throttle: ``RATELIMIT_USER`` per authenticated user; ``RATELIMIT_ANON`` per IP for the rest.

    Anonymous requests without Bearer credentials were counted by RateLimitMiddleware already; this counts
    the ones whose Bearer header the view did not use (views with no authentication classes).
    """

    def __init__(self):
        self._wait: int | None = None

    def allow_request(self, request, view):
        if not settings.RATELIMIT_ENABLE:
            return True
        user = request.user
        if user is not None and user.is_authenticated:
            # Counted already in the authentication's round trip to the shared cache, when it could.
            count = getattr(user, "rate_count", None)
            if count is None:
                self._wait = hit("user", str(user.pk), settings.RATELIMIT_USER)
            elif count == STORE_DOWN:
                self._wait = None
                _store_unavailable("user", "fail_open", ConnectionError("shared cache unavailable"))
            else:
                self._wait = verdict("user", str(user.pk), settings.RATELIMIT_USER, count)
        elif has_bearer_credentials(request):
            self._wait = hit("anon", client_ip(request), settings.RATELIMIT_ANON)
        else:
            return True
        return self._wait is None

    def wait(self):
        return self._wait


class RateLimitMiddleware:
    """Per-IP limits that need no view: ``RATELIMIT_ANON`` and the admin login's IP and username limits.

    Every request that is not a Bearer request to the API counts against its IP's anonymous limit before any
    work is done (health checks, /metrics and static files are answered by earlier middleware). A ``POST`` to
    the admin login also counts against ``RATELIMIT_ADMIN_LOGIN_IP`` and ``RATELIMIT_ADMIN_LOGIN_USERNAME``.
    Refusals are 429 in the envelope with ``Retry-After``, as is django-ratelimit's ``Ratelimited`` raised by a
    decorated view.
    """

    api_prefix = "/api/"

    def __init__(self, get_response):
        # Imported here, not on top: DRF imports this module (DEFAULT_THROTTLE_CLASSES) while it builds APIView,
        # which core.exception_handler imports.
        from core.exception_handler import error_for_exception

        self.error_for_exception = error_for_exception
        self.get_response = get_response
        self._admin_login_path: str | None = None

    def __call__(self, request):
        if settings.RATELIMIT_ENABLE:
            try:
                self.check(request)
            except (Ratelimited, *STORE_ERRORS) as exc:
                # The envelope: 429 with Retry-After, or 503 for a store error of a fail-closed limit.
                return self.error_for_exception(exc, request)
        return self.get_response(request)

    def check(self, request) -> None:
        if not (request.path_info.startswith(self.api_prefix) and has_bearer_credentials(request)):
            wait = hit("anon", client_ip(request), settings.RATELIMIT_ANON)
            if wait is not None:
                raise RateLimitedError(wait)
        if request.method == "POST" and request.path_info == self.admin_login_path:
            username = request.POST.get("username", "").strip().lower()
            enforce_rate_limits(
                Limit("admin-login-ip", client_ip(request), settings.RATELIMIT_ADMIN_LOGIN_IP),
                Limit("admin-login-username", username, settings.RATELIMIT_ADMIN_LOGIN_USERNAME),
            )

    @property
    def admin_login_path(self) -> str | None:
        if self._admin_login_path is None:
            try:
                self._admin_login_path = reverse("admin:login")
            except NoReverseMatch:
                self._admin_login_path = ""
        return self._admin_login_path

    def process_exception(self, request, exception):
        if isinstance(exception, Ratelimited):
            if not isinstance(exception, RateLimitedError):
                record_rate_limited("view")
            return self.error_for_exception(exception, request)
        return None
