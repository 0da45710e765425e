"""The benchmark's diagnostic server: the service's gunicorn settings, its Redis round trip answered from memory."""

import importlib

from users import auth_state, hot_path


def test_diagnostic_config_is_the_service_config_plus_a_memo_of_the_round_trip(monkeypatch, tmp_path):
    # Set, so importing config/gunicorn.py creates no metrics directory of its own in this process.
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    service = importlib.import_module("config.gunicorn")
    diagnostic = importlib.import_module("bench.gunicorn_no_round_trip")
    for name in ("workers", "worker_class", "timeout", "graceful_timeout", "keepalive", "max_requests", "on_exit"):
        assert getattr(diagnostic, name) == getattr(service, name), name

    sent = []
    monkeypatch.setattr(auth_state, "_send_pipelined", lambda client, commands: sent.append(commands) or [len(sent)])
    monkeypatch.setattr(hot_path, "auth_prefetch", hot_path.auth_prefetch)  # restored after the test
    diagnostic.post_worker_init(worker=None)
    assert hot_path.auth_prefetch(session_id=1, user_id=1) is None  # nothing sent ahead of the view
    batch = [("MGET", "s:1", "u:v1:1"), ("INCR", "rl:user:1:0"), ("EXPIRE", "rl:user:1:0", 65)]
    assert auth_state._send_pipelined(None, batch) == [1]
    assert auth_state._send_pipelined(None, list(batch)) == [1]  # the same batch: answered from memory
    assert auth_state._send_pipelined(None, batch[1:]) == [2]  # another batch goes to Redis once
    assert len(sent) == 2
