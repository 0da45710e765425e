"""The password hasher in a fresh process: ARGON2_THREADS and ARGON2_MAX_CONCURRENT read from the environment, and
a hash in a management command where the metrics directory is missing."""

import os
import subprocess

import pytest

from tests.config.support import manage_shell

PRINT = "from django.conf import settings; print(settings.ARGON2_THREADS, settings.ARGON2_MAX_CONCURRENT)"


def run_with(code: str = PRINT, **variables: str) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("ARGON2_", "DJANGO_"))}
    env.update(DJANGO_SETTINGS_MODULE="config.settings", **variables)
    return manage_shell(code, env, check=False)


@pytest.mark.parametrize(
    ("variables", "printed"),
    [
        ({}, "1 1"),  # the defaults
        ({"ARGON2_THREADS": "0", "ARGON2_MAX_CONCURRENT": "1"}, "0 1"),
        ({"ARGON2_THREADS": "8", "ARGON2_MAX_CONCURRENT": "4"}, "8 4"),
    ],
)
def test_values_in_range_are_taken(variables, printed):
    result = run_with(**variables)
    assert (result.returncode, result.stdout.strip().splitlines()[-1]) == (0, printed), result.stderr[-2000:]


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        # Argon2 would refuse every hash: each login would fail.
        ("ARGON2_THREADS", "-1", "ARGON2_THREADS must be 0 (one thread per lane) or more"),
        # No hash could ever run: each login would wait for ever.
        ("ARGON2_MAX_CONCURRENT", "0", "ARGON2_MAX_CONCURRENT must be 1 or more"),
    ],
)
def test_a_value_out_of_range_refuses_to_start_naming_the_variable(variable, value, message):
    result = run_with(**{variable: value})
    assert result.returncode != 0
    assert f"ImproperlyConfigured: {message}" in result.stderr


def test_a_command_hashes_where_the_metrics_directory_is_missing(tmp_path):
    # PROMETHEUS_MULTIPROC_DIR set for the whole container, before the gunicorn master has created it:
    # createsuperuser's hash stands, untimed.
    code = "from django.contrib.auth.hashers import make_password; print(make_password('a passphrase')[:16])"

    result = run_with(code, PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "not-yet"))

    last_line = result.stdout.strip().splitlines()[-1]
    assert (result.returncode, last_line) == (0, "argon2$argon2id$"), result.stderr[-2000:]
    assert "password hash not timed" in result.stderr + result.stdout
