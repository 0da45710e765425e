"""/healthz (the process is up) and /readyz (database and cache answer), for load balancers on any Host."""

import pytest

from tests.assertions import assert_error
from tests.core.conftest import database_outage, dead_cache

pytestmark = pytest.mark.django_db

# The readiness check closes a connection that failed, which inside a test's transaction would end that transaction.
outage = pytest.mark.django_db(transaction=True)

ANY_HOSTS = ["attacker.example", "10.0.0.7:8000", "[fd00::7]"]


@pytest.mark.parametrize("path", ["/healthz", "/healthz/"])
def test_healthz_answers_ok(plain_client, path):
    response = plain_client.get(path)

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert response["Content-Type"] == "application/json"
    assert response["Cache-Control"] == "no-store"


@pytest.mark.parametrize("host", ANY_HOSTS)
def test_healthz_answers_any_host(plain_client, host):
    response = plain_client.get("/healthz", HTTP_HOST=host)

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_healthz_does_not_need_the_database(plain_client):
    with database_outage():
        response = plain_client.get("/healthz")

    assert response.status_code == 200


def test_healthz_does_not_need_the_cache(plain_client, settings):
    settings.CACHES = dead_cache()

    assert plain_client.get("/healthz").status_code == 200


def test_healthz_answers_head(plain_client):
    assert plain_client.head("/healthz").status_code == 200


@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
def test_health_checks_refuse_other_methods(plain_client, path):
    response = plain_client.post(path)

    assert_error(response, 405, "method_not_allowed")
    assert response["Allow"] == "GET, HEAD"


@pytest.mark.parametrize("path", ["/readyz", "/readyz/"])
def test_readyz_answers_ok_when_database_and_cache_answer(plain_client, path):
    response = plain_client.get(path)

    assert response.status_code == 200
    assert response.json() == {"status": "ok", "checks": {"database": "ok", "cache": "ok"}}
    assert response["Cache-Control"] == "no-store"


@pytest.mark.parametrize("host", ANY_HOSTS)
def test_readyz_answers_any_host(plain_client, host):
    assert plain_client.get("/readyz", HTTP_HOST=host).status_code == 200


@outage
def test_readyz_names_the_database_when_it_is_down(plain_client):
    with database_outage():
        response = plain_client.get("/readyz")

    body = assert_error(response, 503, "service_unavailable")
    assert "database" in body["error"]
    assert "cache" not in body["error"]
    assert "db-internal-7" not in response.content.decode()


def test_readyz_names_the_cache_when_it_is_down(plain_client, settings):
    settings.CACHES = dead_cache()

    response = plain_client.get("/readyz")

    body = assert_error(response, 503, "service_unavailable")
    assert "cache" in body["error"]
    assert "database" not in body["error"]


@outage
def test_readyz_names_both_when_both_are_down(plain_client, settings):
    settings.CACHES = dead_cache()

    with database_outage():
        response = plain_client.get("/readyz")

    body = assert_error(response, 503, "service_unavailable")
    assert "cache" in body["error"] and "database" in body["error"]


@outage
def test_readyz_is_ready_again_once_the_database_is_back(plain_client):
    with database_outage():
        assert plain_client.get("/readyz").status_code == 503

    assert plain_client.get("/readyz").status_code == 200


@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
def test_health_checks_are_not_redirected_to_https(plain_client, settings, path):
    settings.SECURE_SSL_REDIRECT = True

    response = plain_client.get(path, HTTP_HOST="10.0.0.7")

    assert response.status_code == 200


def test_https_redirect_still_applies_to_the_api(plain_client, settings):
    settings.SECURE_SSL_REDIRECT = True

    response = plain_client.get("/api/v1/users/me")

    assert response.status_code == 301
    assert response["Location"].startswith("https://")
