"""Racing stores of a user's cache entry: whoever stores last, the state read last stays (stamped compare-and-set)."""

import pytest
from django.core.cache import cache

from tests.conftest import USES_REDIS, bearer_client, login
from tests.factories import UserFactory
from users import auth_state

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.redis,
    pytest.mark.skipif(not USES_REDIS, reason="needs REDIS_URL: the compare-and-set runs in Redis"),
]


@pytest.fixture(autouse=True)
def _shared_cache(settings):
    settings.SHARED_STATE_CACHE = True


def _client_for(user):
    return bearer_client(login(user.email)["access"])


def _first_name(client) -> str:
    return client.get("/api/v1/users/me").json()["first_name"]


def test_a_writer_that_stores_late_cannot_bring_back_what_it_read_before_a_later_commit(monkeypatch):
    user = UserFactory(first_name="A")
    client = _client_for(user)
    assert _first_name(client) == "A"
    store, held = auth_state._user_store, []

    def hold_the_first_writer(*args, **kwargs):
        if kwargs["operation"] == "set" and not held:
            held.append((args, kwargs))  # writer 1 has read "B" after its commit; its store is delayed
            return None
        return store(*args, **kwargs)

    monkeypatch.setattr(auth_state, "_user_store", hold_the_first_writer)
    assert client.patch("/api/v1/users/me", {"first_name": "B"}, format="json").status_code == 200
    assert client.patch("/api/v1/users/me", {"first_name": "C"}, format="json").status_code == 200
    args, kwargs = held[0]
    store(*args, **kwargs)  # writer 1's store lands after writer 2's

    assert _first_name(client) == "C"


def test_a_reader_that_read_before_a_commit_cannot_overwrite_the_writers_state(django_assert_num_queries):
    user = UserFactory(first_name="A")
    client = _client_for(user)
    cache.delete(auth_state.USER_KEY.format(user.pk), version=auth_state._cache_version())
    # A reader that missed takes its stamp and reads "A"...
    stamp = auth_state._user_stamp(user.pk, write=False)
    stale = auth_state._user_state(user.pk)
    # ...a write commits and stores "B"...
    assert client.patch("/api/v1/users/me", {"first_name": "B"}, format="json").status_code == 200
    # ...and the reader's store comes last.
    auth_state._user_store(user.pk, stale, stamp, operation="add")

    with django_assert_num_queries(0):
        assert _first_name(client) == "B"


def test_a_stamp_counter_that_expired_restarts_above_the_stored_stamp(django_assert_num_queries):
    user = UserFactory(first_name="A")
    client = _client_for(user)
    for name in ("B", "C"):
        assert client.patch("/api/v1/users/me", {"first_name": name}, format="json").status_code == 200
    cache.delete(auth_state.UVER_KEY.format(user.pk), version=auth_state._cache_version())  # as if it expired

    assert client.patch("/api/v1/users/me", {"first_name": "D"}, format="json").status_code == 200

    with django_assert_num_queries(0):  # the writer's store was accepted: the entry is there, and fresh
        assert _first_name(client) == "D"
