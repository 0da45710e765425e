"""Benchmark the service against two floors in one run, interleaved in rounds, under one gunicorn setup.

    make bench                                  # quick: staff list at 1,000 and 100,000 users, 4 s runs (~5 min)
    BENCH_FULL=1 make bench                     # the issue's run: 1,000 and 1,000,000 users, 5 s runs
    .venv/bin/python bench/run.py --users 300000 --rounds 5 --duration 5

Three servers run side by side, each ``gunicorn -c config/gunicorn.py`` with 2 sync workers and no
worker recycling: F0, a raw WSGI callable (bench/floor_wsgi.py); F1, a bare Django view
(bench/floor_django.py); and the service on PostgreSQL (a database of its own, ``users_bench``,
dropped and rebuilt each run) and Redis (a database of its own, db 1 by default, flushed), in
production settings with every middleware on and the per-user and login rate limits raised, not
disabled. wrk drives each (-t1 -c16). Each round runs every scenario once, so drift of the machine
hits all alike; the table shows medians over the rounds, and ratios to the floors' medians.

A fourth server, marked diagnostic in the table, is the same service with its one per-request Redis
round trip answered from memory (bench/gunicorn_no_round_trip.py): the gap between it and the real
warm read is what that round trip costs on the machine. It is not a way to serve.

Cold cache: the user's state and body cannot be evicted per request from outside, so a cold round
flushes the bench's Redis database first and rotates over thousands of sessions of distinct users
never seen before (a fresh set each round, more than the per-process token cache holds); each
user's first request reads PostgreSQL. The table shows how many requests a round made per distinct
user: at most 1, every request was a user's first (all cold); above 1, a mix of cold and warm.
"""

import argparse
import base64
import functools
import json
import os
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import environ
import psycopg
import redis

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from core.allocator import huge_pages_offered  # noqa: E402  (reads the kernel's setting; no Django needed)

BIN = Path(sys.executable).parent
OUT = ROOT / "bench" / "out"
PASSWORD = "bench-password-not-secret-1"
STAFF_EMAIL = "bench-staff@example.com"
SEARCH = "ann"  # the contract's own example: matches Ann, Anna, Joanna, Hannah, Hannan, Shannon...
WORKERS = 2
RSS_TARGET_REQUESTS = 100_000
ARGON2_MEMORY_KIB = 102_400  # Django's Argon2PasswordHasher.memory_cost (tests/bench/test_run_report.py checks it)
TARGETS = {
    "read": "cached read >= 0.5 x F1 req/s, p99 < 4 x p50",
    "list": "staff list p50 at the large size <= 2 x p50 at 1,000 users",
    "login": "login >= 0.9 x the hash-alone rate",
    "rss": "worker RSS grows < 5% over 100,000 requests",
}


@dataclass
class Server:
    name: str
    app: str
    port: int
    env: dict
    config: str = "config/gunicorn.py"
    process: subprocess.Popen | None = None
    cwd: Path = ROOT  # the tree served (bench/compare.py serves exported commits)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@dataclass
class Scenario:
    key: str
    label: str
    server: str
    script: Path
    group: str = "service"
    before: object = None  # called before each round of this scenario (cache flush)
    distinct: int = 0  # distinct users per round (cold scenarios)
    duration: int = 0  # seconds per run, when not the common one (login: a few requests a second)
    results: list = field(default_factory=list)


def log(message: str) -> None:
    print(f"[bench {datetime.now(UTC):%H:%M:%S}] {message}", file=sys.stderr, flush=True)


def env_int(name: str, default: int) -> int:
    return int(os.environ.get(name) or default)


