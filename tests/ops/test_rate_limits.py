"""Every limit of the contract's rate-limit table, counted in the shared cache; what happens when it is down."""

import logging

import pytest
from django.test import Client
from rest_framework.test import APIClient

from tests.assertions import assert_error
from tests.conftest import bearer_client, login
from tests.factories import DEFAULT_PASSWORD, UserFactory
from tests.ops.conftest import dead_cache, sample, scrape

pytestmark = pytest.mark.django_db


def assert_rate_limited(response) -> None:
    assert_error(response, 429, "rate_limited")
    assert 1 <= int(response["Retry-After"]) <= 60


# ---------------------------------------------------------------- per user (RATELIMIT_USER)


def test_authenticated_requests_over_the_user_limit_are_rate_limited(user, settings):
    settings.RATELIMIT_USER = "3/m"
    client = bearer_client(login(user.email)["access"])

    statuses = [client.get("/api/v1/users/me").status_code for _ in range(3)]

    assert statuses == [200, 200, 200]
    assert_rate_limited(client.get("/api/v1/users/me"))


def test_user_limit_counts_every_session_of_the_user_and_no_one_else(user, other_user, settings):
    settings.RATELIMIT_USER = "2/m"
    first = bearer_client(login(user.email)["access"])
    second = bearer_client(login(user.email)["access"])

    assert first.get("/api/v1/users/me").status_code == 200
    assert second.get("/api/v1/users/me").status_code == 200
    assert_rate_limited(first.get("/api/v1/users/me"))
    assert bearer_client(login(other_user.email)["access"]).get("/api/v1/users/me").status_code == 200


def test_authenticated_requests_do_not_use_the_anonymous_limit(user, settings):
    settings.RATELIMIT_ANON = "2/m"
    client = bearer_client(login(user.email)["access"])  # the login itself is one anonymous request

    assert [client.get("/api/v1/users/me").status_code for _ in range(5)] == [200] * 5


# ---------------------------------------------------------------- anonymous (RATELIMIT_ANON)


def test_anonymous_requests_over_the_ip_limit_are_rate_limited(settings):
    settings.RATELIMIT_ANON = "3/m"
    client = APIClient(REMOTE_ADDR="198.51.100.10")

    assert [client.get("/api/v1/users/me").status_code for _ in range(3)] == [401, 401, 401]
    assert_rate_limited(client.get("/api/v1/users/me"))
    assert_rate_limited(client.get("/admin/login/"))
    assert APIClient(REMOTE_ADDR="198.51.100.11").get("/api/v1/users/me").status_code == 401


def test_health_and_metrics_are_not_rate_limited(settings):
    settings.RATELIMIT_ANON = "1/m"
    client = Client(REMOTE_ADDR="127.0.0.1")

    statuses = {client.get(path).status_code for path in ("/healthz", "/readyz", "/metrics") * 3}

    assert statuses == {200}


def test_a_junk_bearer_header_does_not_escape_the_anonymous_limit(settings):
    settings.RATELIMIT_ANON = "2/m"
    client = APIClient(REMOTE_ADDR="198.51.100.12", HTTP_AUTHORIZATION="Bearer not-a-token")

    # The login view ignores Authorization; the schema and the admin are not Bearer-authenticated either.
    for path in ("/api/v1/auth/token", "/api/v1/auth/token"):
        assert client.post(path, {"email": "x@example.com", "password": "p"}, format="json").status_code == 401
    assert_rate_limited(client.post("/api/v1/auth/token", {"email": "x@example.com", "password": "p"}, format="json"))
    assert_rate_limited(client.get("/admin/login/"))


def test_requests_to_another_host_header_are_counted_too(settings):
    settings.RATELIMIT_ANON = "1/m"
    client = Client(REMOTE_ADDR="198.51.100.13")

    client.get("/api/v1/users/me")

    assert_rate_limited(client.get("/api/v1/users/me", HTTP_HOST="localhost"))


# ---------------------------------------------------------------- client IP behind proxies


def test_spoofed_forwarded_for_without_trusted_proxies_cannot_bypass_a_limit(settings):
    settings.RATELIMIT_ANON = "2/m"
    statuses = [
        Client().get("/api/v1/users/me", REMOTE_ADDR="198.51.100.20", HTTP_X_FORWARDED_FOR=f"10.0.0.{n}").status_code
        for n in range(3)
    ]

    assert statuses == [401, 401, 429]


def test_spoofed_forwarded_for_behind_a_trusted_proxy_cannot_bypass_a_limit(user, settings):
    settings.TRUSTED_PROXY_COUNT = 1
    settings.RATELIMIT_LOGIN_IP = "2/m"
    # The client writes its own X-Forwarded-For; the proxy (REMOTE_ADDR) appends the address it saw.
    statuses = [
        APIClient()
        .post(
            "/api/v1/auth/token",
            {"email": f"spoof{n}@example.com", "password": "wrong-password"},
            format="json",
            REMOTE_ADDR="10.1.1.1",
            HTTP_X_FORWARDED_FOR=f"192.0.2.{n}, 203.0.113.50",
        )
        .status_code
        for n in range(3)
    ]

    assert statuses == [401, 401, 429]


def test_clients_behind_a_trusted_proxy_are_limited_one_by_one(settings):
    settings.TRUSTED_PROXY_COUNT = 1
    settings.RATELIMIT_ANON = "1/m"
    proxy = {"REMOTE_ADDR": "10.1.1.1"}

    assert Client().get("/api/v1/users/me", HTTP_X_FORWARDED_FOR="203.0.113.1", **proxy).status_code == 401
    assert Client().get("/api/v1/users/me", HTTP_X_FORWARDED_FOR="203.0.113.2", **proxy).status_code == 401
    assert_rate_limited(Client().get("/api/v1/users/me", HTTP_X_FORWARDED_FOR="203.0.113.1", **proxy))


