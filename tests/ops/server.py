"""A real gunicorn for the operations tests: a migrated throwaway database, a free loopback port, a killer on exit.

The server runs ``config.settings`` (what production runs, Argon2 included) on its own database: a
temporary SQLite file, or, when the tests run on PostgreSQL, a throwaway database on the same server.
With REDIS_URL set it shares that Redis under a key prefix of its own.
"""

import contextlib
import http.client
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import orjson
from django.conf import settings

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT = 20.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def base_env(database_url: str) -> dict[str, str]:
    """Return the environment of a server process: production-like settings, loopback only, quiet mail."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("PYTEST", "DJANGO_", "GUNICORN"))}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DATABASE_URL": database_url,
            "EMAIL_URL": "locmem:",
            "LOG_FORMAT": "json",
            "PYTHONUNBUFFERED": "1",
            # Generous limits: load tests must measure the server, not the limits (each test sets its own).
            "RATELIMIT_LOGIN_IP": "100000/m",
            "RATELIMIT_LOGIN_EMAIL": "100000/m",
            "RATELIMIT_REGISTER_IP": "100000/h",
            "RATELIMIT_ANON": "100000/m",
            "RATELIMIT_USER": "100000/m",
        }
    )
    if settings.CACHES["default"]["BACKEND"].startswith("django_redis"):
        env["REDIS_URL"] = settings.CACHES["default"]["LOCATION"]
        env["CACHE_KEY_PREFIX"] = f"ops-gunicorn-{uuid.uuid4().hex[:8]}"
    else:
        env.pop("REDIS_URL", None)
    return env


@contextlib.contextmanager
def throwaway_database(tmp_dir: Path):
    """Yield the URL of a migrated database of its own (SQLite file, or a PostgreSQL database dropped after)."""
    db = settings.DATABASES["default"]
    if db["ENGINE"] == "django.db.backends.postgresql":
        import psycopg

        name = f"ops_{uuid.uuid4().hex[:12]}"
        auth = db["USER"] + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
        url = f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{name}"
        admin = {"host": db["HOST"] or "127.0.0.1", "port": db["PORT"] or 5432, "user": db["USER"]}
        if db.get("PASSWORD"):
            admin["password"] = db["PASSWORD"]
        with psycopg.connect(dbname="postgres", autocommit=True, **admin) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        try:
            _migrate(url)
            yield url
        finally:
            with psycopg.connect(dbname="postgres", autocommit=True, **admin) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    else:
        url = f"sqlite:///{tmp_dir / 'ops.sqlite3'}"
        _migrate(url)
        yield url


def _management_env(database_url: str) -> dict[str, str]:
    """The servers' environment without the shared cache: a one-off command leaves nothing behind in Redis."""
    env = base_env(database_url)
    env.pop("REDIS_URL", None)
    return env


def _migrate(database_url: str) -> None:
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput"],
        cwd=ROOT,
        env=_management_env(database_url),
        check=True,
        capture_output=True,
        timeout=120,
    )


def create_user(database_url: str, email: str, password: str) -> str:
    """Create a user in the server's database with the service's own manager; return its id."""
    code = f"from users.models import User; print(User.objects.create_user(email={email!r}, password={password!r}).pk)"
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", code],
        cwd=ROOT,
        env=_management_env(database_url),
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return result.stdout.strip().splitlines()[-1]


