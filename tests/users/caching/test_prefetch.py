"""The auth-state round trip sent ahead (users.hot_path.AuthStatePrefetchMiddleware): read by the view, counted
once, and never read as another request's, whatever happens between the send and the read."""

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from tests.assertions import assert_error
from tests.conftest import USES_REDIS, bearer_client, login
from tests.factories import UserFactory
from users import auth_state, hot_path
from users.authentication import verified_bearer

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.redis,
    pytest.mark.skipif(not USES_REDIS, reason="needs REDIS_URL: the round trip sent ahead is a Redis one"),
]

VIEWSET_ACCEPT = {"HTTP_ACCEPT": "application/json; charset=utf-8"}


@pytest.fixture
def sends(monkeypatch):
    """The round trips sent at the view's own time (not ahead)."""
    calls = []
    original = auth_state._send_pipelined

    def counting(client, commands, **options):
        calls.append(commands)
        return original(client, commands, **options)

    monkeypatch.setattr(auth_state, "_send_pipelined", counting)
    return calls


@pytest.fixture
def prefetched(monkeypatch):
    """The round trips sent ahead by the middleware."""
    calls = []
    original = hot_path.auth_prefetch

    def counting(**kwargs):
        sent = original(**kwargs)
        calls.append(sent)
        return sent

    monkeypatch.setattr(hot_path, "auth_prefetch", counting)
    return calls


def _session(user) -> tuple[object, dict]:
    tokens = login(user.email)
    client = bearer_client(tokens["access"])
    return client, tokens


def _ids(access: str):
    class Carrier:
        META = {"HTTP_AUTHORIZATION": f"Bearer {access}"}

    return verified_bearer(Carrier())


@pytest.fixture
def two_tokens() -> list[tuple]:
    """(session id, user id) of two open sessions of two users."""
    return [_ids(_session(UserFactory())[1]["access"]) for _ in range(2)]


def _count(user) -> int:
    from django.conf import settings

    from core.ratelimit import counter

    key, _period = counter("user", str(user.pk), settings.RATELIMIT_USER)
    return cache.get(key) or 0


@pytest.mark.parametrize("accept", [{}, VIEWSET_ACCEPT], ids=["fast path", "viewset"])
def test_a_warm_read_uses_the_round_trip_sent_ahead_and_no_sql(sends, prefetched, accept, django_assert_num_queries):
    user = UserFactory()
    client, _ = _session(user)
    assert client.get("/api/v1/users/me", **accept).status_code == 200  # warms the entries
    with django_assert_num_queries(0):
        response = client.get("/api/v1/users/me", **accept)
    assert response.status_code == 200
    assert response.json()["id"] == str(user.pk)
    assert len(prefetched) == 2 and all(sent is not None for sent in prefetched)
    assert sends == []  # neither request sent a round trip of its own
    assert _count(user) == 2  # each counted once


def test_the_staff_list_and_another_users_id_read_it_too(sends, prefetched):
    staff, other = UserFactory(staff=True), UserFactory()
    client, _ = _session(staff)
    assert client.get("/api/v1/users").status_code == 200
    assert client.get(f"/api/v1/users/{other.pk}").json()["id"] == str(other.pk)
    assert len(prefetched) == 2
    assert sends == []


@pytest.mark.parametrize(
    "first",
    [
        pytest.param({"path": "/api/v1/users/me/no-such-route"}, id="no view (404)"),
        pytest.param({"path": "/api/v1/users/me", "HTTP_HOST": "evil.example"}, id="refused Host (400)"),
    ],
)
def test_replies_no_view_read_are_drained_before_the_next_request(sends, prefetched, first):
    # If the first request's replies stayed on the connection, the next request would read them as its own:
    # it would answer with the first user's body.
    first_user, second_user = UserFactory(), UserFactory()
    first_client, _ = _session(first_user)
    second_client, _ = _session(second_user)
    assert second_client.get("/api/v1/users/me").status_code == 200  # warm

    answer = first_client.get(**first)
    assert answer.status_code in (400, 404)
    assert prefetched[-1] is not None  # it was sent ahead, and no view read it

    assert getattr(auth_state._own, "pending", None) is None  # read before the first request ended

    response = second_client.get("/api/v1/users/me")
    assert response.status_code == 200
    assert response.json()["id"] == str(second_user.pk)
    assert sends == []
    assert _count(first_user) == 1  # a request made with the first user's token, counted once


