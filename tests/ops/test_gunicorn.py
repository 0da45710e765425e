"""The service under a real gunicorn on a free loopback port: logs, metrics across workers, signals, settings.

Each test starts its own server (a master and its workers in a session of their own) and ends it on exit.
Loads are bounded in clients, requests and time.
"""

import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from core.allocator import huge_pages_mode, huge_pages_offered
from tests.conftest import USES_REDIS
from tests.ops.server import ROOT, Load, Server, base_env, create_user, throwaway_database

pytestmark = pytest.mark.slow

PASSWORD = "gunicorn-test-passphrase-42"
GRACEFUL_TIMEOUT = 10


@pytest.fixture(scope="module")
def database_url(tmp_path_factory):
    with throwaway_database(tmp_path_factory.mktemp("ops-db")) as url:
        yield url


@pytest.fixture(scope="module")
def account(database_url) -> tuple[str, str]:
    """One user in the servers' database: (email, id)."""
    email = "ops-gunicorn@example.com"
    return email, create_user(database_url, email, PASSWORD)


@pytest.fixture
def start_server(database_url, tmp_path):
    """Return start(**env) -> a running Server; every server started is stopped when the test ends."""
    started: list[Server] = []

    def start(use_config: bool = True, **env) -> Server:
        server = Server(env={**base_env(database_url), **env}, log_dir=tmp_path, use_config=use_config)
        started.append(server)
        return server.start()

    yield start
    for server in started:
        server.stop()


def login(server: Server, email: str, **headers) -> str:
    """Log in through the API; return the access token."""
    response = server.request("POST", "/api/v1/auth/token", {"email": email, "password": PASSWORD}, headers=headers)
    assert response.status == 200, response.data
    return orjson.loads(response.data)["access"]


def metric_value(text: str, name: str, **labels) -> float:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return sample.value
    return 0.0


def summary(load: Load) -> str:
    kinds = ("answered", "refused", "reset", "failed")
    return f"sent={len(load.outcomes)} " + " ".join(f"{kind}={load.count(kind)}" for kind in kinds)


# ---------------------------------------------------------------- logs


def test_every_request_writes_one_json_access_line_and_nothing_else_on_stdout(start_server, account):
    server = start_server(WEB_CONCURRENCY="2")
    email, user_id = account
    access = login(server, email)
    auth = {"Authorization": f"Bearer {access}"}

    server.request("GET", f"/api/v1/users/{user_id}?q=never-logged", headers={**auth, "X-Request-ID": "acc-user"})
    server.request("GET", "/no/such/page", headers={"X-Request-ID": "acc-404"})
    server.request("GET", "/healthz", headers={"X-Request-ID": "acc-health"})
    server.stop()

    lines = {line["request_id"]: line for line in server.access_lines()}
    assert all(line.startswith("{") for line in server.stdout_lines())  # gunicorn's own access log is off
    user_line = lines["acc-user"]
    assert user_line["route"] == "/api/v1/users/{id}"
    assert user_line["path"] == f"/api/v1/users/{user_id}"
    assert (user_line["method"], user_line["status"], user_line["user_id"]) == ("GET", 200, user_id)
    assert user_line["ip"] == "127.0.0.1" and user_line["bytes"] > 0 and user_line["duration_ms"] > 0
    assert (lines["acc-404"]["route"], lines["acc-404"]["status"]) == ("unmatched", 404)
    assert (lines["acc-health"]["route"], lines["acc-health"]["status"]) == ("/healthz", 200)
    assert access not in server.stdout_path.read_text() + server.stderr_path.read_text()
    # gunicorn's own lines are JSON too in production format.
    err_lines = [line for line in server.stderr_path.read_text().splitlines() if line.strip()]
    assert err_lines and all(line.startswith("{") for line in err_lines), err_lines[:3]


# ---------------------------------------------------------------- metrics


