"""DJANGO_ENV=production: refuse to start on a missing, known-default or short secret; pass check --deploy."""

import os
import secrets
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 60


def strong_secret() -> str:
    return secrets.token_urlsafe(50)


def production_env(**overrides: str | None) -> dict[str, str]:
    """A clean production environment with good secrets; an override of None removes the variable."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/tmp"),
        "LANG": "C.UTF-8",
        "DJANGO_ENV": "production",
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DJANGO_SECRET_KEY": strong_secret(),
        "JWT_SIGNING_KEY": strong_secret(),
        "DJANGO_ALLOWED_HOSTS": "users.example.com",
    }
    for name, value in overrides.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


def manage(*args: str, **overrides: str | None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=production_env(**overrides),
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )


def assert_refused_naming(result: subprocess.CompletedProcess, variable: str) -> None:
    assert result.returncode != 0, result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert variable in lines[0], lines[0]
    assert "Traceback" not in result.stderr


DEFAULT_SECRET_KEY = "django-insecure-development-only-secret-key-change-me"
DEFAULT_JWT_KEY = "development-only-jwt-signing-key-change-me-please"

REFUSALS = [
    ("DJANGO_SECRET_KEY", None, "missing"),
    ("DJANGO_SECRET_KEY", "", "empty"),
    ("DJANGO_SECRET_KEY", DEFAULT_SECRET_KEY, "development-default"),
    ("DJANGO_SECRET_KEY", "django-insecure-" + "k3y" * 20, "django-insecure-prefix"),
    ("DJANGO_SECRET_KEY", "changeme", "known-weak"),
    ("DJANGO_SECRET_KEY", secrets.token_urlsafe(20), "short"),
    ("DJANGO_SECRET_KEY", "ab" * 40, "too-simple"),
    ("JWT_SIGNING_KEY", None, "missing"),
    ("JWT_SIGNING_KEY", DEFAULT_JWT_KEY, "development-default"),
    ("JWT_SIGNING_KEY", "secret", "known-weak"),
    ("JWT_SIGNING_KEY", secrets.token_urlsafe(16), "short"),
    ("DJANGO_ALLOWED_HOSTS", None, "missing"),
]


@pytest.mark.parametrize(("variable", "value"), [r[:2] for r in REFUSALS], ids=[f"{r[0]}-{r[2]}" for r in REFUSALS])
def test_bad_setting_refuses_to_start_with_one_line_naming_it(variable, value):
    assert_refused_naming(manage("check", **{variable: value}), variable)


def test_jwt_key_equal_to_the_secret_key_is_refused():
    key = strong_secret()

    assert_refused_naming(manage("check", DJANGO_SECRET_KEY=key, JWT_SIGNING_KEY=key), "JWT_SIGNING_KEY")


def test_refusal_does_not_print_the_secret():
    short = "sh0rt-but-s3cret-value"

    result = manage("check", DJANGO_SECRET_KEY=short)

    assert result.returncode != 0
    assert short not in result.stderr + result.stdout


def test_good_secrets_pass_check_deploy_without_a_warning():
    result = manage("check", "--deploy", "--fail-level", "WARNING")

    assert result.returncode == 0, result.stdout + result.stderr
    output = result.stdout + result.stderr
    assert "WARNING" not in output and "?: (" not in output, output
    assert "System check identified no issues" in output


def test_check_deploy_warns_when_rate_limits_are_off():
    result = manage("check", "--deploy", "--fail-level", "WARNING", RATELIMIT_ENABLE="false")

    assert result.returncode != 0
    assert "RATELIMIT_ENABLE" in result.stdout + result.stderr


def test_debug_stays_off_in_production_whatever_the_environment_says():
    result = manage(
        "shell", "--no-imports", "-c", "from django.conf import settings; print(settings.DEBUG)", DJANGO_DEBUG="true"
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


def test_production_hardening_is_on():
    code = (
        "from django.conf import settings as s; "
        "print(s.SECURE_SSL_REDIRECT, s.SECURE_HSTS_SECONDS >= 31536000, s.SESSION_COOKIE_SECURE, "
        "s.CSRF_COOKIE_SECURE, s.SECURE_CONTENT_TYPE_NOSNIFF, s.ALLOWED_HOSTS)"
    )

    result = manage("shell", "--no-imports", "-c", code)

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "True True True True True ['users.example.com']"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
def test_gunicorn_refuses_to_start_at_once_without_a_secret():
    command = [sys.executable, "-m", "gunicorn", "-c", "config/gunicorn.py", "config.wsgi"]
    command += ["--bind", f"127.0.0.1:{_free_port()}"]
    env = production_env(DJANGO_SECRET_KEY=None, WEB_CONCURRENCY="1")
    process = subprocess.Popen(  # noqa: S603
        command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        stdout, stderr = process.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        pytest.fail("gunicorn kept restarting workers that cannot start instead of exiting")

    assert process.returncode != 0
    assert "DJANGO_SECRET_KEY" in stdout + stderr
    assert "Traceback" not in stderr
