"""The real stack for end-to-end tests: a throwaway database, gunicorn instances, HTTP clients, outages.

Everything here talks to loopback only, is bounded in requests and time, and stops by itself: servers are
stopped (and killed if they linger) by their fixtures, outages end in ``finally`` and are checked to be over.
"""

import ctypes
import http.client
import json
import os
import random
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import pytest
import redis

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
VAR = ROOT / "var" / "e2e"
PASSWORD = "e2e-Password-not-secret-42"
PR_SET_PDEATHSIG = 1  # prctl(2)
# Resolved here, in the parent: the forked child only calls it (no loader locks after fork).
_prctl = ctypes.CDLL(None, use_errno=True).prctl if sys.platform == "linux" else None


def service_urls() -> tuple[str, str] | None:
    """Return (DATABASE_URL, REDIS_URL) when both real services are configured, else None (embedded run)."""
    database_url, redis_url = os.environ.get("DATABASE_URL", ""), os.environ.get("REDIS_URL", "")
    if not database_url.startswith(("postgres://", "postgresql://")) or not redis_url.startswith("redis://"):
        return None
    return database_url, redis_url


needs_stack = pytest.mark.skipif(
    service_urls() is None, reason="end-to-end: runs when DATABASE_URL (PostgreSQL) and REDIS_URL are set"
)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# ------------------------------------------------------------------------------------------- database


def with_database(url: str, name: str) -> str:
    return urlsplit(url)._replace(path=f"/{name}").geturl()


@contextmanager
def throwaway_database(database_url: str) -> Iterator[str]:
    """Create ``users_e2e_<pid>``, migrate it as production would, yield its URL, and drop it."""
    name = f"users_e2e_{os.getpid()}"
    admin_url = with_database(database_url, "postgres")
    with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as conn:
        # Left by a run that was killed before its clean-up: its process is gone (same machine, loopback only).
        for (stale,) in conn.execute("SELECT datname FROM pg_database WHERE datname LIKE 'users\\_e2e\\_%%'"):
            pid = stale.rsplit("_", 1)[1]
            if pid.isdigit() and not Path(f"/proc/{pid}").exists():
                conn.execute(f'DROP DATABASE IF EXISTS "{stale}" WITH (FORCE)')
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    url = with_database(database_url, name)
    try:
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "--noinput"],
            cwd=ROOT,
            env={**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings", "DATABASE_URL": url},
            check=True,
            capture_output=True,
            timeout=180,
        )
        yield url
    finally:
        for _ in range(30):  # PostgreSQL may be coming back from a fault test that failed
            try:
                with psycopg.connect(admin_url, autocommit=True, connect_timeout=3) as conn:
                    conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                break
            except psycopg.OperationalError:
                time.sleep(1)


def sql(url: str, query: str, params: tuple = ()) -> list[tuple]:
    """Run one query on the service's database and return its rows (empty for statements without rows)."""
    with psycopg.connect(url, autocommit=True, connect_timeout=5) as conn:
        cursor = conn.execute(query, params)
        return cursor.fetchall() if cursor.description else []


# --------------------------------------------------------------------------------------------- servers


