"""The benchmark's diagnostic server: the service's gunicorn settings, its Redis round trip answered from memory."""

import importlib

import pytest

from tests.conftest import USES_REDIS, bearer_client, login
from tests.factories import UserFactory
from users import auth_state, hot_path


def test_diagnostic_config_is_the_service_config_plus_a_memo_of_the_round_trip(monkeypatch, tmp_path):
    # Set, so importing config/gunicorn.py creates no metrics directory of its own in this process.
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    service = importlib.import_module("config.gunicorn")
    diagnostic = importlib.import_module("bench.gunicorn_no_round_trip")
    for name in ("workers", "worker_class", "timeout", "graceful_timeout", "keepalive", "max_requests", "on_exit"):
        assert getattr(diagnostic, name) == getattr(service, name), name

    sent = []
    # Redis' answers in turn: a miss of the user entry, then hits (MGET's values, INCR's count, EXPIRE's 1).
    answers = iter([[[b"s", None], 1, 1], [[b"s", b"u"], 2, 1], [[b"s", b"u"], 1, 1]])

    def send(client, commands, *, retry=True):  # the real signature's options reach Redis's first answer
        sent.append((commands, retry))
        return next(answers)

    monkeypatch.setattr(auth_state, "_send_pipelined", send)
    monkeypatch.setattr(hot_path, "auth_prefetch", hot_path.auth_prefetch)  # restored after the test
    diagnostic.post_worker_init(worker=None)
    assert hot_path.auth_prefetch(session_id=1, user_id=1) is None  # nothing sent ahead of the view
    batch = [("MGET", "s:1", "u:v1:1"), ("INCR", "rl:user:1:0"), ("EXPIRE", "rl:user:1:0", 65)]
    assert auth_state._send_pipelined(None, batch, retry=True)[1] == 1  # a miss (filled after it): not kept
    assert auth_state._send_pipelined(None, batch)[1] == 2  # sent again: every entry found, kept
    assert auth_state._send_pipelined(None, list(batch))[1] == 2  # the same batch: answered from memory
    other = [("MGET", "s:2", "u:v1:2"), ("INCR", "rl:user:2:0"), ("EXPIRE", "rl:user:2:0", 65)]
    assert auth_state._send_pipelined(None, other)[1] == 1  # another batch goes to Redis
    assert [retry for _commands, retry in sent] == [True, True, True]
    assert len(sent) == 3


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(not USES_REDIS, reason="needs REDIS_URL: the round trip answered from memory is a Redis one")
def test_diagnostic_server_answers_a_warm_read_with_no_sql_and_the_round_trip_from_memory(
    monkeypatch, tmp_path, django_assert_num_queries
):
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    diagnostic = importlib.import_module("bench.gunicorn_no_round_trip")
    monkeypatch.setattr(auth_state, "_send_pipelined", auth_state._send_pipelined)  # both restored after the test
    monkeypatch.setattr(hot_path, "auth_prefetch", hot_path.auth_prefetch)
    diagnostic.post_worker_init(worker=None)
    user = UserFactory()
    client = bearer_client(login(user.email)["access"])
    assert client.get("/api/v1/users/me").status_code == 200  # warms the entries; the batch is remembered
    assert client.get("/api/v1/users/me").status_code == 200
    with django_assert_num_queries(0):
        response = client.get("/api/v1/users/me")
    assert response.json()["id"] == str(user.pk)
