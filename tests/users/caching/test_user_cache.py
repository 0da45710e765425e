"""The cached read path: zero SQL when warm, fresh after every write path, correct when the cache is down."""

import io
import logging

import pytest
from django.core.cache import CacheHandler
from django.core.management import call_command

from tests.assertions import assert_error
from tests.conftest import USES_REDIS, bearer_client, dead_cache, login
from tests.factories import UserFactory
from users.auth_state import USER_KEY
from users.models import User

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _shared_cache(settings):
    """One test process is one instance, so its local-memory cache counts as shared here."""
    settings.SHARED_STATE_CACHE = True


def _client_for(user):
    return bearer_client(login(user.email)["access"])


def test_warm_me_runs_zero_queries(django_assert_num_queries):
    user = UserFactory()
    client = _client_for(user)
    assert client.get("/api/v1/users/me").status_code == 200  # warms the cache
    with django_assert_num_queries(0):
        response = client.get("/api/v1/users/me")
    assert response.status_code == 200
    assert response.json()["email"] == user.email


def test_warm_retrieve_by_id_runs_zero_queries_for_self_and_staff(django_assert_num_queries):
    user, staff = UserFactory(), UserFactory(staff=True)
    own, staff_client = _client_for(user), _client_for(staff)
    path = f"/api/v1/users/{user.pk}"
    assert own.get(path).status_code == 200
    assert staff_client.get(path).status_code == 200
    with django_assert_num_queries(0):
        mine = own.get(path)
        theirs = staff_client.get(path)
    assert mine.content == theirs.content  # one cached value for every allowed reader
    assert mine.json()["id"] == str(user.pk)


def test_cold_read_loads_from_the_database_once(django_assert_max_num_queries):
    user = UserFactory()
    client = _client_for(user)
    from django.core.cache import cache

    cache.delete(USER_KEY.format(user.pk))
    with django_assert_max_num_queries(2):
        assert client.get("/api/v1/users/me").status_code == 200


def test_other_users_cached_body_is_not_served_to_a_non_staff_caller():
    user, other = UserFactory(), UserFactory()
    staff = _client_for(UserFactory(staff=True))
    assert staff.get(f"/api/v1/users/{other.pk}").status_code == 200  # other's body is now cached
    assert_error(_client_for(user).get(f"/api/v1/users/{other.pk}"), 404, "not_found")


def test_read_after_api_patch_returns_new_data():
    user = UserFactory(first_name="Old")
    client = _client_for(user)
    assert client.get("/api/v1/users/me").json()["first_name"] == "Old"
    assert client.patch("/api/v1/users/me", {"first_name": "New"}, format="json").status_code == 200
    assert client.get("/api/v1/users/me").json()["first_name"] == "New"


def test_read_after_api_put_by_staff_returns_new_data():
    user = UserFactory(last_name="Before")
    client, staff = _client_for(user), _client_for(UserFactory(staff=True))
    body = client.get("/api/v1/users/me").json()
    body["last_name"] = "After"
    assert staff.put(f"/api/v1/users/{user.pk}", body, format="json").status_code == 200
    assert client.get("/api/v1/users/me").json()["last_name"] == "After"
    assert staff.get(f"/api/v1/users/{user.pk}").json()["last_name"] == "After"


def test_read_after_email_change_shows_unverified_new_email():
    user = UserFactory(email_verified=True)
    client = _client_for(user)
    assert client.get("/api/v1/users/me").json()["email_verified"] is True
    assert client.patch("/api/v1/users/me", {"email": "Moved@Example.com"}, format="json").status_code == 200
    body = client.get("/api/v1/users/me").json()
    assert body["email"] == "moved@example.com" and body["email_verified"] is False


def test_read_after_model_save_anywhere_returns_new_data():
    user = UserFactory(first_name="Shell")
    client = _client_for(user)
    client.get("/api/v1/users/me")
    fresh = User.objects.get(pk=user.pk)
    fresh.first_name = "Saved"
    fresh.save()
    assert client.get("/api/v1/users/me").json()["first_name"] == "Saved"


def test_read_after_management_command_returns_new_data():
    user = UserFactory(first_name="Cmd")
    client = _client_for(user)
    client.get("/api/v1/users/me")
    code = f"from users.models import User; u = User.objects.get(pk='{user.pk}'); u.first_name = 'ByCommand'; u.save()"
    call_command("shell", command=code, stdout=io.StringIO())
    assert client.get("/api/v1/users/me").json()["first_name"] == "ByCommand"