def test_metrics_count_for_the_whole_server_whichever_worker_answers(start_server, account):
    server = start_server(WEB_CONCURRENCY="2")
    email, _user_id = account

    # Two logins at once: a sync worker hashing a password cannot accept, so each worker takes one, once both
    # have loaded the app. A worker still loading leaves both to the other: then another pair, a few times.
    logins, served_by = 0, set()
    while len(served_by) < 2 and logins < 10:
        ids = [f"m-{logins + n}" for n in (1, 2)]
        threads = [threading.Thread(target=login, args=(server, email), kwargs={"X-Request-ID": i}) for i in ids]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        logins += 2
        served_by = {line["pid"] for line in server.access_lines() if line["request_id"].startswith("m-")}
    for _ in range(3):
        assert server.request("POST", "/api/v1/auth/token", {"email": email, "password": "wrong"}).status == 401
    for _ in range(20):
        assert server.request("GET", "/healthz").status == 200

    # Ask several times: each scrape may be answered by either worker, and each must give the totals.
    scrapes = [server.metrics() for _ in range(6)]
    assert len(served_by) == 2, "both workers must have answered"
    labels = {"route": "/api/v1/auth/token", "method": "POST"}
    for text in scrapes:
        assert metric_value(text, "http_requests_total", status="200", **labels) == logins
        assert metric_value(text, "http_request_duration_seconds_count", status="200", **labels) == logins
        assert metric_value(text, "http_requests_total", status="401", **labels) == 3
        assert metric_value(text, "auth_login_failures_total", endpoint="api") == 3
        assert metric_value(text, "http_requests_total", route="/healthz", method="GET", status="200") >= 20
        assert metric_value(text, "dependency_up", dependency="database") == 1


