"""Faults on the real stack: Redis stopped, PostgreSQL stopped, a worker killed, each under a bounded load.

One gunicorn (2 sync workers, production settings) per test. Each outage lasts a few seconds, other runs share
these services, and the service is started again in a ``finally`` and checked to be back.
"""

import os
import random
import signal
import time
from urllib.parse import urlsplit

import pytest

from core.exceptions import NOT_AUTHENTICATED, SERVICE_UNAVAILABLE
from tests.e2e import server as e2e
from tests.e2e.server import PASSWORD, Client, Load, unique

pytestmark = [pytest.mark.slow, e2e.needs_stack]

SUITE = "faults"
# No answer may take longer than this, dependency down or not (PostgreSQL's connect timeout is 3 s).
MAX_ANSWER_SECONDS = 6.0


def assert_envelope(answer, status: int, code: str) -> None:
    """Assert the contract's error envelope on an Answer or a load Outcome."""
    body = answer.json()
    assert answer.status == status, (answer.status, body)
    assert body["success"] is False and body["code"] == code and body["request_id"], body
    assert "stack" not in body


def user_rows(url: str, emails: list[str]) -> dict[str, tuple]:
    """Return email -> (id, first_name, registered events, verification events) for the users that exist."""
    rows = e2e.sql(
        url,
        """
        SELECT u.email, u.id, u.first_name,
               (SELECT count(*) FROM users_securityevent e WHERE e.user_id = u.id AND e.type = 'registered'),
               (SELECT count(*) FROM users_securityevent e
                 WHERE e.user_id = u.id AND e.type = 'email_verification_sent')
          FROM users_user u WHERE u.email = ANY(%s)
        """,
        (emails,),
    )
    return {row[0]: row[1:] for row in rows}


def mail_tasks(url: str, user_ids: list) -> int:
    """Count the queued verification mails of these users (the production task queue is in the database)."""
    rows = e2e.sql(
        url,
        "SELECT count(DISTINCT args_kwargs->'kwargs'->>'user_id') FROM django_tasks_database_dbtaskresult "
        "WHERE args_kwargs->'kwargs'->>'user_id' = ANY(%s)",
        ([str(pk) for pk in user_ids],),
    )
    return rows[0][0]


def assert_registrations_whole(url: str, attempts: dict[str, int | None]) -> dict[str, int]:
    """Every registration is all or nothing: a user exists with both its events, or not at all.

    ``attempts`` maps each email tried to its status (None: no answer). A 201 must exist; anything else may
    exist only whole (its transaction committed before the answer was lost). Returns counts for the report.
    """
    rows = user_rows(url, list(attempts))
    for email, (_pk, _name, registered, verification) in rows.items():
        assert (registered, verification) == (1, 1), f"half-written registration of {email}: {rows[email]}"
    created = [email for email, status in attempts.items() if status == 201]
    missing = [email for email in created if email not in rows]
    assert not missing, f"answered 201 but not in the database: {missing}"
    committed_unanswered = [e for e, status in attempts.items() if status != 201 and e in rows]
    return {
        "attempts": len(attempts),
        "created": len(created),
        "committed_without_201": len(committed_unanswered),
        "without_mail_task": len(rows) - mail_tasks(url, [row[0] for row in rows.values()]),
    }