def service_env(database_url: str, redis_url: str, *, key_prefix: str, secrets_: dict, **overrides: str) -> dict:
    """Return the environment of a production server on this stack (same secrets for every instance)."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("RATELIMIT_", "PROMETHEUS_", "GUNICORN_", "DJANGO_", "PYTEST_"))
    }
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DJANGO_ENV": "production",
            "DJANGO_SECRET_KEY": secrets_["secret_key"],
            "JWT_SIGNING_KEY": secrets_["jwt_key"],
            "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
            # Plain HTTP on loopback: a balancer ends TLS in production.
            "DJANGO_SECURE_SSL_REDIRECT": "false",
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "CACHE_KEY_PREFIX": key_prefix,
            "EMAIL_URL": "locmem:",
            "LOG_FORMAT": "json",
            "LOG_LEVEL": "WARNING",
            "ACCESS_LOG": "false",
            # One client IP sends everything: the per-IP limits would refuse the suites' own set-up. Each
            # test that proves a limit sets it back (or proves a per-email / per-username one).
            "RATELIMIT_LOGIN_IP": "100000/m",
            "RATELIMIT_REGISTER_IP": "100000/m",
            "RATELIMIT_ANON": "100000/m",
            "RATELIMIT_USER": "100000/m",
            "PYTHONDONTWRITEBYTECODE": "1",
        }
    )
    env.update(overrides)
    return env


def new_secrets() -> dict:
    return {"secret_key": secrets.token_urlsafe(48), "jwt_key": secrets.token_urlsafe(48)}


def _end_with_parent() -> None:
    """In the child before exec: get SIGTERM when the test process dies, so no server outlives a killed run.

    Linux's PR_SET_PDEATHSIG fires when the thread that started the child ends: start servers from the main
    thread. Elsewhere this does nothing and the fixtures' stop() is the only guard.
    """
    if _prctl is not None:
        _prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


class Gunicorn:
    """``gunicorn -c config/gunicorn.py config.wsgi`` (the Procfile's line) on a free loopback port."""

    def __init__(self, name: str, env: dict, *, workers: int = 2):
        self.name = name
        self.env = env
        self.workers = workers
        self.port = 0
        self.process: subprocess.Popen | None = None
        self.log_path = VAR / "logs" / f"{name}-{os.getpid()}.log"

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self, timeout: float = 60) -> "Gunicorn":
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        for _attempt in range(3):  # a free port can be taken between the probe and the bind
            self.port = free_port()
            env = {
                **self.env,
                "GUNICORN_BIND": f"127.0.0.1:{self.port}",
                "WEB_CONCURRENCY": str(self.workers),
                "GUNICORN_THREADS": "1",
                "GUNICORN_TIMEOUT": "30",
                "GUNICORN_GRACEFUL_TIMEOUT": "5",
                "GUNICORN_MAX_REQUESTS": "0",
                "GUNICORN_MAX_REQUESTS_JITTER": "0",
            }
            with open(self.log_path, "ab") as log:
                self.process = subprocess.Popen(
                    [str(BIN / "gunicorn"), "-c", "config/gunicorn.py", "config.wsgi"],
                    cwd=ROOT,
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    preexec_fn=_end_with_parent,
                )
            if self._ready(timeout):
                return self
            self.stop()
        raise RuntimeError(f"gunicorn {self.name} did not start; see {self.log_path}")

    def _ready(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return False
            try:
                if request(self.base, "GET", "/healthz", timeout=2).status == 200 and len(self.worker_pids()) == (
                    self.workers
                ):
                    return True
            except OSError:
                pass
            time.sleep(0.1)
        return False

    def worker_pids(self) -> list[int]:
        """Return the pids of the master's live worker processes."""
        pids = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            # pid (comm) state ppid ...: comm may hold spaces, so split after its closing parenthesis.
            fields = stat.rsplit(")", 1)[1].split()
            if int(fields[1]) == self.pid and fields[0] != "Z":
                pids.append(int(entry.name))
        return sorted(pids)

    def wait_for_workers(self, timeout: float = 30) -> list[int]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pids = self.worker_pids()
            if len(pids) == self.workers:
                return pids
            time.sleep(0.1)
        raise AssertionError(f"{self.name}: {self.workers} workers not back within {timeout}s")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=5)


