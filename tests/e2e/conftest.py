"""End-to-end fixtures: the real stack (PostgreSQL, Redis, gunicorn), a summary line per suite at the end.

These tests run when DATABASE_URL (PostgreSQL) and REDIS_URL are set, and are skipped on the embedded default
run. With the variables set, a service that is down is a failure, never a skip.
"""

import os

import pytest

from tests.e2e import server as e2e
from tests.summary import report_suite_lines

SUITES = {"test_faults": "faults", "test_instances": "instances", "test_admin_browser": "admin-browser"}
_results: dict[str, dict[str, int]] = {}


@pytest.fixture(scope="session")
def stack() -> tuple[str, str]:
    """(DATABASE_URL, REDIS_URL) of the real services, checked to be up."""
    urls = e2e.service_urls()
    assert urls is not None
    database_url, redis_url = urls
    assert e2e.postgres_up(database_url), f"PostgreSQL at {database_url} does not answer"
    assert e2e.redis_up(redis_url), f"Redis at {redis_url} does not answer"
    return urls


@pytest.fixture(scope="session")
def key_prefix(stack) -> str:
    prefix = f"e2e-{os.getpid()}"
    yield prefix
    if e2e.redis_up(stack[1]):
        e2e.redis_delete_prefix(stack[1], prefix)


@pytest.fixture(scope="session")
def e2e_database(stack) -> str:
    """URL of a migrated throwaway database, dropped at the end of the session."""
    with e2e.throwaway_database(stack[0]) as url:
        yield url


@pytest.fixture(scope="session")
def server_secrets() -> dict:
    return e2e.new_secrets()


@pytest.fixture(scope="session")
def stack_env(stack, e2e_database, key_prefix, server_secrets) -> dict:
    """The environment of a production server on the stack: every instance shares its secrets and stores."""
    return e2e.service_env(e2e_database, stack[1], key_prefix=key_prefix, secrets_=server_secrets)


@pytest.fixture
def start_server(stack_env):
    """Return start(name, workers=2, **env) -> a running Gunicorn; every one is stopped after the test."""
    started: list[e2e.Gunicorn] = []

    def start(name: str, *, workers: int = 2, **overrides: str) -> e2e.Gunicorn:
        server = e2e.Gunicorn(name, {**stack_env, **overrides}, workers=workers)
        started.append(server)
        return server.start()

    yield start
    for server in started:
        server.stop()


def pytest_runtest_logreport(report):
    module = report.nodeid.split("::")[0].rsplit("/", 1)[-1].removesuffix(".py")
    suite = SUITES.get(module)
    counted = (
        report.when == "call"
        or (report.when == "setup" and not report.passed)
        or (report.when == "teardown" and report.failed)
    )
    if suite is not None and counted:
        counts = _results.setdefault(suite, {"passed": 0, "failed": 0, "skipped": 0, "xfailed": 0})
        counts["xfailed" if hasattr(report, "wasxfail") and report.skipped else report.outcome] += 1


def pytest_terminal_summary(terminalreporter):
    lines = []
    for suite in SUITES.values():
        results = _results.get(suite)
        if results is None:
            continue
        if results["passed"] + results["failed"] + results["xfailed"] == 0:
            lines.append(f"e2e {suite}: not run ({results['skipped']} skipped)")
            continue
        outcome = ", ".join(f"{count} {name}" for name, count in results.items() if count or name != "xfailed")
        outcome = f"tests {outcome}"
        lines.append(e2e.tally(suite).line(suite, outcome))
    report_suite_lines(terminalreporter, "end-to-end summary", lines)
