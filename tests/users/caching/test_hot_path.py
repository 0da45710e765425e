"""The plain-view fast path of GET /users/me and /users/{id}: the viewset's answers, its limits, counted once."""

import pytest

from tests.assertions import assert_error
from tests.conftest import USES_REDIS, bearer_client, login
from tests.factories import UserFactory
from users.views import UserViewSet

pytestmark = pytest.mark.django_db(transaction=True)

# A JSON Accept header the fast path does not take as plain: the same GET, answered by the viewset (DRF).
VIEWSET_ACCEPT = {"HTTP_ACCEPT": "application/json; charset=utf-8"}


@pytest.fixture
def dispatches(monkeypatch):
    """Count the requests the viewset (DRF's dispatch) answered."""
    calls = []
    original = UserViewSet.dispatch

    def counting(self, request, *args, **kwargs):
        calls.append(request.path)
        return original(self, request, *args, **kwargs)

    monkeypatch.setattr(UserViewSet, "dispatch", counting)
    return calls


def _client_for(user):
    return bearer_client(login(user.email)["access"])


def _comparable(response) -> tuple:
    headers = {name: value for name, value in response.items() if name != "X-Request-ID"}
    return response.status_code, response.content, headers


@pytest.mark.parametrize(
    ("route", "reader"), [("me", "user"), ("me", "staff"), ("id", "user"), ("id", "staff reading another")]
)
def test_fast_answer_is_the_viewsets_answer(dispatches, route, reader):
    user = UserFactory(staff=reader == "staff")
    client = _client_for(UserFactory(staff=True) if reader == "staff reading another" else user)
    path = "/api/v1/users/me" if route == "me" else f"/api/v1/users/{user.pk}"

    fast = client.get(path)
    assert dispatches == []  # answered without DRF
    slow = client.get(path, **VIEWSET_ACCEPT)
    assert dispatches == [path]

    assert fast.status_code == 200
    assert fast.json()["id"] == str(user.pk)
    assert _comparable(fast) == _comparable(slow)


@pytest.mark.parametrize("accept", ["", "*/*", "application/json"])
def test_plain_accept_headers_take_the_fast_path(dispatches, accept):
    client = _client_for(UserFactory())
    assert client.get("/api/v1/users/me", HTTP_ACCEPT=accept).status_code == 200
    assert dispatches == []


def test_no_credentials_get_the_viewsets_401(dispatches, api_client):
    response = api_client.get("/api/v1/users/me")
    assert_error(response, 401, "not_authenticated")
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert len(dispatches) == 1


@pytest.mark.parametrize("header", ["Bearer not-a-jwt", "Bearer a b", "Bearer"])
def test_refused_tokens_get_the_viewsets_401(dispatches, api_client, header):
    response = api_client.get("/api/v1/users/me", HTTP_AUTHORIZATION=header)
    assert_error(response, 401, "token_not_valid")
    assert len(dispatches) == 1


def test_a_logged_out_token_is_refused_at_once(dispatches):
    tokens = login(UserFactory().email)
    client = bearer_client(tokens["access"])
    assert client.get("/api/v1/users/me").status_code == 200
    assert client.post("/api/v1/auth/logout").status_code == 204
    assert_error(client.get("/api/v1/users/me"), 401, "token_not_valid")


def test_another_users_id_is_the_viewsets_404(dispatches):
    other = UserFactory()
    response = _client_for(UserFactory()).get(f"/api/v1/users/{other.pk}")
    assert_error(response, 404, "not_found")
    assert len(dispatches) == 1


@pytest.mark.parametrize(
    ("extra", "status"),
    [
        ({"HTTP_ACCEPT": "text/html"}, 406),
        ({"QUERY_STRING": "format=json"}, 200),
        ({"QUERY_STRING": "format=xml"}, 404),
    ],
)
def test_other_negotiations_are_the_viewsets(dispatches, extra, status):
    response = _client_for(UserFactory()).get("/api/v1/users/me", **extra)
    assert response.status_code == status
    assert response["Content-Type"].startswith("application/json")
    assert len(dispatches) == 1


