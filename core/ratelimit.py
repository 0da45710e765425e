"""Rate limits on django-ratelimit's counters in the shared cache, and the client IP behind trusted proxies."""

import time

from django.conf import settings
from django_ratelimit.core import _get_window, _split_rate, is_ratelimited
from django_ratelimit.exceptions import Ratelimited

__all__ = ["RateLimitedError", "client_ip", "enforce_rate_limit"]


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
        if len(forwarded) >= hops:
            return forwarded[-hops]
    return request.META.get("REMOTE_ADDR", "")


def enforce_rate_limit(request, *, group: str, value: str, rate: str) -> None:
    """Count one request for ``value`` in ``group``; raise RateLimitedError when over ``rate``."""
    if not value:
        return
    if is_ratelimited(request, group=group, key=lambda _group, _request: value, rate=rate, increment=True):
        _count, period = _split_rate(rate)
        retry_after = int(_get_window(value, period) - time.time()) + 1
        raise RateLimitedError(max(1, retry_after))
