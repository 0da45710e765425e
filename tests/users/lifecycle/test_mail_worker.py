"""The mail worker: `manage.py mail_worker` sends queued mail over SMTP; stopped or killed mid-queue and restarted,
it loses nothing and sends nothing twice.

The worker runs as a real process on the database queue (django-tasks-db) and talks SMTP to a small mail server
in this test, on 127.0.0.1, that answers each message slowly so the worker can be stopped in the middle.
"""

import os
import signal
import socket
import socketserver
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import quote

import pytest
from django.db import connection

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[3]
MESSAGES = 8
TIMEOUT = 60

ENQUEUE = f"""
from users.models import User
from users.tasks import verification_mail_send
for n in range({MESSAGES}):
    user = User.objects.create_user(email=f"queued{{n}}@example.com", password=None)
    verification_mail_send.enqueue(user_id=str(user.pk))
"""


class SmtpSink:
    """A minimal SMTP server: accepts each message after ``delay`` seconds, unless the client is gone by then."""

    def __init__(self, delay: float):
        self.delay = delay
        self.delivered: list[str] = []
        self.data_received = threading.Semaphore(0)
        self.lock = threading.Lock()
        sink = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self):
                sink._session(self)

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()

    def _session(self, handler):
        def reply(text):
            handler.wfile.write(f"{text}\r\n".encode())
            handler.wfile.flush()

        reply("220 sink ESMTP")
        recipients: list[str] = []
        while line := handler.rfile.readline():
            command = line.decode().strip()
            verb = command.split(" ", 1)[0].split(":", 1)[0].upper()
            if verb == "RCPT":
                recipients.append(command.split(":", 1)[1].strip().strip("<>").lower())
                reply("250 OK")
            elif verb == "DATA":
                reply("354 End data with <CR><LF>.<CR><LF>")
                while handler.rfile.readline() not in (b".\r\n", b""):
                    pass
                self.data_received.release()
                time.sleep(self.delay)
                if _peer_closed(handler.connection):
                    return  # the client died before the server accepted: not delivered
                with self.lock:
                    self.delivered.extend(recipients)
                recipients = []
                reply("250 Queued")
            elif verb == "QUIT":
                reply("221 Bye")
                return
            else:  # EHLO, HELO, MAIL, RSET, NOOP
                reply("250 OK")


def _peer_closed(sock: socket.socket) -> bool:
    try:
        return sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True


@pytest.fixture
def worker_env(tmp_path):
    """Environment of a worker process on this test's database, mail through SMTP to a sink, queued tasks."""
    settings_dict = connection.settings_dict
    if connection.vendor == "postgresql":
        credentials = quote(settings_dict["USER"] or "postgres", safe="")
        if settings_dict["PASSWORD"]:
            credentials += ":" + quote(settings_dict["PASSWORD"], safe="")
        host, port = settings_dict["HOST"] or "127.0.0.1", settings_dict["PORT"] or 5432
        database_url = f"postgres://{credentials}@{host}:{port}/{settings_dict['NAME']}"
    else:
        # The test database is in memory, so the worker gets a file database of its own.
        database_url = f"sqlite:///{tmp_path / 'worker.sqlite3'}"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DJANGO_ENV": "development",
        "DATABASE_URL": database_url,
        "TASKS_BACKEND": "database",
        "MAIL_RETRY_DELAY": "0",
        "LOG_LEVEL": "WARNING",
    }
    env.pop("REDIS_URL", None)
    env.pop("DJANGO_DEBUG", None)
    if connection.vendor != "postgresql":
        manage(env, "migrate", "--noinput")
    return env


def manage(env, *args, timeout=TIMEOUT):
    result = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def start_worker(env, *extra):
    return subprocess.Popen(
        [sys.executable, "manage.py", "mail_worker", "--no-startup-delay", "--interval", "0.1", "--no-reload", *extra],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def wait_for_data(sink, count):
    for _ in range(count):
        assert sink.data_received.acquire(timeout=TIMEOUT), "the worker sent no more mail"


def task_statuses(env) -> str:
    script = (
        "from django_tasks_db.models import DBTaskResult as T; from collections import Counter;"
        "print(sorted(Counter(T.objects.values_list('status', flat=True)).items()))"
    )
    return manage(env, "shell", "-c", script).stdout.strip().splitlines()[-1]


@pytest.fixture
def sink():
    server = SmtpSink(delay=0.4)
    yield server
    server.close()


EXPECTED = sorted(f"queued{n}@example.com" for n in range(MESSAGES))


def test_worker_sends_every_queued_message_once(worker_env, sink):
    env = {**worker_env, "EMAIL_URL": f"smtp://127.0.0.1:{sink.port}"}
    sink.delay = 0
    manage(env, "shell", "-c", ENQUEUE)

    manage(env, "mail_worker", "--batch", "--no-startup-delay", "--no-reload")

    assert sorted(sink.delivered) == EXPECTED
    assert task_statuses(env) == f"[('SUCCESSFUL', {MESSAGES})]"


def test_worker_stopped_mid_queue_and_restarted_loses_nothing_and_sends_nothing_twice(worker_env, sink):
    env = {**worker_env, "EMAIL_URL": f"smtp://127.0.0.1:{sink.port}"}
    manage(env, "shell", "-c", ENQUEUE)
    worker = start_worker(env)
    wait_for_data(sink, 3)

    worker.send_signal(signal.SIGTERM)  # a deploy: finish the message in hand, leave the rest queued
    output, _ = worker.communicate(timeout=TIMEOUT)

    sent_before_restart = len(sink.delivered)
    assert 3 <= sent_before_restart < MESSAGES, output
    assert "shutting down gracefully" in output
    manage(env, "mail_worker", "--batch", "--no-startup-delay", "--no-reload")
    assert sorted(sink.delivered) == EXPECTED
    assert task_statuses(env) == f"[('SUCCESSFUL', {MESSAGES})]"


def test_worker_killed_mid_send_is_recovered_on_restart_without_duplicates(worker_env, sink):
    env = {**worker_env, "EMAIL_URL": f"smtp://127.0.0.1:{sink.port}", "MAIL_TASK_STALE_AFTER": "0"}
    manage(env, "shell", "-c", ENQUEUE)
    worker = start_worker(env)
    wait_for_data(sink, 3)  # the third message is on the wire, not yet accepted by the server

    worker.kill()  # a crash: no chance to finish or to mark anything
    worker.communicate(timeout=TIMEOUT)
    time.sleep(sink.delay + 0.2)  # the server notices the dead client and refuses that message

    assert len(sink.delivered) == 2
    assert "('RUNNING', 1)" in task_statuses(env)
    restarted = manage(env, "mail_worker", "--batch", "--no-startup-delay", "--no-reload")
    assert "Re-queued 1 task(s)" in restarted.stderr
    assert sorted(sink.delivered) == EXPECTED
    assert task_statuses(env) == f"[('SUCCESSFUL', {MESSAGES})]"


def test_worker_retries_a_message_the_server_could_not_take(worker_env, tmp_path):
    # No server listens on this port at first: every attempt fails and is retried from the queue.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**worker_env, "EMAIL_URL": f"smtp://127.0.0.1:{port}", "MAIL_MAX_ATTEMPTS": "2"}
    manage(env, "shell", "-c", ENQUEUE.replace(f"range({MESSAGES})", "range(1)"))

    manage(env, "mail_worker", "--batch", "--no-startup-delay", "--no-reload")

    assert task_statuses(env) == "[('FAILED', 1), ('SUCCESSFUL', 1)]"