def test_redis_stopped_under_load_reads_come_from_postgres_and_nothing_stale_after(start_server, stack, key_prefix):
    server = start_server("faults-redis")
    client = Client(server, SUITE)
    redis_url = stack[1]
    reader, other = unique("redis-reader"), unique("redis-other")
    for email in (reader, other):
        assert client.register(email, first_name="Before").status == 201
    reader_tokens, other_tokens = client.login(reader), client.login(other)
    reader_id = client("GET", "/api/v1/users/me", token=reader_tokens["access"]).json()["id"]
    other_id = client("GET", "/api/v1/users/me", token=other_tokens["access"]).json()["id"]
    targets = [
        ("reader-me", reader_tokens["access"], "/api/v1/users/me"),
        ("reader-id", reader_tokens["access"], f"/api/v1/users/{reader_id}"),
        ("other-me", other_tokens["access"], "/api/v1/users/me"),
        ("other-id", other_tokens["access"], f"/api/v1/users/{other_id}"),
    ]

    def read(thread, n):
        kind, token, path = targets[(thread + n) % len(targets)]
        return kind, "GET", path, {"token": token, "timeout": 10}

    with Load(client, read, threads=4, max_requests=60000, seconds=60) as load:
        time.sleep(1.0)
        client.outage = True  # from the shutdown on, a 503 is the expected answer of a fail-closed limit
        time.sleep(1.0)  # requests started before the flag are answered before the shutdown
        with e2e.redis_stopped(redis_url):
            down_at = time.monotonic()
            time.sleep(0.5)
            patched = client("PATCH", "/api/v1/users/me", token=reader_tokens["access"], body={"first_name": "During"})
            patched_at = time.monotonic()
            refreshed = client("POST", "/api/v1/auth/token/refresh", body={"refresh": other_tokens["refresh"]})
            login = client("POST", "/api/v1/auth/token", body={"email": other, "password": PASSWORD})
            ready = client("GET", "/readyz")
            anonymous = client("GET", "/api/v1/users/me")
            time.sleep(2.0)
            up_from = time.monotonic()
        client.outage = False
        time.sleep(1.5)

    outcomes = load.outcomes
    assert len(outcomes) > 100, len(outcomes)
    failed = [(o.kind, o.status, o.error, o.body[:200]) for o in outcomes if o.status != 200]
    assert not failed, f"{len(failed)} of {len(outcomes)} reads failed, e.g. {failed[:5]}"
    during = [o for o in outcomes if down_at + 0.2 < o.started < up_from]
    assert len(during) > 20, "the load must go on through the outage"
    assert max(o.elapsed for o in outcomes) < MAX_ANSWER_SECONDS

    # Writes and signed-in clients go on; new logins wait for the rate-limit store (endpoint limits fail closed).
    assert patched.status == 200 and patched.json()["first_name"] == "During", patched.body
    assert refreshed.status == 200, refreshed.body
    assert_envelope(login, 503, SERVICE_UNAVAILABLE)
    assert_envelope(ready, 503, SERVICE_UNAVAILABLE)
    assert "cache" in ready.json()["error"] and "database" not in ready.json()["error"]
    assert_envelope(anonymous, 401, NOT_AUTHENTICATED)  # the anonymous limit fails open

    # Never the old name once the write was answered: during the outage, and after Redis is back.
    stale = [o for o in outcomes if o.kind.startswith("reader") and o.started > patched_at and b'"Before"' in o.body]
    assert not stale, f"{len(stale)} stale reads after the write"

    # Redis back: the cache is used again (the entry is written back on the next read) and holds the new name.
    body = client("GET", f"/api/v1/users/{reader_id}", token=reader_tokens["access"]).json()
    assert body["first_name"] == "During"
    # Under the current cache generation (the version part of the key): failed invalidations during the outage
    # moved it on, so look the entry up by pattern and take the newest generation's.
    cached = e2e.redis_get_newest_version(redis_url, f"{key_prefix}:*:u:v1:{reader_id}")
    assert cached is not None and b"During" in cached
    assert client("GET", "/readyz").status == 200
    assert client("POST", "/api/v1/auth/token", body={"email": other, "password": PASSWORD}).status == 200


