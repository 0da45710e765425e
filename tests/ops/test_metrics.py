"""/metrics: Prometheus text, restricted to allowed networks or a bearer secret; what each metric counts."""

from unittest import mock

import pytest
from django.db import OperationalError
from django.db.backends.utils import CursorWrapper
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families
from rest_framework.test import APIClient

from tests.assertions import assert_error
from tests.conftest import login
from tests.factories import DEFAULT_PASSWORD
from tests.ops.conftest import sample, scrape

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("remote", ["127.0.0.1", "127.9.8.7", "::1"])
def test_loopback_client_reads_prometheus_text(remote):
    response = Client().get("/metrics", REMOTE_ADDR=remote)

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=0.0.4")
    names = {family.name for family in text_string_to_metric_families(response.content.decode())}
    assert {
        "http_requests",
        "http_request_duration_seconds",
        "auth_login_failures",
        "ratelimit_refused",
        "ratelimit_store_errors",
        "cache_requests",
        "db_errors",
        "dependency_up",
    } <= names


@pytest.mark.parametrize("remote", ["10.0.0.5", "192.168.1.20", "2001:db8::1"])
def test_other_client_is_refused_with_permission_denied(remote):
    assert_error(Client().get("/metrics", REMOTE_ADDR=remote), 403, "permission_denied")


def test_spoofed_forwarded_for_does_not_open_metrics():
    response = Client().get("/metrics", REMOTE_ADDR="203.0.113.9", HTTP_X_FORWARDED_FOR="127.0.0.1")

    assert_error(response, 403, "permission_denied")


def test_bearer_metrics_token_opens_metrics_from_anywhere(settings):
    settings.METRICS_TOKEN = "a-long-random-metrics-scrape-secret-0123456789"
    client = Client(REMOTE_ADDR="203.0.113.9")

    allowed = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {settings.METRICS_TOKEN}")
    wrong = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {settings.METRICS_TOKEN}x")

    assert allowed.status_code == 200
    assert b"http_requests_total" in allowed.content
    assert_error(wrong, 403, "permission_denied")


def test_configured_networks_replace_the_loopback_default(settings):
    settings.METRICS_ALLOWED_IPS = ["10.20.0.0/16"]

    assert Client().get("/metrics", REMOTE_ADDR="10.20.3.4").status_code == 200
    assert_error(Client().get("/metrics", REMOTE_ADDR="127.0.0.1"), 403, "permission_denied")


def test_metrics_answer_any_host_header():
    response = Client().get("/metrics", REMOTE_ADDR="127.0.0.1", HTTP_HOST="10.0.0.7:8000")

    assert response.status_code == 200


def test_post_to_metrics_is_method_not_allowed():
    assert_error(Client().post("/metrics", REMOTE_ADDR="127.0.0.1"), 405, "method_not_allowed")


def test_requests_are_counted_and_timed_by_route_template_method_and_status(user, auth_client):
    client = auth_client(user)
    before = scrape(Client())
    labels = {"route": "/api/v1/users/{id}", "method": "GET", "status": "200"}

    for _ in range(3):
        assert client.get(f"/api/v1/users/{user.pk}").status_code == 200
    assert client.get("/api/v1/users/00000000-0000-4000-8000-000000000000").status_code == 404

    after = scrape(Client())
    assert sample(after, "http_requests_total", **labels) - sample(before, "http_requests_total", **labels) == 3
    not_found = {**labels, "status": "404"}
    assert sample(after, "http_requests_total", **not_found) - sample(before, "http_requests_total", **not_found) == 1
    count = "http_request_duration_seconds_count"
    assert sample(after, count, **labels) - sample(before, count, **labels) == 3
    inf_bucket = {**labels, "le": "+Inf"}
    assert sample(after, "http_request_duration_seconds_bucket", **inf_bucket) == sample(after, count, **labels)
    assert not any(name == "http_requests_total" and str(user.pk) in str(lbl) for name, lbl in after)


def test_unknown_methods_share_one_label(api_client):
    before = scrape(Client())

    response = api_client.generic("BREW", "/api/v1/users")

    after = scrape(Client())
    labels = {"route": "/api/v1/users", "method": "OTHER", "status": str(response.status_code)}
    assert sample(after, "http_requests_total", **labels) - sample(before, "http_requests_total", **labels) == 1


def test_refused_logins_are_counted(user):
    before = sample(scrape(Client()), "auth_login_failures_total", endpoint="api")

    for password in ("wrong-password-1", "wrong-password-2"):
        response = APIClient().post("/api/v1/auth/token", {"email": user.email, "password": password}, format="json")
        assert response.status_code == 401
    login(user.email, DEFAULT_PASSWORD)

    assert sample(scrape(Client()), "auth_login_failures_total", endpoint="api") - before == 2


@pytest.mark.usefixtures("argon2_preferred")  # the service's hasher, not the tests' MD5
def test_password_hashes_are_timed_by_phase(user):
    # users/hashers.py: the wait for the process's turn at Argon2 (ARGON2_MAX_CONCURRENT), then the hash.
    user.set_password(DEFAULT_PASSWORD)
    user.save(update_fields=["password"])
    before = scrape(Client())

    login(user.email, DEFAULT_PASSWORD)

    after = scrape(Client())
    for phase in ("wait", "hash"):
        counted = sample(after, "password_hash_seconds_count", phase=phase)
        assert counted - sample(before, "password_hash_seconds_count", phase=phase) == 1, phase
    hashed = sample(after, "password_hash_seconds_sum", phase="hash") - sample(
        before, "password_hash_seconds_sum", phase="hash"
    )
    assert 0.01 < hashed < 5  # 100 MiB of Argon2: tens of milliseconds at least


def test_refused_admin_logins_are_counted(staff_user):
    before = sample(scrape(Client()), "auth_login_failures_total", endpoint="admin")

    response = Client().post("/admin/login/", {"username": staff_user.email, "password": "wrong-password"})

    assert response.status_code == 200  # the form again, with its error
    assert sample(scrape(Client()), "auth_login_failures_total", endpoint="admin") - before == 1


def test_rate_limited_requests_are_counted_by_limit(user, settings):
    settings.RATELIMIT_LOGIN_EMAIL = "1/m"
    before = sample(scrape(Client()), "ratelimit_refused_total", limit="login-email")
    attempt = {"email": user.email, "password": "wrong-password"}

    statuses = [APIClient().post("/api/v1/auth/token", attempt, format="json").status_code for _ in range(3)]

    assert statuses == [401, 429, 429]
    assert sample(scrape(Client()), "ratelimit_refused_total", limit="login-email") - before == 2


def test_dependencies_are_reported_up():
    samples = scrape(Client())

    assert sample(samples, "dependency_up", dependency="database") == 1.0
    assert sample(samples, "dependency_up", dependency="cache") == 1.0


def test_database_errors_that_reach_a_response_are_counted(user):
    before = sample(scrape(Client()), "db_errors_total", error="OperationalError")
    outage = OperationalError("connection to server failed")

    with mock.patch.object(CursorWrapper, "execute", side_effect=outage):
        response = APIClient().post(
            "/api/v1/auth/token", {"email": user.email, "password": DEFAULT_PASSWORD}, format="json"
        )

    assert_error(response, 503, "service_unavailable")
    assert sample(scrape(Client()), "db_errors_total", error="OperationalError") - before == 1
