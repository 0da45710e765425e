"""A failed invalidation moves the cache generation on, so entries it could not remove are never read again."""

import pytest
from django.core.cache import cache
from redis.exceptions import ConnectionError as RedisConnectionError

from tests.assertions import assert_error
from tests.conftest import bearer_client, login, sid
from tests.factories import UserFactory
from users import auth_state
from users.models import StateCacheEpoch

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _shared_cache(settings):
    settings.SHARED_STATE_CACHE = True


@pytest.fixture
def partition(monkeypatch):
    """Make every cache write fail (the cache unreachable for invalidations) while reads still answer."""

    def cut():
        def refuse(*args, **kwargs):
            raise RedisConnectionError("cache unreachable")

        for method in ("delete", "delete_many", "set", "set_many"):
            monkeypatch.setattr(cache, method, refuse)

    return cut


def _generation() -> int:
    # Transactional tests flush the table the migration filled: no row reads as generation 0, as in the code.
    row = StateCacheEpoch.objects.filter(pk=StateCacheEpoch.SINGLETON).values_list("value", flat=True).first()
    return row or 0


def test_logout_that_cannot_reach_the_cache_still_refuses_the_token(partition, monkeypatch):
    user = UserFactory()
    tokens = login(user.email)
    client = bearer_client(tokens["access"])
    assert client.get("/api/v1/users/me").status_code == 200  # open state cached
    before = _generation()
    old_version = auth_state._cache_version()

    partition()
    assert client.post("/api/v1/auth/logout").status_code == 204
    monkeypatch.undo()

    assert _generation() > before
    key = auth_state.SESSION_KEY.format(sid(tokens["access"]))
    assert cache.get(key, version=old_version) not in (None, auth_state.GONE)  # the stale entry is still there...
    assert_error(client.get("/api/v1/users/me"), 401, "token_not_valid")  # ...and never read again


def test_profile_write_during_a_partition_is_read_fresh_after_it(partition, monkeypatch):
    user = UserFactory(first_name="Before")
    client = bearer_client(login(user.email)["access"])
    assert client.get("/api/v1/users/me").json()["first_name"] == "Before"

    partition()
    assert client.patch("/api/v1/users/me", {"first_name": "During"}, format="json").status_code == 200
    monkeypatch.undo()

    assert client.get("/api/v1/users/me").json()["first_name"] == "During"


def test_other_processes_follow_the_new_generation_within_the_poll_interval(settings, partition, monkeypatch):
    user = UserFactory()
    client = bearer_client(login(user.email)["access"])
    client.get("/api/v1/users/me")
    partition()
    assert client.post("/api/v1/auth/logout").status_code == 204
    monkeypatch.undo()
    # Another process: it still holds the old generation until its poll interval runs out.
    auth_state._epoch.update(version=1, checked=float("-inf"))
    settings.STATE_CACHE_EPOCH_POLL = 0
    assert_error(client.get("/api/v1/users/me"), 401, "token_not_valid")


def test_reads_that_fail_do_not_move_the_generation(monkeypatch):
    user = UserFactory()
    client = bearer_client(login(user.email)["access"])
    before = _generation()

    def refuse(*args, **kwargs):
        raise RedisConnectionError("cache unreachable")

    monkeypatch.setattr(cache, "get_many", refuse)
    monkeypatch.setattr(cache, "add", refuse)
    assert client.get("/api/v1/users/me").status_code == 200
    assert _generation() == before