def test_postgres_stopped_under_load_answers_503_and_recovers_without_restart(start_server, stack, stack_env):
    server = start_server("faults-postgres")
    client = Client(server, SUITE)
    database_url = stack_env["DATABASE_URL"]
    staff_email, member, reader = unique("pg-staff"), unique("pg-member"), unique("pg-reader")
    e2e.create_staff(stack_env, staff_email)
    assert client.register(member).status == 201
    assert client.register(reader).status == 201
    staff, tokens, reader_tokens = client.login(staff_email), client.login(member), client.login(reader)
    pids_before = (server.pid, server.worker_pids())
    registrations: dict[str, int | None] = {}
    patches: list[tuple[str, int | None]] = []

    def make(thread, n):
        if thread == 0:
            name = f"Patch{n}"
            patches.append((name, None))
            return (
                f"patch:{len(patches) - 1}",
                "PATCH",
                "/api/v1/users/me",
                {
                    "token": tokens["access"],
                    "body": {"first_name": name},
                },
            )
        if thread == 1:
            return "list", "GET", "/api/v1/users?page_size=5", {"token": staff["access"]}
        if thread == 2:
            email = unique(f"pg-reg{n}")
            registrations[email] = None
            return f"register:{email}", "POST", "/api/v1/users", {"body": {"email": email, "password": PASSWORD}}
        # Another member: a write drops the writer's entry for the next read to refill, which an outage prevents.
        return "read", "GET", "/api/v1/users/me", {"token": reader_tokens["access"]}

    with Load(client, make, threads=4, max_requests=40000, seconds=90) as load:
        time.sleep(1.0)
        client.outage = True  # from the shutdown on, a 503 is the expected answer of what needs the database
        time.sleep(1.0)  # requests started before the flag are answered before the shutdown
        with e2e.postgres_stopped(database_url):
            down_at = time.monotonic()
            time.sleep(1.0)
            ready = client("GET", "/readyz")
            list_during = client("GET", "/api/v1/users", token=staff["access"])
            time.sleep(1.5)
            up_at = time.monotonic()
        recovered_at = None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if client("GET", "/readyz").status == 200:
                recovered_at = time.monotonic()
                break
            time.sleep(0.2)
        client.outage = False
        assert recovered_at is not None, "the service did not recover within 30 s of PostgreSQL's return"
        time.sleep(1.5)

    outcomes = load.outcomes
    assert not [o for o in outcomes if o.status is None], "every request gets an answer"
    for o in outcomes:
        assert o.elapsed < MAX_ANSWER_SECONDS, (o.kind, o.elapsed)
        if o.status >= 500:
            assert o.status == 503, (o.kind, o.status, o.body[:300])
            assert_envelope(o, 503, SERVICE_UNAVAILABLE)
    during = [o for o in outcomes if down_at + 0.5 < o.started < up_at]
    needing_db = [o for o in during if o.kind in ("list",) or o.kind.startswith(("patch", "register"))]
    assert needing_db and all(o.status == 503 for o in needing_db), [(o.kind, o.status) for o in needing_db][:10]
    # A member's reads need no database while their entries are cached (filled before the outage).
    reads = [o for o in during if o.kind == "read"]
    assert reads and all(o.status == 200 for o in reads), [(o.status, o.body[:100]) for o in reads][:5]
    after = [o for o in outcomes if o.started > recovered_at]
    assert after and all(o.status in (200, 201) for o in after), [(o.kind, o.status, o.body[:100]) for o in after]

    assert_envelope(ready, 503, SERVICE_UNAVAILABLE)
    assert "database" in ready.json()["error"]
    assert_envelope(list_during, 503, SERVICE_UNAVAILABLE)
    # Recovered without a restart: the same master and the same workers answer.
    assert (server.pid, server.worker_pids()) == pids_before

    # No write half-applied. The profile holds the last answered PATCH (or a later unanswered one that committed),
    # and the API serves what the database holds.
    for o in outcomes:
        if o.kind.startswith("patch:"):
            index = int(o.kind.split(":")[1])
            patches[index] = (patches[index][0], o.status)
        elif o.kind.startswith("register:"):
            registrations[o.kind.split(":", 1)[1]] = o.status
    stored = user_rows(database_url, [member])[member][1]
    last_ok = max(i for i, (_name, status) in enumerate(patches) if status == 200)
    assert stored in {name for name, _status in patches[last_ok:]}, (stored, patches[last_ok:])
    assert client("GET", "/api/v1/users/me", token=tokens["access"]).json()["first_name"] == stored
    counts = assert_registrations_whole(database_url, registrations)
    print(f"postgres outage: registrations {counts}")


