"""System checks that ``manage.py check --deploy`` runs for this service."""

from django.conf import settings
from django.core.cache import caches
from django.core.checks import Info, Tags, Warning, register

from core.ratelimit import redis_client


@register(Tags.security, deploy=True)
def check_rate_limits_enabled(app_configs, **kwargs):
    """Warn when RATELIMIT_ENABLE=false is deployed: it is meant for local benchmarks only."""
    if not getattr(settings, "RATELIMIT_ENABLE", True):
        return [Warning("RATELIMIT_ENABLE is false: every rate limit is off.", id="core.W001")]
    return []


@register(Tags.caches, deploy=True)
def check_redis_keeps_its_keys(app_configs, **kwargs):
    """Warn when the shared Redis may evict keys to make room (README, "What lives where").

    An ended session's tombstone evicted in the milliseconds between its revocation and a racing login's or
    refresh's write would let that write bring the session back for up to AUTH_STATE_CACHE_TTL; a user's
    write stamp evicted would let a reader store a row it read before that user's last write.
    """
    client = redis_client(caches["default"])
    if client is None:
        return []  # local memory: nothing shared to lose
    try:
        config = client.get_client(write=True).config_get("maxmemory*")
    except Exception as exc:  # noqa: BLE001  (down, or CONFIG refused as on some managed services)
        return [
            Info(
                f"Could not read Redis' eviction policy ({type(exc).__name__}).",
                hint="Make sure it runs with maxmemory-policy noeviction, or without maxmemory.",
                id="core.I002",
            )
        ]
    config = {_text(key): _text(value) for key, value in config.items()}
    maxmemory, policy = int(config.get("maxmemory") or 0), config.get("maxmemory-policy", "")
    if maxmemory and policy != "noeviction":
        return [
            Warning(
                f"Redis evicts keys when full (maxmemory {maxmemory}, maxmemory-policy {policy}): an evicted "
                "session tombstone can let a racing login or refresh bring an ended session back.",
                hint="Run Redis with maxmemory-policy noeviction (it then refuses writes when full, which the "
                "service treats as a cache failure), or without maxmemory.",
                id="core.W002",
            )
        ]
    return []


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