def test_head_and_options_are_the_viewsets(dispatches):
    client = _client_for(UserFactory())
    assert client.head("/api/v1/users/me").status_code == 200
    assert client.options("/api/v1/users/me").status_code == 200
    assert len(dispatches) == 2


def test_each_request_counts_once_against_the_per_user_limit(settings, dispatches):
    settings.RATELIMIT_USER = "3/m"
    other = UserFactory()
    client = _client_for(UserFactory())
    assert client.get("/api/v1/users/me").status_code == 200  # 1: fast
    assert_error(client.get(f"/api/v1/users/{other.pk}"), 404, "not_found")  # 2: handed to the viewset
    assert client.get("/api/v1/users/me").status_code == 200  # 3: fast
    # A request counted twice on the way to the viewset would have been refused above.
    response = client.get("/api/v1/users/me")
    assert_error(response, 429, "rate_limited")
    assert int(response["Retry-After"]) >= 1
    assert len(dispatches) == 2


def test_the_limit_switched_off_still_serves_fast(settings, dispatches):
    settings.RATELIMIT_ENABLE = False
    client = _client_for(UserFactory())
    for _ in range(3):
        assert client.get("/api/v1/users/me").status_code == 200
    assert dispatches == []


def test_head_on_me_reads_and_never_writes():
    # DRF routes HEAD to the action's handler, which must take the read branch, whatever body comes with it.
    user = UserFactory(first_name="Before")
    client = _client_for(user)
    response = client.generic("HEAD", "/api/v1/users/me", '{"first_name": "After"}', content_type="application/json")
    assert response.status_code == 200
    assert response.content == b""
    user.refresh_from_db()
    assert user.first_name == "Before"


def test_options_on_me_describes_the_route():
    # DRF's metadata asks the viewset for the object; /users/me has no id in its URL (it once answered 500).
    response = _client_for(UserFactory()).options("/api/v1/users/me")
    assert response.status_code == 200
    assert response["Allow"] == "GET, PUT, PATCH, DELETE, HEAD, OPTIONS"
    assert "PUT" in response.json()["actions"]


def test_a_dead_database_while_reading_the_body_is_one_503(dispatches, monkeypatch):
    from django.db import OperationalError

    from users import selectors

    staff, other = UserFactory(staff=True), UserFactory()
    client = _client_for(staff)
    calls = []

    def database_down(user_id):
        calls.append(user_id)
        raise OperationalError("connection refused")

    monkeypatch.setattr(selectors, "user_body_get", database_down)
    assert_error(client.get(f"/api/v1/users/{other.pk}"), 503, "service_unavailable")
    assert len(calls) == 1  # not tried a second time through the viewset
    assert dispatches == []


@pytest.mark.redis
@pytest.mark.skipif(not USES_REDIS, reason="needs REDIS_URL: the connection Redis closes is a real one")
def test_a_connection_redis_closed_is_reconnected_once_and_the_read_stays_cached(settings, django_assert_num_queries):
    import redis
    from django.conf import settings as django_settings

    settings.SHARED_STATE_CACHE = True
    client = _client_for(UserFactory())
    assert client.get("/api/v1/users/me").status_code == 200  # warm, and this thread's connection is open
    from users import auth_state

    host, port = auth_state._own.connection._sock.getsockname()[:2]  # this thread's own connection, as Redis sees it
    admin = redis.Redis.from_url(django_settings.REDIS_URL)
    try:
        killed = admin.client_kill_filter(_id=None, addr=f"{host}:{port}")  # as a Redis restart or idle timeout would
    finally:
        admin.close()
    assert killed == 1

    with django_assert_num_queries(0):  # answered from Redis after one reconnect, not from the database
        assert client.get("/api/v1/users/me").status_code == 200