@pytest.mark.redis
@pytest.mark.skipif(not USES_REDIS, reason="needs REDIS_URL: the limit is shared through Redis")
def test_a_rate_limit_holds_across_workers(start_server):
    # Per hour: a minute's window could roll over while the test runs and let more through.
    server = start_server(WEB_CONCURRENCY="2", RATELIMIT_ANON="6/h")
    statuses: list[int] = []

    def anonymous(n: int) -> None:
        # Slow enough (a password hash) that the two workers share the requests.
        body = {"email": f"nobody{n}@example.com", "password": PASSWORD}
        statuses.append(server.request("POST", "/api/v1/auth/token", body, headers={"X-Request-ID": f"rl-{n}"}).status)

    threads = [threading.Thread(target=anonymous, args=(n,)) for n in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    # The healthz probe of start() is not counted; 6 of the 10 are let through across both workers.
    assert sorted(statuses) == [401] * 6 + [429] * 4, statuses
    assert len({line["pid"] for line in server.access_lines() if line["request_id"].startswith("rl-")}) == 2


# ---------------------------------------------------------------- signals


def test_sigterm_under_load_answers_every_accepted_request_and_exits_within_graceful_timeout(start_server, account):
    server = start_server(WEB_CONCURRENCY="2", GUNICORN_GRACEFUL_TIMEOUT=str(GRACEFUL_TIMEOUT))
    email, _user_id = account
    access = login(server, email)
    body = {"email": email, "password": PASSWORD}

    def request(client: int, n: int):
        # One client logs in (a password hash keeps its request in flight a while), five read /users/me.
        if client == 0:
            return ("POST", "/api/v1/auth/token", body, None)
        return ("GET", "/api/v1/users/me", None, {"Authorization": f"Bearer {access}"})

    # Bounds, not targets: the load is stopped below, long before a client could send its share.
    with Load(server, request, clients=6, max_requests=30000) as load:
        time.sleep(2.0)
        sigterm_at = time.monotonic()
        os.kill(server.proc.pid, signal.SIGTERM)
        returncode = server.proc.wait(timeout=GRACEFUL_TIMEOUT + 5)
        exited_after = time.monotonic() - sigterm_at
        time.sleep(0.5)  # each client tries once more, against no listener
        load.stop()

    print(f"SIGTERM under load: {summary(load)}, exit after {exited_after:.2f}s")
    assert returncode == 0
    assert exited_after < GRACEFUL_TIMEOUT
    assert load.count("failed") == 0, [o.error for o in load.outcomes if o.kind == "failed"]
    assert load.count("answered") >= 10
    assert all(o.status == 200 for o in load.outcomes if o.kind == "answered")
    assert load.answered_after(sigterm_at) >= 1, "requests in flight at SIGTERM must be answered"
    assert load.count("refused") >= 1, "after shutdown new connections are refused"


def test_sighup_reloads_workers_under_load_with_no_failed_request(start_server, account):
    server = start_server(WEB_CONCURRENCY="2")
    access = login(server, account[0])
    headers = {"Authorization": f"Bearer {access}"}
    old_workers = server.worker_pids()

    def request(client: int, n: int):
        return ("GET", "/api/v1/users/me", None, {**headers, "X-Request-ID": f"hup-{client}-{n}"})

    # A bound, not a target: the load must still run when the new workers start (stopped below).
    with Load(server, request, clients=4, max_requests=20000) as load:
        time.sleep(1.0)
        hup_at = time.monotonic()
        os.kill(server.proc.pid, signal.SIGHUP)
        deadline = hup_at + 15
        while time.monotonic() < deadline:
            current = server.worker_pids()
            if len(current) == 2 and not current & old_workers:
                break
            time.sleep(0.1)
        time.sleep(1.0)
        load.stop()

    new_workers = server.worker_pids()
    print(f"SIGHUP under load: {summary(load)}")
    assert len(new_workers) == 2 and not new_workers & old_workers
    assert load.count("answered") == len(load.outcomes) >= 20, summary(load)
    assert all(o.status == 200 for o in load.outcomes)
    served_by = {line["pid"] for line in server.access_lines() if line["request_id"].startswith("hup-")}
    assert new_workers <= served_by, "the new workers serve after the reload"


def test_worker_killed_with_sigkill_is_replaced_and_the_service_keeps_answering(start_server, account):
    server = start_server(WEB_CONCURRENCY="2")
    access = login(server, account[0])
    headers = {"Authorization": f"Bearer {access}"}
    workers = server.worker_pids()
    victim = sorted(workers)[0]

    os.kill(victim, signal.SIGKILL)
    statuses = []
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        statuses.append(server.request("GET", "/api/v1/users/me", headers=headers).status)
        current = server.worker_pids()
        if len(current) == 2 and victim not in current:
            break
        time.sleep(0.05)
    replaced = server.worker_pids()
    after = [server.request("GET", "/api/v1/users/me", headers=headers).status for _ in range(20)]

    assert victim not in replaced and len(replaced) == 2 and replaced - workers
    assert set(statuses) == {200}
    assert after == [200] * 20


def test_a_client_that_reads_its_answer_and_never_closes_holds_a_sync_worker_for_at_most_two_seconds(start_server):
    # gunicorn >= 27 lingers after each answer until the client closes its side (RFC 9112 section 9.6), for
    # at most 2 s. Behind a balancer that closes at once this costs nothing; a client that keeps the socket
    # open holds a sync worker that long (README, "Deploying"). The bound is what keeps it from a worker lost.
    server = start_server(WEB_CONCURRENCY="1")
    assert server.request("GET", "/healthz").status == 200  # a client that closes: nothing held

    quick_started = time.monotonic()
    assert server.request("GET", "/healthz").status == 200
    quick = time.monotonic() - quick_started

    lingering = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    try:
        lingering.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        answer = b""
        while b"\r\n\r\n" not in answer:  # the whole head read; the socket is then left open
            answer += lingering.recv(4096)
        held_started = time.monotonic()
        after = server.request("GET", "/healthz")
        held = time.monotonic() - held_started
    finally:
        lingering.close()

    assert answer.startswith(b"HTTP/1.1 200")
    assert quick < 0.5
    assert after.status == 200
    assert 1.0 < held < 5.0, held  # waited for the linger to end, then served by the one worker


def worker_minor_faults(server: Server) -> int:
    """Minor page faults of the server's workers so far (/proc/<pid>/stat, field 10)."""
    stats = (Path(f"/proc/{pid}/stat").read_text() for pid in server.worker_pids())
    return sum(int(stat.rpartition(")")[2].split()[7]) for stat in stats)


@pytest.mark.parametrize(
    ("keep", "threads", "use_config"),
    [("true", "1", True), ("true", "4", True), ("false", "1", True), ("true", "", False)],
)
def test_workers_keep_the_password_hash_memory_between_logins(
    start_server, account, tmp_path, keep, threads, use_config
):
    # The hasher keeps the block it lends Argon2 (core/allocator.py): its 100 MiB (25,600 pages) is faulted in
    # by the first login only, in sync and gthread workers alike, with or without the config file. Switched
    # off, by every login again.
    settings = {"WEB_CONCURRENCY": "1", "GUNICORN_THREADS": threads} if use_config else {"HOME": str(tmp_path)}
    server = start_server(use_config=use_config, ARGON2_KEEP_MEMORY=keep, **settings)
    login(server, account[0])
    faults = []
    for _ in range(5):
        before = worker_minor_faults(server)
        login(server, account[0])
        faults.append(worker_minor_faults(server) - before)

    pages = 100 * 1024 * 1024 // os.sysconf("SC_PAGE_SIZE")
    if keep == "true":
        assert max(faults) < 2_000, faults
    else:
        assert min(faults) > 0.9 * pages, faults


def worker_huge_kib(server: Server) -> int:
    """Anonymous memory of the server's workers on transparent huge pages (/proc/<pid>/smaps_rollup), in KiB."""
    rollups = (Path(f"/proc/{pid}/smaps_rollup").read_text() for pid in server.worker_pids())
    return sum(int(re.search(r"^AnonHugePages:\s+(\d+) kB", rollup, re.M).group(1)) for rollup in rollups)


# In ``madvise`` mode only memory that asks gets huge pages; in ``always`` mode, any may.
ONLY_ON_REQUEST = huge_pages_mode() == "madvise"


@pytest.mark.skipif(not huge_pages_offered(), reason="this kernel gives no transparent huge pages on request")
@pytest.mark.parametrize(
    ("huge", "least_kib", "most_kib"), [("true", 96 * 1024, None), ("false", 0, 0 if ONLY_ON_REQUEST else None)]
)
def test_workers_hash_on_huge_pages_where_the_kernel_offers_them(start_server, account, huge, least_kib, most_kib):
    # Argon2's kept 100 MiB is mapped for 2 MiB pages before the first login's hash (core/allocator.py).
    server = start_server(WEB_CONCURRENCY="1", ARGON2_HUGE_PAGES=huge)
    login(server, account[0])
    login(server, account[0])

    huge_kib = worker_huge_kib(server)
    assert huge_kib >= least_kib, huge_kib
    if most_kib is not None:
        assert huge_kib <= most_kib, huge_kib


@pytest.mark.parametrize(("at_once", "most_mib"), [("1", 260), ("4", None)])
def test_threaded_workers_check_passwords_at_once_within_their_hash_memory(start_server, account, at_once, most_mib):
    # gthread: four logins at once in one process. By default they hash one at a time in the one kept block
    # (users/hashers.py, ARGON2_MAX_CONCURRENT), so the worker never holds more than one hash's memory (about
    # 85 + 100 MiB); allowed four at once, each maps a block of its own. Every login must succeed either way.
    server = start_server(WEB_CONCURRENCY="1", GUNICORN_THREADS="4", ARGON2_MAX_CONCURRENT=at_once)
    statuses = []

    def run() -> None:
        for _ in range(3):
            response = server.request("POST", "/api/v1/auth/token", {"email": account[0], "password": PASSWORD})
            statuses.append(response.status)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    peak_mib = max(worker_peak_rss_kib(pid) for pid in server.worker_pids()) / 1024

    assert statuses == [200] * 12, statuses
    if most_mib is not None:
        assert peak_mib < most_mib, peak_mib
    else:
        assert peak_mib > 300, peak_mib  # more than one block at a time: what the default bounds


def worker_peak_rss_kib(pid: int) -> int:
    """The most resident memory the process has held (VmHWM in /proc/<pid>/status), in KiB."""
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"^VmHWM:\s+(\d+) kB", status, re.M).group(1))


