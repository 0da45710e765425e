"""Writers drop a user's entry after commit; a reader that read before a commit can never store what it read."""

import pytest
from django.core.cache import cache

from tests.conftest import USES_REDIS, bearer_client, login
from tests.factories import UserFactory
from users import auth_state

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.redis,
    pytest.mark.skipif(not USES_REDIS, reason="needs REDIS_URL: the stamped stores run in Redis"),
]


@pytest.fixture(autouse=True)
def _shared_cache(settings):
    settings.SHARED_STATE_CACHE = True


def _client_for(user):
    return bearer_client(login(user.email)["access"])


def _first_name(client) -> str:
    return client.get("/api/v1/users/me").json()["first_name"]


def _key(template: str, user) -> dict:
    return {"key": template.format(user.pk), "version": auth_state._cache_version()}


def test_a_write_drops_the_entry_after_commit_and_the_next_read_refills_it(django_assert_num_queries):
    user = UserFactory(first_name="A")
    client = _client_for(user)
    assert _first_name(client) == "A"
    assert cache.get(**_key(auth_state.USER_KEY, user)) is not None

    assert client.patch("/api/v1/users/me", {"first_name": "B"}, format="json").status_code == 200

    assert cache.get(**_key(auth_state.USER_KEY, user)) is None  # dropped, not re-read and written through
    assert _first_name(client) == "B"  # the next reader fills it from the committed row...
    with django_assert_num_queries(0):
        assert _first_name(client) == "B"  # ...and it is served from the cache after that


def test_a_reader_that_read_before_a_commit_cannot_store_it_after_the_writer_dropped_the_entry(
    django_assert_num_queries,
):
    user = UserFactory(first_name="A")
    client = _client_for(user)
    cache.delete(**_key(auth_state.USER_KEY, user))
    # A reader that missed takes its stamp and reads "A"...
    stamp = auth_state._user_stamp(user.pk)
    stale = auth_state._user_state(user.pk)
    # ...a write commits and drops the entry...
    assert client.patch("/api/v1/users/me", {"first_name": "B"}, format="json").status_code == 200
    # ...and the reader's store comes last: refused.
    auth_state._user_store(user.pk, stale, stamp, operation="add")

    assert cache.get(**_key(auth_state.USER_KEY, user)) is None
    assert _first_name(client) == "B"
    with django_assert_num_queries(0):
        assert _first_name(client) == "B"


def test_a_stamp_counter_that_expired_restarts_above_the_stored_tag():
    user = UserFactory(first_name="A")
    client = _client_for(user)
    for name in ("B", "C"):
        assert client.patch("/api/v1/users/me", {"first_name": name}, format="json").status_code == 200
    # A reader takes its stamp and reads "C"; then the counter expires (as if no write came for its TTL)...
    stamp = auth_state._user_stamp(user.pk)
    stale = auth_state._user_state(user.pk)
    cache.delete(**_key(auth_state.UVER_KEY, user))
    # ...and a write commits: its stamp must still be above the reader's, or the reader's late store would win.
    assert client.patch("/api/v1/users/me", {"first_name": "D"}, format="json").status_code == 200
    auth_state._user_store(user.pk, stale, stamp, operation="add")

    assert _first_name(client) == "D"


def test_a_readers_stamp_renews_the_counter_so_it_cannot_expire_under_the_reader(settings):
    user = UserFactory()
    client = _client_for(user)
    assert client.patch("/api/v1/users/me", {"first_name": "B"}, format="json").status_code == 200
    counter = _key(auth_state.UVER_KEY, user)
    cache.expire(counter["key"], 5, version=counter["version"])

    assert auth_state._user_stamp(user.pk) >= 1

    assert cache.ttl(**counter) > settings.USER_CACHE_TTL


def test_a_writers_invalidation_that_lands_late_leaves_the_newest_state(monkeypatch):
    user = UserFactory(first_name="A")
    client = _client_for(user)
    invalidate, held = auth_state._user_invalidate, []

    def hold_the_first_writer(user_id):
        if not held:
            held.append(user_id)  # writer 1 has committed "B"; its after-commit step is delayed
            return None
        return invalidate(user_id)

    monkeypatch.setattr(auth_state, "_user_invalidate", hold_the_first_writer)
    assert client.patch("/api/v1/users/me", {"first_name": "B"}, format="json").status_code == 200
    assert client.patch("/api/v1/users/me", {"first_name": "C"}, format="json").status_code == 200
    assert _first_name(client) == "C"  # a reader fills "C"
    invalidate(held[0])  # writer 1's step lands after all that

    assert _first_name(client) == "C"