def manage(env: dict, *argv: str, extra_env: dict | None = None) -> str:
    result = subprocess.run(
        [sys.executable, "manage.py", *argv],
        cwd=ROOT,
        env={**env, **(extra_env or {})},
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return result.stdout


# ------------------------------------------------------------------------------------------------ HTTP


@dataclass
class Tally:
    """What one suite sent and got back, for its summary line."""

    sent: int = 0
    answered: int = 0
    no_answer: int = 0
    server_errors: int = 0
    expected_503: int = 0
    notes: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def line(self, suite: str, outcome: str) -> str:
        return (
            f"e2e {suite}: {self.sent} requests sent, {self.no_answer} failures (no answer), "
            f"{self.server_errors} 5xx ({self.expected_503} of them 503 while a dependency was down); {outcome}"
            + "".join(f"; {note}" for note in self.notes)
        )


TALLIES: dict[str, Tally] = {}


def tally(suite: str) -> Tally:
    return TALLIES.setdefault(suite, Tally())


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes
    started: float
    elapsed: float

    def json(self):
        return json.loads(self.body)

    @property
    def code(self) -> str | None:
        try:
            data = self.json()
        except ValueError:
            return None
        return data.get("code") if isinstance(data, dict) else None


def request(
    base: str,
    method: str,
    path: str,
    *,
    body=None,
    token: str | None = None,
    headers: dict | None = None,
    timeout: float = 15,
    suite: str | None = None,
    outage: bool = False,
) -> Answer:
    """Send one request on a new connection; raise OSError / HTTPException when no answer came back.

    ``suite`` counts it in that suite's tally; ``outage`` marks a 503 as expected (a dependency is down).
    """
    host, port = urlsplit(base).hostname, urlsplit(base).port
    sent_headers = {"Accept": "application/json", **(headers or {})}
    payload = None
    if body is not None:
        payload = json.dumps(body).encode()
        sent_headers["Content-Type"] = "application/json"
    if token:
        sent_headers["Authorization"] = f"Bearer {token}"
    counts = tally(suite) if suite else None
    if counts:
        with counts.lock:
            counts.sent += 1
    started = time.monotonic()
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request(method, path, body=payload, headers=sent_headers)
        response = conn.getresponse()
        data = response.read()
    except (OSError, http.client.HTTPException):
        if counts:
            with counts.lock:
                counts.no_answer += 1
        raise
    finally:
        conn.close()
    answer = Answer(response.status, dict(response.getheaders()), data, started, time.monotonic() - started)
    if counts:
        with counts.lock:
            counts.answered += 1
            if answer.status >= 500:
                counts.server_errors += 1
                if outage and answer.status == 503:
                    counts.expected_503 += 1
    return answer


class Client:
    """Requests to one server, counted in one suite's tally."""

    def __init__(self, server: Gunicorn, suite: str):
        self.server = server
        self.suite = suite
        self.outage = False  # set while a dependency is deliberately down

    def __call__(self, method: str, path: str, **kwargs) -> Answer:
        return request(self.server.base, method, path, suite=self.suite, outage=self.outage, **kwargs)

    def register(self, email: str, password: str = PASSWORD, **fields) -> Answer:
        return self("POST", "/api/v1/users", body={"email": email, "password": password, **fields})

    def login(self, email: str, password: str = PASSWORD) -> dict:
        answer = self("POST", "/api/v1/auth/token", body={"email": email, "password": password})
        assert answer.status == 200, (answer.status, answer.body[:300])
        return answer.json()


@dataclass
class Outcome:
    """One request of a load: its kind, when it started and how long it took, its answer or its error."""

    kind: str
    started: float
    elapsed: float
    status: int | None
    code: str | None
    body: bytes
    error: str | None = None

    def json(self):
        return json.loads(self.body)


class Load:
    """Threads sending requests until stopped, bounded in requests and seconds; every outcome is kept.

    A scenario stops its load when it is done: ``max_requests`` is a bound, set well above what the scenario
    sends, so a faster service never runs out of requests before the part of the scenario it must see.

    ``make(thread_index, n)`` returns ``(kind, method, path, kwargs)`` for the n-th request of a thread.
    """

    def __init__(self, client: Client, make: Callable, *, threads: int = 4, max_requests: int = 5000, seconds=60):
        self.client = client
        self.make = make
        self.threads = [threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(threads)]
        self.max_requests = max_requests
        self.deadline = time.monotonic() + seconds
        self.stopped = threading.Event()
        self.outcomes: list[Outcome] = []
        self._lock = threading.Lock()
        self._count = 0

    def _run(self, index: int) -> None:
        n = 0
        while not self.stopped.is_set() and time.monotonic() < self.deadline:
            with self._lock:
                if self._count >= self.max_requests:
                    return
                self._count += 1
            kind, method, path, kwargs = self.make(index, n)
            n += 1
            started = time.monotonic()
            try:
                answer = self.client(method, path, **kwargs)
                outcome = Outcome(kind, started, answer.elapsed, answer.status, answer.code, answer.body)
            except (OSError, http.client.HTTPException) as exc:
                outcome = Outcome(kind, started, time.monotonic() - started, None, None, b"", type(exc).__name__)
            with self._lock:
                self.outcomes.append(outcome)

    def __enter__(self) -> "Load":
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stopped.set()
        for thread in self.threads:
            thread.join(timeout=30)


# --------------------------------------------------------------------------------------------- outages


def _loopback(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    host = parts.hostname or "127.0.0.1"
    if host not in ("127.0.0.1", "localhost", "::1"):
        raise AssertionError(f"fault tests stop local services only, not {host}")
    return host, parts.port


def postgres_up(url: str) -> bool:
    try:
        sql(with_database(url, "postgres"), "SELECT 1")
    except psycopg.OperationalError:
        return False
    return True


def _postgres_cluster(url: str) -> tuple[str, str]:
    """Return (version, cluster name) of the local cluster listening on the URL's port."""
    _host, port = _loopback(url)
    listing = subprocess.run(["pg_lsclusters", "--no-header"], capture_output=True, text=True, check=True).stdout
    for line in listing.splitlines():
        version, cluster, cluster_port = line.split()[:3]
        if int(cluster_port) == (port or 5432):
            return version, cluster
    raise AssertionError(f"no local PostgreSQL cluster on port {port}")


def _pg_ctl(url: str, action: str) -> subprocess.CompletedProcess:
    version, cluster = _postgres_cluster(url)
    return subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", version, cluster, action],
        capture_output=True,
        text=True,
        timeout=60,
    )


@contextmanager
def postgres_stopped(url: str) -> Iterator[None]:
    """Stop the local PostgreSQL cluster (fast shutdown: sessions are cut), and always start it again."""
    assert postgres_up(url), "PostgreSQL must be up before a fault test stops it"
    try:
        result = _pg_ctl(url, "stop")
        assert result.returncode == 0 or not postgres_up(url), result.stderr
        yield
    finally:
        deadline = time.monotonic() + 60
        while not postgres_up(url):
            _pg_ctl(url, "start")  # fails harmlessly when someone else started it meanwhile
            if time.monotonic() > deadline:
                raise AssertionError("PostgreSQL did not come back after the fault test")
            time.sleep(0.5)


def redis_up(url: str) -> bool:
    client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


@contextmanager
def redis_stopped(url: str) -> Iterator[None]:
    """Shut the local Redis down (nothing saved), and always start it again with the configuration it had."""
    host, port = _loopback(url)
    client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=2)
    config = {name: client.config_get(name)[name] for name in ("bind", "dir", "logfile")}
    client.close()
    bind = config["bind"].split() or [host]
    try:
        subprocess.run(
            ["redis-cli", "-h", host, "-p", str(port), "shutdown", "nosave"], capture_output=True, timeout=10
        )
        deadline = time.monotonic() + 10
        while redis_up(url):
            assert time.monotonic() < deadline, "Redis did not stop"
            time.sleep(0.05)
        yield
    finally:
        deadline = time.monotonic() + 30
        while not redis_up(url):
            argv = ["redis-server", "--daemonize", "yes", "--bind", *bind, "--port", str(port)]
            argv += ["--save", "", "--appendonly", "no"]
            if config["dir"]:
                argv += ["--dir", config["dir"]]
            if config["logfile"]:
                argv += ["--logfile", config["logfile"]]
            subprocess.run(argv, capture_output=True, timeout=10)  # fails harmlessly if someone else started it
            time.sleep(0.2)
            if time.monotonic() > deadline:
                raise AssertionError("Redis did not come back after the fault test")