# ---------------------------------------------------------------- without the config file; production settings


def test_gunicorn_without_the_config_file_serves_the_api(start_server, account, tmp_path):
    # No -c: gunicorn's defaults (one sync worker); HOME points at a fresh directory for its control socket.
    server = start_server(use_config=False, HOME=str(tmp_path))
    email, user_id = account
    access = login(server, email)

    me = server.request("GET", "/api/v1/users/me", headers={"Authorization": f"Bearer {access}"})
    metrics = server.metrics()
    server.stop()

    assert me.status == 200 and user_id.encode() in me.data
    assert metric_value(metrics, "http_requests_total", route="/api/v1/users/me", method="GET", status="200") == 1
    assert any(line["route"] == "/api/v1/users/me" for line in server.access_lines())


def test_gunicorn_without_the_config_file_answers_its_parsers_refusals_in_the_envelope(start_server, tmp_path):
    server = start_server(use_config=False, HOME=str(tmp_path))
    refusals = {
        # 501, as RFC 9112 6.1 asks for a transfer coding the server does not know (not a server failure).
        b"POST /api/v1/auth/token HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: br": (501, "not_implemented"),
        b"GET /api/v1/users/me HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Odd: a\x00b": (400, "bad_request"),
    }
    for head, (status, code) in refusals.items():
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
            sock.sendall(head + b"\r\n\r\n")
            answer = b""
            while chunk := sock.recv(65536):
                answer += chunk
        head_bytes, _, payload = answer.partition(b"\r\n\r\n")
        lines = head_bytes.decode("latin-1").split("\r\n")
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
        body = orjson.loads(payload)

        assert int(lines[0].split()[1]) == status, answer[:300]
        assert headers["content-type"] == "application/json"
        assert body == {"success": False, "error": body["error"], "code": code, "request_id": headers["x-request-id"]}


