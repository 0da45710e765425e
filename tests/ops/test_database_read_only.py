"""A PostgreSQL that refuses writes (a read-only standby, as a primary becomes after a failover): never a 500.

Writes are answered 503 ``service_unavailable`` in the envelope, as for a database that is down, and counted;
reads served from the cache go on, even when their session's last use is due to be written. Simulated on the
test's own connection with a read-only session.
"""

import contextlib

import pytest
from django.db import connection
from django.test import Client
from rest_framework.test import APIClient

from tests.assertions import assert_error
from tests.conftest import USES_REDIS, bearer_client, login
from tests.factories import DEFAULT_PASSWORD
from tests.ops.conftest import sample, scrape

pytestmark = [
    pytest.mark.django_db(transaction=True),  # a session characteristic outlives no test transaction
    pytest.mark.postgres,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="needs DATABASE_URL: PostgreSQL's read-only mode"),
]


@contextlib.contextmanager
def read_only():
    """Inside, every transaction of this connection (the one the test client's requests use) is read-only."""
    with connection.cursor() as cursor:
        cursor.execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE")


@pytest.fixture
def database_read_only():
    with read_only():
        yield


def db_errors() -> float:
    return sample(scrape(Client()), "db_errors_total", error="InternalError")


def test_a_write_is_answered_503_and_counted(user):
    client = bearer_client(login(user.email)["access"])
    before = db_errors()
    with read_only():
        response = client.patch("/api/v1/users/me", {"first_name": "Standby"}, format="json")

    assert_error(response, 503, "service_unavailable")
    assert db_errors() - before == 1
    assert client.get("/api/v1/users/me").json()["first_name"] != "Standby"  # nothing half-written


def test_login_is_answered_503(user, database_read_only):
    response = APIClient().post(
        "/api/v1/auth/token", {"email": user.email, "password": DEFAULT_PASSWORD}, format="json"
    )

    assert_error(response, 503, "service_unavailable")


def test_registration_is_answered_503(database_read_only):
    response = APIClient().post(
        "/api/v1/users", {"email": "on-standby@example.com", "password": "a-long-passphrase-1"}, format="json"
    )

    assert_error(response, 503, "service_unavailable")


@pytest.mark.skipif(not USES_REDIS, reason="a read without the database needs the shared cache")
def test_a_cached_read_goes_on(user):
    client = bearer_client(login(user.email)["access"])
    assert client.get("/api/v1/users/me").status_code == 200  # cached
    with read_only():
        response = client.get("/api/v1/users/me")

    assert response.status_code == 200
    assert response.json()["email"] == user.email


@pytest.mark.skipif(not USES_REDIS, reason="a read without the database needs the shared cache")
def test_a_cached_read_goes_on_when_its_session_s_last_use_cannot_be_recorded(user, monkeypatch, caplog):
    # A session's last use is written at most once a minute, by the read that finds it older: bookkeeping that
    # must not fail a read the cache can answer.
    client = bearer_client(login(user.email)["access"])
    assert client.get("/api/v1/users/me").status_code == 200  # cached
    monkeypatch.setattr("users.auth_state.LAST_USED_RESOLUTION", 0)  # every read now records its use
    monkeypatch.setattr("users.auth_state._touch_warning.last", float("-inf"))

    with read_only():
        responses = [client.get("/api/v1/users/me") for _ in range(2)]

    assert [response.status_code for response in responses] == [200, 200]
    assert "last use" in caplog.text
    assert client.get("/api/v1/users/me").status_code == 200  # and recorded again once the database takes writes