# ---------------------------------------------------------------- endpoint limits


def test_registration_over_the_ip_limit_is_rate_limited(settings):
    settings.RATELIMIT_REGISTER_IP = "2/m"
    client = APIClient(REMOTE_ADDR="198.51.100.30")

    for n in range(2):
        response = client.post("/api/v1/users", {"email": f"reg{n}@example.com", "password": "x"}, format="json")
        assert response.status_code == 400
    assert_rate_limited(client.post("/api/v1/users", {"email": "reg9@example.com", "password": "x"}, format="json"))


def test_admin_login_over_the_ip_limit_is_rate_limited(settings):
    settings.RATELIMIT_ADMIN_LOGIN_IP = "2/m"
    client = Client(REMOTE_ADDR="198.51.100.40")

    for n in range(2):
        response = client.post("/admin/login/", {"username": f"admin{n}@example.com", "password": "wrong"})
        assert response.status_code == 200
    assert_rate_limited(client.post("/admin/login/", {"username": "admin9@example.com", "password": "wrong"}))


def test_admin_login_over_the_username_limit_is_rate_limited_from_any_ip(staff_user, settings):
    settings.RATELIMIT_ADMIN_LOGIN_USERNAME = "2/m"

    for n in range(2):
        response = Client(REMOTE_ADDR=f"198.51.100.{50 + n}").post(
            "/admin/login/", {"username": staff_user.email, "password": "wrong"}
        )
        assert response.status_code == 200
    response = Client(REMOTE_ADDR="198.51.100.59").post(
        "/admin/login/", {"username": staff_user.email.upper(), "password": DEFAULT_PASSWORD}
    )
    assert_rate_limited(response)


def test_admin_login_within_the_limits_logs_in(staff_user):
    response = Client().post("/admin/login/", {"username": staff_user.email, "password": DEFAULT_PASSWORD})

    assert response.status_code == 302


def test_limits_are_off_with_ratelimit_enable_false(user, settings):
    settings.RATELIMIT_ENABLE = False
    settings.RATELIMIT_ANON = settings.RATELIMIT_USER = settings.RATELIMIT_LOGIN_IP = "1/m"
    settings.RATELIMIT_ADMIN_LOGIN_IP = "1/m"

    client = bearer_client(login(user.email)["access"])
    login(user.email)

    assert {client.get("/api/v1/users/me").status_code for _ in range(3)} == {200}
    assert {APIClient().get("/api/v1/users/me").status_code for _ in range(3)} == {401}
    assert {Client().post("/admin/login/", {"username": "a", "password": "b"}).status_code for _ in range(3)} == {200}


# ---------------------------------------------------------------- the shared cache is down


def test_cache_down_anonymous_limit_fails_open_logged_and_counted(settings, caplog, monkeypatch):
    # The store warning is logged once per interval per process: an earlier outage test must not swallow this one.
    monkeypatch.setattr("core.ratelimit._store_warning.last", float("-inf"))
    settings.RATELIMIT_ANON = "1/m"
    before = sample(scrape(Client()), "ratelimit_store_errors_total", limit="anon", outcome="fail_open")
    settings.CACHES = dead_cache()

    statuses = [APIClient(REMOTE_ADDR="198.51.100.60").get("/api/v1/users/me").status_code for _ in range(3)]

    assert statuses == [401, 401, 401]
    samples = scrape(Client())
    assert sample(samples, "ratelimit_store_errors_total", limit="anon", outcome="fail_open") - before >= 3
    assert sample(samples, "dependency_up", dependency="cache") == 0.0
    assert any(r.name == "core.ratelimit" and r.levelno == logging.WARNING for r in caplog.records)


def test_cache_down_user_limit_fails_open(user, settings):
    settings.RATELIMIT_USER = "1/m"
    client = bearer_client(login(user.email)["access"])
    settings.CACHES = dead_cache()

    statuses = [client.get("/api/v1/users/me").status_code for _ in range(3)]

    assert statuses == [200, 200, 200]
    assert sample(scrape(Client()), "ratelimit_store_errors_total", limit="user", outcome="fail_open") >= 3


def test_cache_down_login_fails_closed_with_service_unavailable(user, settings):
    before = sample(scrape(Client()), "ratelimit_store_errors_total", limit="login-ip", outcome="fail_closed")
    settings.CACHES = dead_cache()

    response = APIClient().post(
        "/api/v1/auth/token", {"email": user.email, "password": DEFAULT_PASSWORD}, format="json"
    )

    assert_error(response, 503, "service_unavailable")
    after = sample(scrape(Client()), "ratelimit_store_errors_total", limit="login-ip", outcome="fail_closed")
    assert after - before == 1


def test_cache_down_admin_login_fails_closed_with_service_unavailable(staff_user, settings):
    settings.CACHES = dead_cache()

    response = Client().post("/admin/login/", {"username": staff_user.email, "password": DEFAULT_PASSWORD})

    assert_error(response, 503, "service_unavailable")


def test_cache_down_registration_fails_closed(settings):
    settings.CACHES = dead_cache()

    response = APIClient().post(
        "/api/v1/users", {"email": "while-down@example.com", "password": "a-long-passphrase-1"}, format="json"
    )

    assert_error(response, 503, "service_unavailable")
    assert not UserFactory._meta.model.objects.filter(email="while-down@example.com").exists()
