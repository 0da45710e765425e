"""bench/run.py: how the login is set against the hash alone."""

from types import SimpleNamespace

import pytest

from bench import run


def bench_with(login_rps: list[float], hash_rates: list[float]):
    login = run.Scenario("login", "POST /auth/token (login)", "svc", script=None, group="login")
    login.results = [{"rps": rps} for rps in login_rps]
    other = run.Scenario("me warm", "GET /users/me, cache warm", "svc", script=None)
    other.results = [{"rps": 3000.0} for _ in login_rps]
    return SimpleNamespace(phases={"large": [other, login]}, hash_rates=[{"rate": r} for r in hash_rates])


def test_each_round_s_login_is_set_against_the_hash_alone_timed_right_after_it():
    # A machine that slows down in round 2 slows both: paired, the ratio stays; medians apart would mix rounds.
    bench = bench_with([10.0, 8.0, 11.0], [11.0, 8.5, 12.0])
    assert [round(r, 3) for r in run.login_ratios(bench)] == [0.909, 0.941, 0.917]


def test_a_round_without_its_hash_alone_reading_stops_the_report():
    with pytest.raises(ValueError):
        run.login_ratios(bench_with([10.0, 8.0], [11.0]))


def test_the_kept_hash_memory_is_django_s_argon2_memory_and_only_when_kept():
    from django.contrib.auth.hashers import Argon2PasswordHasher

    assert run.ARGON2_MEMORY_KIB == Argon2PasswordHasher.memory_cost
    assert run.kept_hash_kib({}) == run.ARGON2_MEMORY_KIB  # on by default, as in the settings
    assert run.kept_hash_kib({"ARGON2_KEEP_MEMORY": "false"}) == 0
    assert run.kept_hash_kib({"ARGON2_KEEP_MEMORY": "true"}) == run.ARGON2_MEMORY_KIB


def test_a_login_s_cpu_is_set_beside_a_hash_s_cpu_when_both_were_measured():
    bench = bench_with([10.0, 8.0, 11.0], [11.0, 8.5, 12.0])
    assert run.login_cpu_ms(bench) is None  # runs that did not measure it report none
    for result, cpu in zip(bench.phases["large"][1].results, [140.0, 150.0, 138.0], strict=True):
        result["worker_cpu_ms"] = cpu
    for alone, cpu in zip(bench.hash_rates, [125.0, 130.0, 124.0], strict=True):
        alone["cpu_ms"] = cpu

    assert run.login_cpu_ms(bench) == (140.0, 125.0)


def test_cpu_seconds_counts_a_busy_process_s_threads():
    import os
    import threading
    import time

    def spin(seconds: float) -> None:
        end = time.thread_time() + seconds
        while time.thread_time() < end:
            pass

    before = run.cpu_seconds([os.getpid()])
    threads = [threading.Thread(target=spin, args=(0.2,)) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert run.cpu_seconds([os.getpid()]) - before >= 0.3  # both threads' 0.2 s, in clock ticks


@pytest.mark.parametrize(
    ("env", "offered", "expected"),
    [
        # The service's defaults: every tuning on, each timed off too.
        ({}, True, ["small_pages", "afresh", "lane_threads"]),
        # A kernel without huge pages on request: the service runs without them anyway.
        ({}, False, ["afresh", "lane_threads"]),
        ({"ARGON2_HUGE_PAGES": "false"}, True, ["afresh", "lane_threads"]),
        ({"ARGON2_KEEP_MEMORY": "false"}, True, ["lane_threads"]),
        ({"ARGON2_THREADS": "2"}, True, ["small_pages", "afresh", "lane_threads"]),
        # Nothing tuned: the hash alone is already Django's default.
        ({"ARGON2_KEEP_MEMORY": "false", "ARGON2_THREADS": "0"}, True, []),
    ],
)
def test_the_hash_is_timed_without_each_tuning_the_service_runs_with(monkeypatch, env, offered, expected):
    monkeypatch.setattr(run, "huge_pages_offered", lambda: offered)
    assert run.hash_references(env) == expected
    for key in expected:
        switch_off = run.HASH_REFERENCES[key][0]
        assert key not in run.hash_references({**env, **switch_off})
