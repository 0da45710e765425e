"""Shared fixtures: clients with real Bearer tokens, users of each kind, a clean cache per test."""

import socket
import time
import types

import django_ratelimit.core
import jwt
import pytest
from django.conf import settings
from django.core.cache import cache
from rest_framework.test import APIClient

from tests.factories import DEFAULT_PASSWORD, UserFactory
from tests.hostile.report import (  # noqa: F401  (hooks: here, the reporting process has them, see that module)
    pytest_configure,
    pytest_runtest_logreport,
    pytest_sessionfinish,
    pytest_terminal_summary,
    pytest_testnodedown,
)
from users import auth_state

USES_REDIS = "django_redis" in settings.CACHES["default"]["BACKEND"]


@pytest.fixture(autouse=True)
def _clean_cache(settings):
    """Start every test with an empty cache (auth state, rate-limit counters) and a fresh cache generation."""
    # Each test reads the generation from its own database once; no re-read mid-test disturbs query counts.
    settings.STATE_CACHE_EPOCH_POLL = 3600
    auth_state._epoch.update(version=None, checked=float("-inf"))
    if USES_REDIS:
        cache.delete_pattern("*")
    else:
        cache.clear()
    yield


@pytest.fixture(autouse=True)
def _one_rate_window(monkeypatch):
    """Count every request of a test in the rate-limit windows open when it started.

    A window is staggered per value (django-ratelimit's ``_get_window``: it ends at a second set by the value),
    so a test's few requests against an ``N/m`` limit could straddle two windows whatever it waits for (CI saw
    it). Only the choice of window is held: Retry-After still counts on the real clock to that window's end.
    """
    started = time.time()
    monkeypatch.setattr(django_ratelimit.core, "time", types.SimpleNamespace(time=lambda: started))


@pytest.fixture
def argon2_preferred(settings):
    """The service's password hasher first, as in production (the test settings put the fast MD5 one there), with
    its memory kept between hashes (core/allocator.py keeps blocks up to one hash of the preferred hasher)."""
    settings.PASSWORD_HASHERS = ["users.hashers.Argon2PasswordHasher", "django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.ARGON2_KEEP_MEMORY = True


@pytest.fixture
def api_client():
    return APIClient()


@pytest.fixture
def user(db):
    return UserFactory()


@pytest.fixture
def other_user(db):
    return UserFactory()


@pytest.fixture
def staff_user(db):
    return UserFactory(staff=True)


@pytest.fixture
def superuser(db):
    return UserFactory(superuser=True)


def login(email: str, password: str = DEFAULT_PASSWORD, **extra) -> dict:
    """Log in through the API and return the token pair."""
    response = APIClient().post("/api/v1/auth/token", {"email": email, "password": password}, format="json", **extra)
    assert response.status_code == 200, response.content
    return response.json()


def bearer_client(access: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {access}")
    return client


@pytest.fixture
def auth_client(db):
    """Return a function: auth_client(user) -> APIClient carrying a real access token of a new session."""

    def make(user):
        tokens = login(user.email)
        client = bearer_client(tokens["access"])
        client.tokens = tokens
        return client

    return make


def dead_cache() -> dict:
    """Return CACHES pointing at a loopback Redis port where nothing listens (connection refused at once)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{port}/0",
            "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.25, "SOCKET_TIMEOUT": 0.25},
        }
    }


def sid(token: str) -> str:
    """Return the session id (``sid`` claim) of a token, unverified."""
    return jwt.decode(token, options={"verify_signature": False})["sid"]


def me(access: str):
    """GET /api/v1/users/me with this access token."""
    return bearer_client(access).get("/api/v1/users/me")


def refresh(token: str):
    """POST /api/v1/auth/token/refresh with this refresh token."""
    return APIClient().post("/api/v1/auth/token/refresh", {"refresh": token}, format="json")