def parse_args() -> argparse.Namespace:
    full = os.environ.get("BENCH_FULL", "") not in ("", "0", "false")
    parser = argparse.ArgumentParser(description="Benchmark the service against two floors (see bench/RESULTS.md).")
    parser.add_argument("--users", type=int, default=env_int("BENCH_USERS", 1_000_000 if full else 100_000))
    parser.add_argument("--small", type=int, default=env_int("BENCH_SMALL", 1_000))
    parser.add_argument("--rounds", type=int, default=env_int("BENCH_ROUNDS", 3))
    parser.add_argument(
        "--duration", type=int, default=env_int("BENCH_DURATION", 5 if full else 4), help="seconds per wrk run"
    )
    parser.add_argument("--connections", type=int, default=env_int("BENCH_CONNECTIONS", 16))
    parser.add_argument("--cold-users", type=int, default=env_int("BENCH_COLD_USERS", 6000))
    parser.add_argument("--rss-requests", type=int, default=env_int("BENCH_RSS_REQUESTS", 100_000))
    parser.add_argument("--port", type=int, default=env_int("BENCH_PORT", 18700), help="first of four ports")
    parser.add_argument(
        "--database-url",
        default=os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/users_bench"),
    )
    parser.add_argument("--redis-url", default=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/1"))
    args = parser.parse_args()
    args.full = full
    if args.users <= args.small:
        parser.error("--users must be larger than --small")
    return args


# ----------------------------------------------------------------------------------------- set-up


def ensure_wrk() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() != 0:
        raise SystemExit("wrk is missing: install Debian's package (apt-get install wrk)")
    log("installing wrk from Debian's packages")
    subprocess.run(["apt-get", "update", "-qq"], check=True)
    subprocess.run(
        ["apt-get", "install", "-y", "-qq", "wrk"], check=True, env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    )
    return shutil.which("wrk") or sys.exit("wrk did not install")


def wait_for_services(database_url: str, redis_url: str, timeout: float = 120.0) -> None:
    """Wait for PostgreSQL and Redis to answer (someone may be restarting them); stop if they never do."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with psycopg.connect(maintenance_url(database_url), connect_timeout=3) as conn:
                conn.execute("SELECT 1")
            redis.Redis.from_url(redis_url, socket_timeout=3).ping()
            return
        except (psycopg.Error, redis.RedisError) as exc:
            if time.monotonic() > deadline:
                raise SystemExit(f"PostgreSQL or Redis does not answer: {exc}") from None
            time.sleep(1)


def recreate_database(url: str) -> None:
    name = urlsplit(url).path.lstrip("/")
    if not name.replace("_", "").isalnum() or name in ("postgres", "test", "template0", "template1"):
        raise SystemExit(f"refusing to recreate database {name!r}: give the bench a database of its own")
    with psycopg.connect(maintenance_url(url), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def maintenance_url(url: str) -> str:
    parts = urlsplit(url)
    return parts._replace(path="/postgres").geturl()


def flush_redis(url: str) -> None:
    client = redis.Redis.from_url(url)
    if client.connection_pool.connection_kwargs.get("db", 0) == 0:
        raise SystemExit("refusing to flush Redis db 0: give the bench a database of its own (e.g. /1)")
    client.flushdb()
    client.close()


def service_env(args) -> dict:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DJANGO_ENV": "production",
        "DJANGO_DEBUG": "false",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(48),
        "JWT_SIGNING_KEY": secrets.token_urlsafe(48),
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
        "DATABASE_URL": args.database_url,
        "REDIS_URL": args.redis_url,
        "CACHE_KEY_PREFIX": "bench",
        "LOG_FORMAT": "json",
        "LOG_LEVEL": "INFO",
        "EMAIL_URL": "locmem:",
        # Tokens minted at the start must outlive a full run.
        "JWT_ACCESS_TTL": "14400",
        # Raised, not switched off: every check still runs and is counted.
        "RATELIMIT_USER": "1000000/m",
        "RATELIMIT_ANON": "1000000/m",
        "RATELIMIT_LOGIN_IP": "1000000/m",
        "RATELIMIT_LOGIN_EMAIL": "1000000/m",
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    env.pop("RATELIMIT_ENABLE", None)
    return env


def gunicorn_env(base: dict, port: int, prom_dir: Path) -> dict:
    prom_dir.mkdir()
    return {
        **base,
        "PROMETHEUS_MULTIPROC_DIR": str(prom_dir),
        "WEB_CONCURRENCY": str(WORKERS),
        "GUNICORN_THREADS": "1",
        # No recycling: worker memory is measured over the whole run.
        "GUNICORN_MAX_REQUESTS": "0",
        "GUNICORN_MAX_REQUESTS_JITTER": "0",
        "GUNICORN_BIND": f"127.0.0.1:{port}",
    }


def manage(env: dict, *argv: str) -> str:
    result = subprocess.run(
        [sys.executable, "manage.py", *argv], cwd=ROOT, env=env, check=True, capture_output=True, text=True
    )
    return result.stdout.strip()


def mint_sessions(env: dict, users: int) -> dict:
    """Open sessions for the staff user and ``users`` regular users (bench/mint.py); return its JSON."""
    result = subprocess.run(
        [sys.executable, "bench/mint.py", "--staff-email", STAFF_EMAIL, "--users", str(users)],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
    )
    return json.loads(result.stdout)


def start(server: Server) -> None:
    out = open(OUT / f"{server.name}.log", "wb")  # noqa: SIM115  (closed with the process)
    server.process = subprocess.Popen(
        [str(BIN / "gunicorn"), "-c", server.config, server.app],
        cwd=server.cwd,
        env=server.env,
        stdout=out,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def wait_ready(server: Server, path: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise SystemExit(f"{server.name} exited: see {OUT / (server.name + '.log')}")
        try:
            with urllib.request.urlopen(server.base + path, timeout=2):  # noqa: S310  (loopback only)
                pass
            if len(worker_pids(server)) == WORKERS:
                return
        except OSError:  # refused while booting, or slow to answer on a busy machine
            pass
        time.sleep(0.2)
    raise SystemExit(f"{server.name} did not answer {path} within {timeout}s")


def drain(base: str, timeout: float = 120.0) -> None:
    """Wait until both workers are idle: requests wrk left queued (a slow login) must not spill into the next run."""
    deadline, quick = time.monotonic() + timeout, 0
    while time.monotonic() < deadline and quick < 2 * WORKERS:
        started = time.monotonic()
        try:
            with urllib.request.urlopen(base + "/healthz", timeout=timeout):  # noqa: S310  (loopback only)
                pass
        except urllib.error.HTTPError:
            pass  # answered (the floors have no /healthz): a worker was free
        except OSError:
            time.sleep(0.1)
        quick = quick + 1 if time.monotonic() - started < 0.05 else 0


def stop(server: Server) -> None:
    process = server.process
    if process is None or process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=5)


def worker_pids(server: Server) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # pid (comm) state ppid ...: comm may hold spaces, so split after its closing parenthesis.
        if int(stat.rsplit(")", 1)[1].split()[1]) == server.process.pid:
            pids.append(int(entry.name))
    return sorted(pids)


def cpu_seconds(pids: list[int]) -> float:
    """CPU time (user + system, every thread) the processes ``pids`` have used so far."""
    ticks = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks += int(fields[11]) + int(fields[12])  # utime, stime: the 14th and 15th fields of proc(5)
    return ticks / os.sysconf("SC_CLK_TCK")


# The workers' tunings of the hash (core/allocator.py, users/hashers.py), each timed switched off beside the hash
# as they run it: the environment that switches it off, the row's label and what that is.
HASH_REFERENCES = {
    "small_pages": (
        {"ARGON2_HUGE_PAGES": "false"},
        "memory kept, on small pages",
        "no transparent huge pages (ARGON2_HUGE_PAGES=false)",
    ),
    "afresh": (
        {"ARGON2_KEEP_MEMORY": "false"},
        "memory mapped afresh per hash",
        "faulted in anew each hash, as Django's own hasher's malloc does (ARGON2_KEEP_MEMORY=false)",
    ),
    "lane_threads": (
        {"ARGON2_THREADS": "0"},
        "one thread per lane",
        "its 8 lanes in 8 threads, as Django's own hasher runs them (ARGON2_THREADS=0)",
    ),
}


def tuning_on(env: dict, name: str) -> bool:
    """Whether the hash tuning ``name`` (on by default) is on in ``env``, read as the settings read it."""
    return environ.Env.parse_value(env.get(name, "true"), bool)


def hash_references(env: dict) -> list[str]:
    """The references worth timing beside the service's own hash: only tunings the service runs with."""
    keep = tuning_on(env, "ARGON2_KEEP_MEMORY")
    huge = keep and tuning_on(env, "ARGON2_HUGE_PAGES") and huge_pages_offered()
    threads = int(env.get("ARGON2_THREADS") or 1) != 0  # the settings' default: one thread a hash
    wanted = (("small_pages", huge), ("afresh", keep), ("lane_threads", threads))
    return [key for key, on in wanted if on]


def kept_hash_kib(env: dict) -> int:
    """The Argon2 memory each service worker keeps after its first login (core/allocator.py), in KiB."""
    return ARGON2_MEMORY_KIB if tuning_on(env, "ARGON2_KEEP_MEMORY") else 0


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


# ----------------------------------------------------------------------------------------- HTTP


def request(url: str, *, token: str = "", method: str = "GET", body: dict | None = None) -> tuple[int, bytes]:
    headers = {"X-Forwarded-Proto": "https"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    req = urllib.request.Request(url, data=data, method=method, headers=headers)  # noqa: S310
    try:
        with urllib.request.urlopen(req, timeout=30) as response:  # noqa: S310  (loopback only)
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def expect_ok(label: str, url: str, **kwargs) -> bytes:
    status, body = request(url, **kwargs)
    if status != 200:
        raise SystemExit(f"{label}: {url} answered {status}: {body[:300]!r}")
    return body


# ----------------------------------------------------------------------------------------- wrk

DONE = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCHJSON {"requests":%d,"duration_us":%d,"p50_us":%d,"p99_us":%d,"socket_errors":%d,"status_errors":%d}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write + e.timeout, e.status))
end
"""


def lua_string(value: str) -> str:
    return json.dumps(value)  # a JSON string literal is a valid Lua string literal for ASCII text


def script_static(path: Path, *, url_path: str, token: str = "", method: str = "GET", body: str = "") -> Path:
    lines = [f"wrk.method = {lua_string(method)}", f"wrk.path = {lua_string(url_path)}"]
    lines.append('wrk.headers["X-Forwarded-Proto"] = "https"')
    if token:
        lines.append(f'wrk.headers["Authorization"] = {lua_string("Bearer " + token)}')
    if body:
        lines.append('wrk.headers["Content-Type"] = "application/json"')
        lines.append(f"wrk.body = {lua_string(body)}")
    path.write_text("\n".join(lines) + "\n" + DONE)
    return path


def script_rotating(path: Path, rows: list[tuple[str, str]]) -> Path:
    """GET each (token, path) in turn: one distinct user per request until the list wraps."""
    data = path.with_suffix(".tsv")
    data.write_text("".join(f"{token}\t{url_path}\n" for token, url_path in rows))
    path.write_text(
        f"""
