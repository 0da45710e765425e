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