def unique(label: str) -> str:
    return f"e2e-{label}-{os.getpid()}-{random.randrange(10**9)}@example.com"


def create_staff(env: dict, email: str, password: str = PASSWORD) -> None:
    """Create a superuser the way ops do (``createsuperuser --noinput``)."""
    manage(env, "createsuperuser", "--noinput", "--email", email, extra_env={"DJANGO_SUPERUSER_PASSWORD": password})


def redis_get(url: str, key: str) -> bytes | None:
    client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
    try:
        return client.get(key)
    finally:
        client.close()


def redis_get_newest_version(url: str, pattern: str) -> bytes | None:
    """Return the value of the key matching ``pattern`` ("prefix:*:key") with the highest version part."""
    client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
    try:
        keys = list(client.scan_iter(match=pattern, count=1000))
        if not keys:
            return None
        newest = max(keys, key=lambda key: int(key.split(b":")[1]) if key.split(b":")[1].isdigit() else -1)
        return client.get(newest)
    finally:
        client.close()


def redis_delete_prefix(url: str, prefix: str) -> None:
    """Delete this run's keys (never FLUSHALL: other runs share the server)."""
    client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=5)
    try:
        batch = []
        for key in client.scan_iter(match=f"{prefix}:*", count=1000):
            batch.append(key)
            if len(batch) >= 500:
                client.delete(*batch)
                batch.clear()
        if batch:
            client.delete(*batch)
    finally:
        client.close()


class TcpProxy:
    """A loopback TCP relay to a service, which a test can cut and restore: a network partition for one client.

    Cut, it closes its listener and every relayed connection (new ones are refused) while the service itself
    keeps running with all its data, as when a network path fails rather than the server.
    """

    def __init__(self, target_host: str, target_port: int):
        self.target = (target_host, target_port)
        self.port = free_port()
        self._listener: socket.socket | None = None
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()

    def start(self) -> "TcpProxy":
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()
        return self

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                downstream, _addr = listener.accept()
            except OSError:
                return  # cut
            try:
                upstream = socket.create_connection(self.target, timeout=2)
            except OSError:
                downstream.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                self._sockets.update((downstream, upstream))
            for source, sink in ((downstream, upstream), (upstream, downstream)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                self._close(sock)

    def _close(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.discard(sock)
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        sock.close()

    def cut(self) -> None:
        if self._listener is not None:
            try:
                self._listener.shutdown(socket.SHUT_RDWR)  # wakes the accept() blocked in its thread
            except OSError:
                pass
            self._listener.close()
            self._listener = None
        with self._lock:
            sockets = list(self._sockets)
        for sock in sockets:
            self._close(sock)

    def restore(self) -> None:
        self.start()

    def stop(self) -> None:
        self.cut()