@dataclass
class Server:
    """One gunicorn master started by a test; ``stop()`` (always called) ends it and its workers."""

    env: dict[str, str]
    log_dir: Path
    use_config: bool = True
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen | None = None

    def start(self) -> "Server":
        command = [sys.executable, "-m", "gunicorn"]
        env = dict(self.env)
        if self.use_config:
            command += ["-c", "config/gunicorn.py"]
            env["GUNICORN_BIND"] = f"127.0.0.1:{self.port}"
        else:
            command += ["--bind", f"127.0.0.1:{self.port}"]
        command.append("config.wsgi")
        self.stdout_path = self.log_dir / f"gunicorn-{self.port}.out"
        self.stderr_path = self.log_dir / f"gunicorn-{self.port}.err"
        with open(self.stdout_path, "wb") as out, open(self.stderr_path, "wb") as err:
            # A session of its own: stop() can end the master and every worker by this group id.
            self.proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=err, start_new_session=True)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gunicorn exited at start:\n{self.stderr_path.read_text()[-3000:]}")
            with contextlib.suppress(OSError):
                if self.request("GET", "/healthz").status == 200 and len(self.worker_pids()) >= 1:
                    return self
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"gunicorn did not answer in {START_TIMEOUT}s:\n{self.stderr_path.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=5)
        self._forget_cache_keys()

    def _forget_cache_keys(self) -> None:
        """Delete what the server left in the shared Redis under its own key prefix."""
        if "REDIS_URL" not in self.env:
            return
        import redis

        client = redis.Redis.from_url(self.env["REDIS_URL"])
        try:
            keys = list(client.scan_iter(f"{self.env['CACHE_KEY_PREFIX']}:*", count=500))
            if keys:
                client.delete(*keys)
        finally:
            client.close()

    def request(self, method: str, path: str, body: dict | None = None, headers: dict | None = None, timeout=10.0):
        """Send one request on a new connection; return the response with its body read (``.data``)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            payload = orjson.dumps(body) if body is not None else None
            all_headers = {"Content-Type": "application/json"} if payload else {}
            all_headers.update(headers or {})
            conn.request(method, path, body=payload, headers=all_headers)
            response = conn.getresponse()
            response.data = response.read()
            return response
        finally:
            conn.close()

    def worker_pids(self) -> set[int]:
        """Return the pids of the master's live children (its workers)."""
        try:
            text = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text()
        except OSError:
            return set()
        return {int(pid) for pid in text.split()}

    def access_lines(self) -> list[dict]:
        lines = [orjson.loads(line) for line in self.stdout_path.read_text().splitlines() if line.startswith("{")]
        return [line for line in lines if line.get("logger") == "access"]

    def stdout_lines(self) -> list[str]:
        return self.stdout_path.read_text().splitlines()

    def metrics(self) -> str:
        response = self.request("GET", "/metrics")
        assert response.status == 200, response.data[:300]
        return response.data.decode()


@dataclass
class Outcome:
    sent_at: float
    done_at: float
    kind: str  # answered, refused (no listener), reset (dropped from the accept queue), failed
    status: int | None = None
    error: str = ""


class Load:
    """Concurrent clients sending one request after another on new connections, each outcome recorded."""

    def __init__(self, server: Server, make_request, *, clients: int, max_requests: int):
        self.server = server
        self.make_request = make_request
        self.clients = clients
        self.max_requests = max_requests
        self.outcomes: list[Outcome] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(n,), daemon=True) for n in range(clients)]

    def __enter__(self) -> "Load":
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)

    def _run(self, client: int) -> None:
        for n in range(self.max_requests // self.clients):
            if self._stop.is_set():
                return
            outcome = self._one(client, n)
            with self._lock:
                self.outcomes.append(outcome)
            if outcome.kind == "refused":
                return  # the server is gone: this client is done

    def _one(self, client: int, n: int) -> Outcome:
        method, path, body, headers = self.make_request(client, n)
        sent = time.monotonic()
        try:
            response = self.server.request(method, path, body, headers)
        except ConnectionRefusedError as exc:
            return Outcome(sent, time.monotonic(), "refused", error=repr(exc))
        except http.client.RemoteDisconnected as exc:
            # EOF without an answer: a worker took the request and closed without answering.
            return Outcome(sent, time.monotonic(), "failed", error=repr(exc))
        except (ConnectionResetError, BrokenPipeError) as exc:
            # RST before any byte of an answer: the connection sat in the listen queue when the listener
            # closed, never accepted by a worker. Anything else after connecting is a failure.
            return Outcome(sent, time.monotonic(), "reset", error=repr(exc))
        except (OSError, http.client.HTTPException) as exc:
            return Outcome(sent, time.monotonic(), "failed", error=repr(exc))
        return Outcome(sent, time.monotonic(), "answered", status=response.status)

    def count(self, kind: str) -> int:
        return sum(1 for outcome in self.outcomes if outcome.kind == kind)

    def answered_after(self, moment: float, sent_before: bool = True) -> int:
        """Count requests sent before ``moment`` and answered after it (in flight at that moment)."""
        return sum(
            1
            for outcome in self.outcomes
            if outcome.kind == "answered"
            and outcome.done_at > moment
            and (outcome.sent_at < moment or not sent_before)
        )