def test_read_after_admin_change_returns_new_data(client):
    user = UserFactory(first_name="Admin")
    api = _client_for(user)
    api.get("/api/v1/users/me")
    superuser = UserFactory(superuser=True)
    client.force_login(superuser)
    form = {
        "email": user.email,
        "first_name": "ChangedInAdmin",
        "last_name": user.last_name,
        "is_active": "on",
        "date_joined_0": "2026-01-01",
        "date_joined_1": "00:00:00",
        "initial-date_joined_0": "2026-01-01",
        "initial-date_joined_1": "00:00:00",
    }
    response = client.post(f"/admin/users/user/{user.pk}/change/", form)
    assert response.status_code == 302, response.content[:2000]
    assert api.get("/api/v1/users/me").json()["first_name"] == "ChangedInAdmin"


def test_deactivation_and_deletion_refuse_a_warm_token():
    user, victim = UserFactory(), UserFactory()
    staff = _client_for(UserFactory(staff=True))
    user_client, victim_client = _client_for(user), _client_for(victim)
    assert user_client.get("/api/v1/users/me").status_code == 200
    assert victim_client.get("/api/v1/users/me").status_code == 200
    assert staff.patch(f"/api/v1/users/{user.pk}", {"is_active": False}, format="json").status_code == 200
    assert staff.delete(f"/api/v1/users/{victim.pk}").status_code == 204
    assert_error(user_client.get("/api/v1/users/me"), 401, "token_not_valid")
    assert_error(victim_client.get("/api/v1/users/me"), 401, "token_not_valid")
    assert_error(staff.get(f"/api/v1/users/{victim.pk}"), 404, "not_found")


@pytest.mark.skipif(not USES_REDIS, reason="needs the shared Redis of two instances (runs when REDIS_URL is set)")
def test_write_is_visible_to_another_instance_reading_the_same_redis():
    user = UserFactory(first_name="One")
    client = _client_for(user)
    client.get("/api/v1/users/me")
    other_instance = CacheHandler()["default"]  # a separate client, as another process would have
    assert b'"first_name":"One"' in other_instance.get(USER_KEY.format(user.pk))[3]

    assert client.patch("/api/v1/users/me", {"first_name": "Two"}, format="json").status_code == 200

    assert other_instance.get(USER_KEY.format(user.pk)) is None  # the old entry is gone for every instance
    client.get("/api/v1/users/me")  # the next reader fills it from the committed row
    assert b'"first_name":"Two"' in other_instance.get(USER_KEY.format(user.pk))[3]


def test_cache_down_serves_from_the_database_without_errors(settings, caplog, monkeypatch):
    monkeypatch.setattr("users.auth_state._cache_warning.last", float("-inf"))
    user = UserFactory(first_name="Durable")
    client = _client_for(user)
    settings.CACHES = dead_cache()
    with caplog.at_level(logging.WARNING, logger="users.auth_state"):
        for _ in range(3):
            response = client.get("/api/v1/users/me")
            assert response.status_code == 200
            assert response.json()["first_name"] == "Durable"
        assert client.patch("/api/v1/users/me", {"first_name": "StillWrites"}, format="json").status_code == 200
        assert client.get("/api/v1/users/me").json()["first_name"] == "StillWrites"
    warnings = [r for r in caplog.records if "cache unavailable" in r.getMessage()]
    assert 1 <= len(warnings) <= 2  # logged once per interval, not once per request


def test_unshared_cache_is_never_trusted_for_auth_state(settings, django_assert_num_queries):
    settings.SHARED_STATE_CACHE = False
    user = UserFactory()
    client = _client_for(user)
    client.get("/api/v1/users/me")
    with django_assert_num_queries(2):  # session + user, from the database every time
        assert client.get("/api/v1/users/me").status_code == 200


def test_cache_down_still_refuses_a_revoked_token(settings):
    user = UserFactory()
    tokens = login(user.email)
    client = bearer_client(tokens["access"])
    settings.CACHES = dead_cache()
    assert client.post("/api/v1/auth/logout").status_code == 204
    assert_error(client.get("/api/v1/users/me"), 401, "token_not_valid")


@pytest.mark.skipif(not USES_REDIS, reason="counts Redis round trips (runs when REDIS_URL is set)")
def test_warm_authenticated_read_is_one_redis_round_trip(monkeypatch):
    from redis.connection import AbstractConnection

    user = UserFactory()
    client = _client_for(user)
    assert client.get("/api/v1/users/me").status_code == 200  # warm
    writes = []
    send = AbstractConnection.send_packed_command

    def counted_send(self, command, *args, **kwargs):
        writes.append(command)
        return send(self, command, *args, **kwargs)

    monkeypatch.setattr(AbstractConnection, "send_packed_command", counted_send)
    response = client.get("/api/v1/users/me")
    assert response.status_code == 200 and response.json()["id"] == str(user.pk)
    # Session state, user entry and the per-user rate counter: one write to Redis (one round trip), nothing else.
    assert len(writes) == 1, writes
    sent = b"".join(writes if isinstance(writes[0], bytes) else writes[0])
    assert sent.count(b"MGET") == 1 and sent.count(b"INCR") == 1 and sent.count(b"EXPIRE") == 1