local tokens, paths = {{}}, {{}}
for line in io.lines({lua_string(str(data))}) do
  local token, url_path = line:match("([^\\t]+)\\t([^\\t]+)")
  tokens[#tokens + 1] = "Bearer " .. token
  paths[#paths + 1] = url_path
end
local i = 0
request = function()
  i = i % #tokens + 1
  return wrk.format("GET", paths[i], {{["Authorization"] = tokens[i], ["X-Forwarded-Proto"] = "https"}})
end
"""
        + DONE
    )
    return path


def script_patch(path: Path, *, token: str) -> Path:
    """PATCH /users/me with a first name that changes on every request: each one is a real write."""
    path.write_text(
        f"""
local headers = {{["Authorization"] = {lua_string("Bearer " + token)}, ["X-Forwarded-Proto"] = "https",
                  ["Content-Type"] = "application/json"}}
local i = 0
request = function()
  i = i + 1
  return wrk.format("PATCH", "/api/v1/users/me", headers, '{{"first_name":"Bench' .. (i % 1000) .. '"}}')
end
"""
        + DONE
    )
    return path


def run_wrk(wrk: str, base: str, script: Path, *, connections: int, duration: int) -> dict:
    command = [
        wrk,
        "-t1",
        f"-c{connections}",
        f"-d{duration}s",
        "--timeout",
        "10s",
        "-s",
        str(script),
        base,
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=duration + 60, check=True)
    drain(base)
    for line in result.stdout.splitlines():
        if line.startswith("BENCHJSON "):
            stats = json.loads(line.removeprefix("BENCHJSON "))
            # Only answers below 400 count: a burst of fast 503s must not pass for throughput.
            stats["rps"] = (stats["requests"] - stats["status_errors"]) / (stats["duration_us"] / 1e6)
            return stats
    raise SystemExit(f"wrk printed no result: {result.stdout}\n{result.stderr}")


# ----------------------------------------------------------------------------------------- the run


class Bench:
    def __init__(self, args):
        self.args = args
        self.wrk = ensure_wrk()
        self.tmp = Path(tempfile.mkdtemp(prefix="users-bench-"))
        self.env = service_env(args)
        apps = {"F0": "bench.floor_wsgi:application", "F1": "bench.floor_django:application", "svc": "config.wsgi"}
        self.servers = {
            name: Server(name, app, args.port + n, gunicorn_env(self.env, args.port + n, self.tmp / f"metrics-{name}"))
            for n, (name, app) in enumerate(apps.items())
        }
        # Diagnostic: the same service with its per-request Redis round trip answered in process.
        self.servers["D"] = Server(
            "D",
            "config.wsgi",
            args.port + 3,
            gunicorn_env(self.env, args.port + 3, self.tmp / "metrics-D"),
            config="bench/gunicorn_no_round_trip.py",
        )
        self.served = 0  # requests the service answered since the "before" memory reading
        self.phases: dict[str, list[Scenario]] = {}
        self.notes: list[str] = []

    # -- helpers

    def wrk_run(self, scenario: Scenario) -> dict:
        if scenario.before:
            scenario.before()
        # A login's CPU in the service's workers, to set beside a hash's CPU alone: what a login adds to its hash.
        pids = worker_pids(self.servers["svc"]) if scenario.key == "login" else []
        cpu_before = cpu_seconds(pids)
        stats = self.wrk_for(scenario, scenario.duration or self.args.duration)
        if pids:
            stats["worker_cpu_ms"] = 1000 * (cpu_seconds(pids) - cpu_before) / max(1, stats["requests"])
        if scenario.server == "svc":
            self.served += stats["requests"]
        errors = stats["socket_errors"] + stats["status_errors"]
        log(f"  {scenario.label}: {stats['rps']:,.0f} req/s, p50 {stats['p50_us'] / 1000:.2f} ms, {errors} errors")
        return stats

    def wrk_for(self, scenario: Scenario, duration: int) -> dict:
        base = self.servers[scenario.server].base
        return run_wrk(self.wrk, base, scenario.script, connections=self.args.connections, duration=duration)

    def flush_cache(self) -> None:
        flush_redis(self.args.redis_url)

    def seed(self, count: int, seed: int) -> None:
        started = time.perf_counter()
        argv = ["seed_users", str(count), "--password", PASSWORD, "--seed", str(seed)]
        if seed == 1:
            argv += ["--staff-email", STAFF_EMAIL]
        manage(self.env, *argv)
        self.notes.append(f"seed_users {count}: {time.perf_counter() - started:.1f} s")

    def mint(self, users: int) -> dict:
        started = time.perf_counter()
        minted = mint_sessions(self.env, users)
        if users:
            self.notes.append(f"{users:,} sessions minted in {time.perf_counter() - started:.1f} s")
        return minted

    def deep_cursor(self, staff_token: str, total: int) -> str:
        """Return the cursor of the page that starts halfway down the default ordering."""
        with psycopg.connect(self.args.database_url) as conn:
            date_joined, user_id = conn.execute(
                "SELECT date_joined, id FROM users_user ORDER BY date_joined DESC, id DESC OFFSET %s LIMIT 1",
                (total // 2,),
            ).fetchone()
        first = json.loads(expect_ok("list", self.servers["svc"].base + "/api/v1/users", token=staff_token))
        cursor = parse_qs(urlsplit(first["next"]).query)["cursor"][0]
        payload = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        payload.update(v=date_joined.astimezone(UTC).isoformat(), id=str(user_id))
        crafted = base64.urlsafe_b64encode(json.dumps(payload, separators=(",", ":")).encode()).decode().rstrip("=")
        page = json.loads(
            expect_ok("deep page", self.servers["svc"].base + "/api/v1/users?cursor=" + crafted, token=staff_token)
        )
        if len(page["results"]) != 20:
            raise SystemExit(f"the crafted deep cursor gave {len(page['results'])} rows, not a full page")
        return crafted

    def list_scenarios(self, phase: str, staff_token: str, total: int) -> list[Scenario]:
        cursor = self.deep_cursor(staff_token, total)
        queries = {
            "first page": {},
            "deep page": {"cursor": cursor},
            "first page, search": {"search": SEARCH},
            "deep page, search": {"search": SEARCH, "cursor": cursor},
        }
        scenarios = []
        for name, query in queries.items():
            url_path = "/api/v1/users" + ("?" + urlencode(query) if query else "")
            expect_ok(name, self.servers["svc"].base + url_path, token=staff_token)
            key = f"list {name} @{total}"
            script = script_static(self.tmp / f"{phase}-{len(scenarios)}.lua", url_path=url_path, token=staff_token)
            scenarios.append(Scenario(key, f"staff list, {name}, {total:,} users", "svc", script, group="list"))
        return scenarios

    def rounds(self, phase: str, scenarios: list[Scenario], *, hash_alone=None) -> None:
        for number in range(1, self.args.rounds + 1):
            log(f"{phase}: round {number}/{self.args.rounds}")
            for scenario in scenarios:
                scenario.results.append(self.wrk_run(scenario))
            if hash_alone:
                hash_alone()

    # -- phases

    def run(self) -> None:
        args = self.args
        OUT.mkdir(exist_ok=True)
        log(f"database {urlsplit(args.database_url).path.lstrip('/')}: recreate, migrate, seed {args.small:,}")
        wait_for_services(args.database_url, args.redis_url)
        recreate_database(args.database_url)
        self.flush_cache()
        manage(self.env, "migrate", "--noinput")
        self.seed(args.small - 1, seed=1)  # plus the staff account: args.small rows in all
        for server in self.servers.values():
            start(server)
        try:
            wait_ready(self.servers["F0"], "/")
            wait_ready(self.servers["F1"], "/api/v1/users/me")
            wait_ready(self.servers["svc"], "/healthz")
            wait_ready(self.servers["D"], "/healthz")
            self.phase_small()
            self.phase_large()
        finally:
            for server in self.servers.values():
                stop(server)
            shutil.rmtree(self.tmp, ignore_errors=True)

    def phase_small(self) -> None:
        self.staff = self.mint(0)["staff"]
        scenarios = self.list_scenarios("small", self.staff[0], self.args.small)
        for scenario in scenarios:  # warm-up: imports, plans, connections
            self.wrk_for(scenario, 1)
        self.rounds(f"staff list at {self.args.small:,}", scenarios)
        self.phases["small"] = scenarios

    def phase_large(self) -> None:
        args = self.args
        log(f"seeding {args.users - args.small:,} more users (to {args.users:,})")
        self.seed(args.users - args.small, seed=2)
        cold_sets = 2 * args.rounds
        minted = self.mint(3 + cold_sets * args.cold_users)
        users = minted["users"]
        warm, patcher, login = users[0], users[1], users[2]
        cold = users[3:]
        svc = self.servers["svc"]

        me_body = expect_ok("me", svc.base + "/api/v1/users/me", token=warm[0])
        expect_ok("id", svc.base + f"/api/v1/users/{warm[1]}", token=warm[0])
        expect_ok("diagnostic", self.servers["D"].base + "/api/v1/users/me", token=warm[0])
        floor_body = expect_ok("F1", self.servers["F1"].base + "/api/v1/users/me", token=warm[0])
        expect_ok("F0", self.servers["F0"].base + "/api/v1/users/me", token=warm[0])
        self.notes.append(f"body bytes: service user {len(me_body)}, floors {len(floor_body)}")
        expect_ok("patch", svc.base + "/api/v1/users/me", token=patcher[0], method="PATCH", body={"first_name": "B"})
        login_body = {"email": login[2], "password": PASSWORD}
        expect_ok("login", svc.base + "/api/v1/auth/token", method="POST", body=login_body)

        def cold_rows(kind: str) -> list[list[tuple[str, str]]]:
            offset = 0 if kind == "me" else args.rounds * args.cold_users
            sets = []
            for number in range(args.rounds):
                chunk = cold[offset + number * args.cold_users : offset + (number + 1) * args.cold_users]
                sets.append(
                    [(t, "/api/v1/users/me" if kind == "me" else f"/api/v1/users/{uid}") for t, uid, _ in chunk]
                )
            return sets

        tmp = self.tmp
        floor_script = script_static(tmp / "floor.lua", url_path="/api/v1/users/me", token=warm[0])
        scenarios = [
            Scenario("F0", "F0 raw WSGI floor", "F0", floor_script, group="floor"),
            Scenario("F1", "F1 bare Django floor", "F1", floor_script, group="floor"),
            Scenario(
                "me warm",
                "GET /users/me, cache warm",
                "svc",
                script_static(tmp / "me.lua", url_path="/api/v1/users/me", token=warm[0]),
                group="read",
            ),
            Scenario(
                "id warm",
                "GET /users/{id}, cache warm",
                "svc",
                script_static(tmp / "id.lua", url_path=f"/api/v1/users/{warm[1]}", token=warm[0]),
                group="read",
            ),
            Scenario(
                "me warm, no round trip",
                "(diagnostic) GET /users/me, cache warm, its Redis round trip answered in process",
                "D",
                tmp / "me.lua",
                group="diagnostic",
            ),
        ]
        for kind in ("me", "id"):
            sets = iter(cold_rows(kind))
            paths = {"me": "/users/me", "id": "/users/{id}"}
            scenario = Scenario(
                f"{kind} cold",
                f"GET {paths[kind]}, cache cold",
                "svc",
                tmp / f"{kind}-cold.lua",
                group="cold",
                distinct=args.cold_users,
            )

            def before(scenario=scenario, sets=sets):
                script_rotating(scenario.script, next(sets))
                self.flush_cache()

            scenario.before = before
            scenarios.append(scenario)
        scenarios += self.list_scenarios("large", self.staff[0], args.users)
        scenarios.append(
            Scenario(
                "patch", "PATCH /users/me", "svc", script_patch(tmp / "patch.lua", token=patcher[0]), group="write"
            )
        )
        # A login costs a password hash (about 0.2 s of both CPUs here): each worker finishes only a few a
        # second, so a short run is a count of tens, and the one a worker has half done when wrk stops is
        # lost. The hash alone is timed over the same window right after it, and the ratio is taken per round.
        login_seconds = max(15, 3 * args.duration)
        scenarios.append(
            Scenario(
                "login",
                "POST /auth/token (login)",
                "svc",
                script_static(
                    tmp / "login.lua", url_path="/api/v1/auth/token", method="POST", body=json.dumps(login_body)
                ),
                group="login",
                duration=login_seconds,
            )
        )

        # Warm-up (imports, first plans, connections), then the "before" readings.
        for scenario in scenarios:
            if scenario.group != "cold":
                self.wrk_for(scenario, 1)
        password_hash = self.password_hash(login[2])
        time.sleep(1.5)  # PostgreSQL publishes its statistics at most once a second
        pg_before = self.pg_counters()
        rss_before = {pid: rss_kib(pid) for pid in worker_pids(svc)}
        self.served = 0
        self.notes.append("load average (1, 5, 15 min) at the first round: " + load_average())
        self.hash_rates: list[dict] = []
        # For reference, the same hash as the hasher would run without each of the workers' tunings.
        self.hash_references: dict[str, list[dict]] = {key: [] for key in hash_references(self.env)}

        def hash_alone():
            env = {**self.env, "BENCH_PASSWORD": PASSWORD, "BENCH_PASSWORD_HASH": password_hash}
            command = [sys.executable, "bench/hash_alone.py", "--seconds", str(login_seconds)]
            command += ["--workers", str(WORKERS)]
            run = functools.partial(subprocess.run, command, cwd=ROOT, check=True, capture_output=True, text=True)
            # The limit, as the service's workers hash (users/hashers.py), right after this round's logins...
            self.hash_rates.append(json.loads(run(env=env).stdout))
            for key, runs in self.hash_references.items():
                runs.append(json.loads(run(env={**env, **HASH_REFERENCES[key][0]}).stdout))

        self.rounds(f"main at {args.users:,}", scenarios, hash_alone=hash_alone)
        self.phases["large"] = scenarios

        # Memory over at least --rss-requests: top up with cached reads when the rounds served fewer.
        if self.served < args.rss_requests:
            warm_rps = statistics.median(r["rps"] for r in scenarios[2].results)
            missing = args.rss_requests - self.served
            seconds = min(300 if args.full else 30, int(missing / warm_rps * 1.1) + 1)
            log(f"memory: {self.served:,} served, {seconds}s more of cached reads to pass {args.rss_requests:,}")
            extra = self.wrk_for(scenarios[2], seconds)
            self.served += extra["requests"]
        self.notes.append("after the last: " + load_average())
        time.sleep(1.5)
        self.pg_after = self.pg_counters()
        self.pg_before = pg_before
        self.rss = [(pid, before, rss_kib(pid)) for pid, before in rss_before.items()]

    def password_hash(self, email: str) -> str:
        with psycopg.connect(self.args.database_url) as conn:
            return conn.execute("SELECT password FROM users_user WHERE email = %s", (email,)).fetchone()[0]

    def pg_counters(self) -> dict:
        name = urlsplit(self.args.database_url).path.lstrip("/")
        with psycopg.connect(maintenance_url(self.args.database_url), autocommit=True) as conn:
            numbackends, sessions = conn.execute(
                "SELECT numbackends, sessions FROM pg_stat_database WHERE datname = %s", (name,)
            ).fetchone()
            activity = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = %s", (name,)).fetchone()[0]
        return {"numbackends": numbackends, "sessions": sessions, "activity": activity}


# ----------------------------------------------------------------------------------------- report


def median(results: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in results)


def rate(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:.1f}"


def error_share(results: list[dict]) -> float:
    requests = sum(r["requests"] for r in results)
    return sum(r["socket_errors"] + r["status_errors"] for r in results) / max(1, requests)


def verdict(met: bool, *results: list[dict]) -> str:
    """Met or missed; unreliable when more than 1% of a measurement's requests failed."""
    worst = max((error_share(r) for r in results), default=0.0)
    if worst > 0.01:
        return f"UNRELIABLE ({worst:.0%} of requests failed)"
    return "met" if met else "MISSED"


def report(bench: Bench) -> str:
    args = bench.args
    large = bench.phases["large"]
    f0 = median(next(s for s in large if s.key == "F0").results, "rps")
    f1 = median(next(s for s in large if s.key == "F1").results, "rps")
    hash_rate = statistics.median(h["rate"] for h in bench.hash_rates)
    lines = [
        f"users service benchmark, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, commit {commit()}; {cpu_model()}, "
        f"{os.cpu_count()} CPUs",
        f"gunicorn -c config/gunicorn.py, {WORKERS} sync workers each; wrk -t1 -c{args.connections} "
        f"-d{args.duration}s; {args.rounds} interleaved rounds, medians; staff list at {args.small:,} and "
        f"{args.users:,} users",
        "",
        "| scenario | req/s | p50 ms | p99 ms | x F0 | x F1 | errors | note |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for scenario in bench.phases["small"] + large:
        res = scenario.results
        rps = median(res, "rps")
        errors = sum(r["socket_errors"] + r["status_errors"] for r in res)
        note = ""
        if scenario.distinct:
            per_user = median(res, "requests") / scenario.distinct
            note = f"{per_user:.2f} requests per distinct user"
        if scenario.key == "login":
            ratios = ", ".join(f"{r:.3f}" for r in login_ratios(bench))
            note = f"{statistics.median(login_ratios(bench)):.2f} x hash alone (per round: {ratios})"
            if cpu := login_cpu_ms(bench):
                note += f"; CPU per login in the workers {cpu[0]:.1f} ms, per hash alone {cpu[1]:.1f} ms"
        if scenario.group == "diagnostic":
            note = "what the one Redis round trip costs (bench/gunicorn_no_round_trip.py); not a service"
        lines.append(
            f"| {scenario.label} | {rate(rps)} | {median(res, 'p50_us') / 1000:.2f} | "
            f"{median(res, 'p99_us') / 1000:.2f} | {rps / f0:.2f} | {rps / f1:.2f} | {errors} | {note} |"
        )
    mean_ms = statistics.median(h["mean_ms"] for h in bench.hash_rates)
    lines.append(
        f"| password hash alone ({WORKERS} processes, check_password) | {rate(hash_rate)} | {mean_ms:.2f} | | "
        f"{hash_rate / f0:.3f} | {hash_rate / f1:.3f} | | in-process, no HTTP, memory kept as the workers do; "
        "counted as wrk counts logins (the checks finished within the window) |"
    )
    login_rps = median(next(s for s in large if s.key == "login").results, "rps")
    for key, runs in bench.hash_references.items():
        reference = statistics.median(h["rate"] for h in runs)
        label, why = HASH_REFERENCES[key][1:]
        lines.append(
            f"| (reference) password hash alone, {label} | {rate(reference)} | "
            f"{statistics.median(h['mean_ms'] for h in runs):.2f} | | {reference / f0:.3f} | "
            f"{reference / f1:.3f} | | {why}; hash alone = {hash_rate / reference:.2f} x this, "
            f"login = {login_rps / reference:.2f} x this |"
        )
    lines += [
        "",
        "req/s counts answers below 400 only; errors are socket errors plus answers of 400 and above.",
        "",
        f"Worker RSS over {bench.served:,} service requests (after warm-up, no worker recycling):",
    ]
    growth = []
    kept = kept_hash_kib(bench.env)
    for pid, before, after in bench.rss:
        # Growth against what the worker holds besides the hash memory it keeps from its first login (stricter).
        growth.append((after - before) / (before - kept) * 100)
        lines.append(
            f"- worker {pid}: {before / 1024:.1f} MiB -> {after / 1024:.1f} MiB ({(after - before) / 1024:+.1f} MiB, "
            f"{growth[-1]:+.1f}% of the {(before - kept) / 1024:.1f} MiB besides the hash memory)"
        )
    if kept:
        lines.append(
            f"(each worker keeps Argon2's {kept / 1024:.0f} MiB from its first login on, core/allocator.py: counted "
            "in both readings, left out of the base of the percentage)"
        )
    pb, pa = bench.pg_before, bench.pg_after
    lines += [
        "",
        f"PostgreSQL connections to the bench database, before -> after the rounds: numbackends "
        f"{pb['numbackends']} -> {pa['numbackends']}, pg_stat_activity {pb['activity']} -> {pa['activity']}, "
        f"sessions ever opened {pb['sessions']} -> {pa['sessions']} (+{pa['sessions'] - pb['sessions']} "
        f"over {bench.served:,} requests; workers reconnect when a connection reaches DATABASE_CONN_MAX_AGE, "
        f"600 s by default)",
        "",
        "Targets of issue 6:",
    ]
    lines += targets(bench, f1, growth)
    lines += ["", "Notes: " + "; ".join(bench.notes)]
    return "\n".join(lines)


def login_ratios(bench: Bench) -> list[float]:
    """Each round's login rate over the hash-alone rate timed right after it, over a window as long."""
    login = next(s for s in bench.phases["large"] if s.key == "login")
    return [run["rps"] / alone["rate"] for run, alone in zip(login.results, bench.hash_rates, strict=True)]


def login_cpu_ms(bench: Bench) -> tuple[float, float] | None:
    """Median CPU of a login in the service's workers and of one hash alone (ms), when both were measured."""
    login = next(s for s in bench.phases["large"] if s.key == "login")
    logins = [run["worker_cpu_ms"] for run in login.results if "worker_cpu_ms" in run]
    hashes = [alone["cpu_ms"] for alone in bench.hash_rates if "cpu_ms" in alone]
    if not (logins and hashes):
        return None
    return statistics.median(logins), statistics.median(hashes)


def targets(bench: Bench, f1: float, growth: list[float]) -> list[str]:
    def by_key(phase: str, key: str) -> Scenario:
        return next(s for s in bench.phases[phase] if s.key == key)

    out = []
    for key in ("me warm", "id warm"):
        res = by_key("large", key).results
        ratio = median(res, "rps") / f1
        spread = median(res, "p99_us") / median(res, "p50_us")
        met = verdict(ratio >= 0.5 and spread < 4, res)
        out.append(f"- {TARGETS['read']}: {key}: {ratio:.2f} x F1, p99 = {spread:.1f} x p50: {met}")
    small, large = bench.args.small, bench.args.users
    for name in ("first page", "deep page", "first page, search", "deep page, search"):
        res_small = by_key("small", f"list {name} @{small}").results
        res_large = by_key("large", f"list {name} @{large}").results
        p_small, p_large = median(res_small, "p50_us"), median(res_large, "p50_us")
        met = verdict(p_large <= 2 * p_small, res_small, res_large)
        out.append(
            f"- {TARGETS['list']}: {name}: {p_large / 1000:.2f} ms at {large:,} vs {p_small / 1000:.2f} ms "
            f"= {p_large / p_small:.2f} x: {met}"
        )
    res = by_key("large", "login").results
    login = statistics.median(login_ratios(bench))
    out.append(f"- {TARGETS['login']}: {login:.2f} x: {verdict(login >= 0.9, res)}")
    worst = max(growth)
    met = "met" if worst < 5 else "MISSED"
    if bench.served < RSS_TARGET_REQUESTS:
        met = f"not shown: only {bench.served:,} requests ({'met' if worst < 5 else 'missed'} over those)"
    out.append(f"- {TARGETS['rss']}: worst worker {worst:+.1f}% over {bench.served:,} requests: {met}")
    return out


def commit() -> str:
    """Return the commit measured: BENCH_COMMIT when set (a copy made by git archive), else the work tree's HEAD."""
    if os.environ.get("BENCH_COMMIT"):
        return os.environ["BENCH_COMMIT"]
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True).stdout
    except OSError:
        return "unknown"
    if head.returncode:
        return "unknown"
    return head.stdout.strip() + (" plus uncommitted changes" if dirty.strip() else "")


def load_average() -> str:
    return " ".join(f"{value:.1f}" for value in os.getloadavg())


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown CPU"


def main() -> None:
    args = parse_args()
    started = time.monotonic()
    bench = Bench(args)
    bench.run()
    text = report(bench)
    minutes = (time.monotonic() - started) / 60
    text += f"\n\nWhole run: {minutes:.1f} min."
    print(text)
    OUT.mkdir(exist_ok=True)
    (OUT / "last-run.md").write_text(text + "\n")


if __name__ == "__main__":
    main()
