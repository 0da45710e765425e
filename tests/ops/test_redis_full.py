"""A Redis that refuses writes (full under ``noeviction``, as the README asks it to run): never a 500.

Redis full with ``maxmemory-policy noeviction`` answers every write with ``OOM``; a demoted primary after a
failover answers ``READONLY``. Both are errors of the store, not of the request: the limits that fail open
(anonymous, per user) let the request through, those that fail closed (login, registration, reset, admin
login) answer 503 in the envelope, and the auth-state cache falls back to the database. Each is logged and
counted as for a Redis that is down.
"""

import pytest
from django.core.cache import cache
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import Client
from redis.exceptions import OutOfMemoryError
from rest_framework.test import APIClient

from core.checks import check_redis_keeps_its_keys
from core.ratelimit import redis_client
from tests.assertions import assert_error
from tests.conftest import USES_REDIS, bearer_client, login
from tests.factories import DEFAULT_PASSWORD
from tests.ops.conftest import sample, scrape

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.redis,
    pytest.mark.skipif(not USES_REDIS, reason="needs REDIS_URL: the real Redis's memory policy"),
]


def server():
    return redis_client(cache).get_client(write=True)


@pytest.fixture
def redis_config():
    """Return a function that changes the real Redis's memory settings; they are put back after the test."""
    saved = {key: value for key, value in server().config_get("maxmemory*").items()}
    changed = []

    def change(**values) -> None:
        for key, value in values.items():
            name = key.replace("_", "-")
            changed.append(name)
            server().config_set(name, value)

    yield change
    for name in changed:
        key = name.encode() if isinstance(next(iter(saved)), bytes) else name
        server().config_set(name, saved[key])


@pytest.fixture
def redis_full(redis_config):
    """The real Redis, full: far less memory allowed than it uses, and no eviction, so it refuses every write."""
    redis_config(maxmemory_policy="noeviction", maxmemory="1")
    with pytest.raises(OutOfMemoryError):
        server().set("probe", "1")


def test_anonymous_requests_are_served_and_the_refusal_counted(redis_full):
    statuses = [APIClient(REMOTE_ADDR="198.51.100.90").get("/api/v1/users/me").status_code for _ in range(2)]

    assert statuses == [401, 401]  # the anonymous limit fails open
    samples = scrape(Client())
    assert sample(samples, "ratelimit_store_errors_total", limit="anon", outcome="fail_open") >= 2


def test_an_authenticated_read_and_a_write_are_served_from_the_database(user, redis_config):
    client = bearer_client(login(user.email)["access"])
    assert client.get("/api/v1/users/me").status_code == 200  # cached while Redis had room
    redis_config(maxmemory_policy="noeviction", maxmemory="1")

    changed = client.patch("/api/v1/users/me", {"first_name": "Full"}, format="json")
    read = client.get("/api/v1/users/me")

    assert changed.status_code == 200, changed.content
    assert read.status_code == 200 and read.json()["first_name"] == "Full"  # the stale entry is not served


def test_login_fails_closed_with_service_unavailable(user, redis_full):
    response = APIClient().post(
        "/api/v1/auth/token", {"email": user.email, "password": DEFAULT_PASSWORD}, format="json"
    )

    assert_error(response, 503, "service_unavailable")


def test_registration_fails_closed_and_creates_nothing(redis_full):
    response = APIClient().post(
        "/api/v1/users", {"email": "while-full@example.com", "password": "a-long-passphrase-1"}, format="json"
    )

    assert_error(response, 503, "service_unavailable")
    assert APIClient().get("/api/v1/users/me").status_code in (401, 503)


# ---------------------------------------------------------------- check --deploy


@pytest.mark.parametrize(
    ("policy", "maxmemory", "warned"),
    [
        ("allkeys-lru", "1gb", True),
        ("volatile-lru", "1gb", True),
        ("noeviction", "1gb", False),
        ("allkeys-lru", "0", False),
    ],
)
def test_check_deploy_warns_when_redis_may_evict_keys(redis_config, policy, maxmemory, warned):
    redis_config(maxmemory_policy=policy, maxmemory=maxmemory)

    messages = check_redis_keeps_its_keys(None)

    assert [message.id for message in messages] == (["core.W002"] if warned else [])
    if warned:
        assert policy in messages[0].msg


def test_check_deploy_runs_the_redis_check(redis_config):
    redis_config(maxmemory_policy="allkeys-lru", maxmemory="1gb")
    with pytest.raises(SystemCheckError, match="core.W002"):
        call_command("check", "--deploy", "--fail-level", "WARNING", "--tag", "caches")
