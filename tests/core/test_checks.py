"""core.checks without a shared Redis: nothing to warn about, or nothing that can be asked.

With the real Redis, tests/ops/test_redis_full.py shows the warning for each memory policy.
"""

from core.checks import check_redis_keeps_its_keys
from tests.conftest import dead_cache


def test_the_check_is_silent_without_a_shared_redis(settings):
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    assert check_redis_keeps_its_keys(None) == []


def test_a_redis_that_cannot_be_asked_is_noted_not_warned(settings):
    settings.CACHES = dead_cache()
    assert [message.id for message in check_redis_keeps_its_keys(None)] == ["core.I002"]
