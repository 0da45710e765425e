"""Liveness and readiness checks: the process, the database and the cache."""

import logging
import uuid

from django.core.cache import cache
from django.db import connections

logger = logging.getLogger("core.health")

__all__ = ["check_cache", "check_database", "readiness"]


def check_database() -> bool:
    """Return True when the default database answers ``SELECT 1``."""
    try:
        with connections["default"].cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:  # noqa: BLE001  (any driver error means "not ready")
        logger.warning("readiness: database check failed: %s", type(exc).__name__)
        connections["default"].close_if_unusable_or_obsolete()
        return False
    return True


def check_cache() -> bool:
    """Return True when the shared cache stores and returns a value."""
    key = f"readyz:{uuid.uuid4().hex}"
    try:
        cache.set(key, "1", timeout=5)
        ok = cache.get(key) == "1"
        cache.delete(key)
    except Exception as exc:  # noqa: BLE001
        logger.warning("readiness: cache check failed: %s", type(exc).__name__)
        return False
    return ok


def readiness() -> dict[str, str]:
    """Return each dependency's state, ``ok`` or ``unavailable``."""
    return {
        "database": "ok" if check_database() else "unavailable",
        "cache": "ok" if check_cache() else "unavailable",
    }