def test_a_send_while_a_batch_is_pending_reads_that_batch_first(sends, two_tokens):
    (first_session, first_id), (second_session, second_id) = two_tokens

    sent = auth_state.auth_prefetch(session_id=first_session, user_id=first_id)
    assert sent is not None
    # Another round trip on the same connection before the first is read: each gets its own replies.
    assert auth_state.auth_user_get(session_id=second_session, user_id=second_id).id == second_id
    assert auth_state.auth_user_get(session_id=first_session, user_id=first_id, sent=sent).id == first_id
    assert len(sends) == 1  # the second user's; the first user's came from the batch sent ahead


def test_a_second_batch_sent_ahead_reads_the_first_one_first(sends, two_tokens):
    (first_session, first_id), (second_session, second_id) = two_tokens

    first = auth_state.auth_prefetch(session_id=first_session, user_id=first_id)
    second = auth_state.auth_prefetch(session_id=second_session, user_id=second_id)
    assert auth_state.auth_user_get(session_id=second_session, user_id=second_id, sent=second).id == second_id
    assert auth_state.auth_user_get(session_id=first_session, user_id=first_id, sent=first).id == first_id
    assert sends == []


def test_a_batch_sent_for_another_token_is_not_used(sends, two_tokens):
    (first_session, first_id), (second_session, second_id) = two_tokens

    sent = auth_state.auth_prefetch(session_id=first_session, user_id=first_id)
    caller = auth_state.auth_user_get(session_id=second_session, user_id=second_id, sent=sent)
    assert caller.id == second_id
    assert len(sends) == 1


def test_a_closed_connection_met_while_reading_is_sent_again_on_a_new_one(sends, monkeypatch):
    user = UserFactory()
    client, _ = _session(user)
    assert client.get("/api/v1/users/me").status_code == 200  # warm

    def closed(connection, replies):  # what reading the batch sent ahead meets
        connection.disconnect()
        raise RedisConnectionError("Connection closed by server.")

    def exchange(connection, packed, replies):  # the view's own round trip, not through the closed reader
        connection.send_packed_command(packed, check_health=False)
        return [connection.read_response() for _ in range(replies)]

    monkeypatch.setattr(auth_state, "_receive", closed)
    monkeypatch.setattr(auth_state, "_exchange", exchange)

    with CaptureQueriesContext(connection) as queries:
        response = client.get("/api/v1/users/me")
    assert response.status_code == 200
    assert response.json()["id"] == str(user.pk)
    assert len(sends) == 1  # sent again at the view's time
    assert len(queries) == 0  # and still answered from Redis


def test_a_redis_that_refuses_connections_is_tried_twice_per_request_as_without_the_send_ahead(monkeypatch):
    user = UserFactory()
    client, _ = _session(user)
    assert client.get("/api/v1/users/me").status_code == 200  # warm
    attempts = []

    def refused(connection, packed):
        attempts.append(packed)
        raise RedisConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    monkeypatch.setattr(auth_state, "_send", refused)
    response = client.get("/api/v1/users/me")
    assert response.status_code == 200  # from the database
    assert response.json()["id"] == str(user.pk)
    assert len(attempts) == 2  # once ahead, once more at the view's time: no third attempt


def test_a_send_that_timed_out_is_not_waited_for_twice(sends, monkeypatch, caplog):
    user = UserFactory()
    client, _ = _session(user)
    assert client.get("/api/v1/users/me").status_code == 200  # warm

    def timed_out(connection, packed):
        raise RedisTimeoutError("Timeout writing to socket")

    monkeypatch.setattr(auth_state, "_send", timed_out)
    monkeypatch.setattr(auth_state._cache_warning, "last", float("-inf"))  # not swallowed by an earlier test's
    with CaptureQueriesContext(connection) as queries:
        response = client.get("/api/v1/users/me")
    assert response.status_code == 200  # from the database
    assert response.json()["id"] == str(user.pk)
    assert len(queries) > 0
    assert sends == []  # the reader took the send's timeout as its own: no second wait
    assert "cache unavailable" in caplog.text


@pytest.mark.parametrize(
    ("method", "path"), [("patch", "/api/v1/users/me"), ("get", "/api/v1/auth/sessions"), ("head", "/api/v1/users/me")]
)
def test_only_gets_under_users_are_sent_ahead(prefetched, method, path):
    client, _ = _session(UserFactory())
    kwargs = {"data": {"first_name": "Ann"}, "format": "json"} if method == "patch" else {}
    assert getattr(client, method)(path, **kwargs).status_code == 200
    assert prefetched == []


def test_a_refused_token_is_not_sent_ahead(prefetched, api_client):
    response = api_client.get("/api/v1/users/me", HTTP_AUTHORIZATION="Bearer not-a-jwt")
    assert_error(response, 401, "token_not_valid")
    assert prefetched == []
