"""A PostgreSQL that refuses writes (a read-only standby, as a primary becomes after a failover): never a 500.

Writes are answered 503 ``service_unavailable`` in the envelope, as for a database that is down, and counted;
reads served from the cache go on, even when their session's last use is due to be written. Simulated on the
test's own connection with a read-only session.
"""

import contextlib
import io

import orjson
import pytest
from django.core.wsgi import get_wsgi_application
from django.db import connection
from django.test import Client
from rest_framework.test import APIClient

from core.db import drop_when_read_only
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


def wsgi_patch(access: str, body: dict) -> str:
    """PATCH /users/me through the WSGI application as a server calls it, request_finished and all (the test
    client leaves out the closing of old connections); return the status line."""
    payload = orjson.dumps(body)
    environ = {
        "REQUEST_METHOD": "PATCH",
        "PATH_INFO": "/api/v1/users/me",
        "SERVER_NAME": "testserver",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(payload),
        "wsgi.errors": io.StringIO(),
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(len(payload)),
        "HTTP_AUTHORIZATION": f"Bearer {access}",
        "REMOTE_ADDR": "127.0.0.1",
    }
    statuses = []
    response = get_wsgi_application()(environ, lambda status, headers: statuses.append(status))
    b"".join(response)
    response.close()  # what a WSGI server does: Django sends request_finished here
    return statuses[0]


def test_a_connection_that_found_its_server_read_only_is_dropped_and_the_next_write_goes_through(user):
    # The test's connection stands for one to the demoted primary: read-only for as long as it lives. A new one
    # stands for a connection to the new primary. Kept until DATABASE_CONN_MAX_AGE, every write would be refused.
    access = login(user.email)["access"]
    with read_only():
        before = connection.connection
        refused = wsgi_patch(access, {"first_name": "Standby"})
        taken = wsgi_patch(access, {"first_name": "Primary"})

    assert refused.startswith("503")
    assert before.closed  # closed at the end of the refused request, not left for the next one to meet
    assert taken.startswith("200")
    assert bearer_client(access).get("/api/v1/users/me").json()["first_name"] == "Primary"


def test_the_watch_survives_a_connection_opened_inside_an_execute_wrapper_block():
    # Django's execute_wrapper() pops the last wrapper when its block ends: ours goes first in the list.
    def passing(execute, sql, params, many, context):
        return execute(sql, params, many, context)

    connection.close()
    connection.execute_wrappers.clear()  # as for a thread's first connection
    with connection.execute_wrapper(passing):
        connection.ensure_connection()  # connection_created: the watch is put in place now
    assert connection.execute_wrappers == [drop_when_read_only]
