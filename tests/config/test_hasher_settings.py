"""ARGON2_THREADS read from the environment (settings loaded in a fresh process)."""

import os
import subprocess

import pytest

from tests.config.support import manage_shell

PRINT_THREADS = "from django.conf import settings; print(settings.ARGON2_THREADS)"


def run_with(threads: str) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("ARGON2_", "DJANGO_"))}
    env.update(DJANGO_SETTINGS_MODULE="config.settings", ARGON2_THREADS=threads)
    return manage_shell(PRINT_THREADS, env, check=False)


@pytest.mark.parametrize("threads", ["0", "1", "8"])
def test_zero_or_more_threads_are_taken(threads):
    result = run_with(threads)
    assert (result.returncode, result.stdout.strip().splitlines()[-1]) == (0, threads), result.stderr[-2000:]


def test_a_negative_number_of_threads_refuses_to_start_naming_the_variable():
    # Argon2 would refuse every hash: each login would fail (as a wrong password, had the hasher not raised).
    result = run_with("-1")
    assert result.returncode != 0
    assert "ImproperlyConfigured: ARGON2_THREADS must be 0 (one thread per lane) or more" in result.stderr