def test_production_redirects_to_https_but_not_health_checks_and_sends_hsts_over_https(start_server):
    server = start_server(
        WEB_CONCURRENCY="1",
        DJANGO_ENV="production",
        DJANGO_SECRET_KEY=secrets.token_urlsafe(48),
        JWT_SIGNING_KEY=secrets.token_urlsafe(48),
        DJANGO_ALLOWED_HOSTS="api.example.com",
    )
    host = {"Host": "api.example.com"}

    plain = server.request("GET", "/api/v1/users/me", headers=host)
    behind_tls = server.request("GET", "/api/v1/users/me", headers={**host, "X-Forwarded-Proto": "https"})
    health = server.request("GET", "/healthz", headers={"Host": "10.0.0.7"})
    ready = server.request("GET", "/readyz", headers={"Host": "10.0.0.7"})
    metrics = server.request("GET", "/metrics", headers={"Host": "10.0.0.7"})

    assert plain.status == 301 and plain.getheader("Location") == "https://api.example.com/api/v1/users/me"
    assert behind_tls.status == 401  # served: the balancer's X-Forwarded-Proto is trusted
    assert re.fullmatch(r"max-age=\d+; includeSubDomains; preload", behind_tls.getheader("Strict-Transport-Security"))
    assert (health.status, ready.status, metrics.status) == (200, 200, 200)
    assert health.getheader("Strict-Transport-Security") is None
    assert all(line.startswith("{") for line in server.stdout_lines() if line.strip())