def test_worker_killed_mid_request_gives_an_error_never_a_partial_write(start_server, stack_env):
    server = start_server("faults-kill")
    client = Client(server, SUITE)
    database_url = stack_env["DATABASE_URL"]
    member = unique("kill-member")
    assert client.register(member).status == 201
    tokens = client.login(member)
    registrations: dict[str, int | None] = {}

    def make(thread, n):
        if thread == 0:
            return "patch", "PATCH", "/api/v1/users/me", {"token": tokens["access"], "body": {"last_name": f"K{n}"}}
        # Registration hashes the password with Argon2: the slow request a kill lands in.
        email = unique(f"kill-reg{thread}-{n}")
        registrations[email] = None
        return f"register:{email}", "POST", "/api/v1/users", {"body": {"email": email, "password": PASSWORD}}

    kills = 4
    with Load(client, make, threads=4, max_requests=30000, seconds=60) as load:
        time.sleep(1.0)
        for _ in range(kills):
            victim = random.choice(server.wait_for_workers())
            os.kill(victim, signal.SIGKILL)
            time.sleep(0.4)
            server.wait_for_workers()
            time.sleep(0.4)
        time.sleep(1.0)

    outcomes = load.outcomes
    lost = [o for o in outcomes if o.status is None]
    assert lost, "a killed worker's client gets an error (no request was in flight at any kill?)"
    assert len(lost) <= kills * 2, [o.error for o in lost]  # a sync worker holds one request, maybe one queued
    assert not [o for o in outcomes if o.status is not None and o.status >= 500], "no 5xx from a worker's death"
    for o in outcomes:
        if o.kind.startswith("register:"):
            registrations[o.kind.split(":", 1)[1]] = o.status
    counts = assert_registrations_whole(database_url, registrations)
    e2e.tally(SUITE).notes.append(f"{len(lost)} requests cut by {kills} worker kills")
    print(f"worker kills: {kills}, requests without an answer: {len(lost)}, registrations {counts}")
    # The master replaced every worker and the service answers.
    assert len(server.wait_for_workers()) == 2
    assert client.register(unique("kill-after")).status == 201


@pytest.fixture
def partitioned_server(start_server, stack):
    """A server that reaches Redis through a relay the test can cut: Redis keeps running, with its data."""
    redis_url = urlsplit(stack[1])
    proxy = e2e.TcpProxy(redis_url.hostname, redis_url.port or 6379).start()
    try:
        url = redis_url._replace(netloc=f"127.0.0.1:{proxy.port}").geturl()
        yield start_server("faults-partition", REDIS_URL=url), proxy
    finally:
        proxy.stop()


def test_redis_partition_write_and_logout_during_it_are_honoured_after_it(partitioned_server, stack, key_prefix):
    """Redis unreachable but not restarted: what the cache held before must not come back after the partition."""
    server, proxy = partitioned_server
    client = Client(server, SUITE)
    email = unique("partition")
    assert client.register(email, first_name="Before").status == 201
    kept, ended = client.login(email), client.login(email)
    for _ in range(6):  # both workers hold the body and both sessions' state in the shared cache
        for tokens in (kept, ended):
            assert client("GET", "/api/v1/users/me", token=tokens["access"]).json()["first_name"] == "Before"

    client.outage = True
    proxy.cut()
    try:
        patched = client("PATCH", "/api/v1/users/me", token=kept["access"], body={"first_name": "During"})
        logout = client("POST", "/api/v1/auth/logout", token=ended["access"])
    finally:
        proxy.restore()
        client.outage = False
    assert patched.status == 200, patched.body
    assert logout.status == 204, logout.body
    # The failed invalidations moved the cache generation on (users.auth_state): every worker follows it
    # within STATE_CACHE_EPOCH_POLL seconds (default 2), after which nothing cached before the partition is read.
    time.sleep(2.5)

    names = {client("GET", "/api/v1/users/me", token=kept["access"]).json()["first_name"] for _ in range(6)}
    statuses = {client("GET", "/api/v1/users/me", token=ended["access"]).status for _ in range(6)}
    problems = []
    if names != {"During"}:
        problems.append(f"stale profile served after the partition: {sorted(names)}")
    if statuses != {401}:
        problems.append(f"a session ended during the partition is accepted after it: {sorted(statuses)}")
    assert not problems, "; ".join(problems)
