"""bench/hash_alone.py: the login's limit is counted as wrk counts the logins set against it."""

import os
import subprocess
import sys
from pathlib import Path

import orjson
from django.contrib.auth.hashers import make_password

ROOT = Path(__file__).resolve().parents[2]


def hash_alone(seconds: float, workers: int) -> dict:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",  # the MD5 hasher: thousands of checks in a short window
        "BENCH_PASSWORD": "a password",
        "BENCH_PASSWORD_HASH": make_password("a password"),
    }
    result = subprocess.run(
        [sys.executable, "bench/hash_alone.py", "--seconds", str(seconds), "--workers", str(workers)],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return orjson.loads(result.stdout)


def test_the_rate_is_the_checks_finished_within_the_window_over_the_window():
    # Timed to the end of its last check, the loop would divide by a little more than the window.
    report = hash_alone(0.5, 2)
    assert report["calls"] > 100
    assert report["rate"] == report["calls"] / 0.5
    # The mean time of a check is over the counted checks only: never more than the window shared among them.
    assert 0 < report["mean_ms"] <= 1000 * 0.5 * 2 / report["calls"]
    assert report["cpu_ms"] > 0