def test_threaded_workers_answer_each_caller_with_its_own_user_under_load(start_server, database_url):
    # gthread workers: each thread sends its requests' auth-state round trips ahead on its own connection
    # (users.hot_path). Interleaved callers of different users, and requests whose batch no view reads (an
    # unknown path under /api/v1/users), must never get another caller's replies: every body is checked.
    server = start_server(WEB_CONCURRENCY="2", GUNICORN_THREADS="4")
    callers = []
    for n in range(3):
        email = f"ops-threads-{n}-{secrets.token_hex(4)}@example.com"
        user_id = create_user(database_url, email, PASSWORD)
        callers.append((user_id, {"Authorization": f"Bearer {login(server, email)}"}))
    wrong, statuses = [], []

    def run(index: int) -> None:
        user_id, headers = callers[index % len(callers)]
        for n in range(120):
            path = ("/api/v1/users/me", f"/api/v1/users/{user_id}", "/api/v1/users/me/no-such-route")[n % 3]
            response = server.request("GET", path, headers=headers)
            statuses.append(response.status)
            if response.status == 200 and orjson.loads(response.data)["id"] != user_id:
                wrong.append((index, path, response.data[:80]))

    threads = [threading.Thread(target=run, args=(index,)) for index in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not wrong, wrong[:5]
    assert statuses.count(200) == 6 * 80 and statuses.count(404) == 6 * 40, sorted(set(statuses))


# ---------------------------------------------------------------- bounded database sessions (core/db.py)


def on_postgres(database_url: str) -> bool:
    return database_url.startswith(("postgres://", "postgresql://"))


@pytest.mark.parametrize("use_config", [True, False])  # config/wsgi.py sets the bounds, with or without the config
def test_a_row_locked_elsewhere_answers_503_within_the_lock_timeout(start_server, account, database_url, use_config):
    if not on_postgres(database_url):
        pytest.skip("needs DATABASE_URL: PostgreSQL's lock_timeout")
    import psycopg

    server = start_server(use_config=use_config, DATABASE_LOCK_TIMEOUT="1")
    headers = {"Authorization": f"Bearer {login(server, account[0])}"}
    with psycopg.connect(database_url) as holder:  # a transaction elsewhere holds the user's row until it ends
        holder.execute("SELECT 1 FROM users_user WHERE email = %s FOR UPDATE", [account[0]])
        started = time.monotonic()
        blocked = server.request("PATCH", "/api/v1/users/me", {"first_name": "Locked"}, headers=headers)
        waited = time.monotonic() - started

    assert blocked.status == 503, blocked.data
    assert orjson.loads(blocked.data)["code"] == "service_unavailable"
    assert waited < 5, waited  # about the 1 s lock timeout, not gunicorn's 30 s worker timeout
    released = server.request("PATCH", "/api/v1/users/me", {"first_name": "Free"}, headers=headers)
    assert released.status == 200, released.data


def test_management_commands_run_without_the_web_bounds(database_url):
    if not on_postgres(database_url):
        pytest.skip("needs DATABASE_URL: PostgreSQL's session settings")
    code = (
        "from django.db import connection; cursor = connection.cursor(); "
        "cursor.execute('SHOW statement_timeout'); print(cursor.fetchone()[0]); "
        "cursor.execute('SHOW lock_timeout'); print(cursor.fetchone()[0])"
    )
    env = {**base_env(database_url), "DATABASE_LOCK_TIMEOUT": "1", "DATABASE_STATEMENT_TIMEOUT": "1"}
    env.pop("REDIS_URL", None)
    command = [sys.executable, "manage.py", "shell", "-c", code]
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split()[-2:] == ["0", "0"]  # a migration on a big table must not be cut off
