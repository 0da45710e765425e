"""users.auth_state: session and user state in the shared cache; every revocation reaches every instance at once."""

import uuid
from datetime import timedelta

import jwt
import pytest
import redis
from django.conf import settings as django_settings
from django.core.cache import CacheHandler, cache
from django.db import connection, transaction
from django.utils import timezone

from core.exceptions import TOKEN_NOT_VALID
from tests.assertions import assert_error
from tests.conftest import USES_REDIS, bearer_client, login
from tests.factories import DEFAULT_PASSWORD
from users.auth_state import GONE, SESSION_KEY, USER_KEY, auth_user_get
from users.models import Session
from users.tokens import session_issue, session_revoke, session_rotate

pytestmark = pytest.mark.django_db(transaction=True)

ME = "/api/v1/users/me"


@pytest.fixture
def shared_cache(settings):
    """One test process is one instance, so its local-memory cache may stand for the shared one."""
    settings.SHARED_STATE_CACHE = True


def sid(token: str) -> uuid.UUID:
    return uuid.UUID(jwt.decode(token, options={"verify_signature": False})["sid"])


def issue(user):
    return session_issue(user=user, ip="127.0.0.1", user_agent="pytest")


def logout(tokens, _user, _staff):
    return bearer_client(tokens["access"]).post("/api/v1/auth/logout")


def logout_all_from_another_session(tokens, user, _staff):
    return bearer_client(login(user.email)["access"]).post("/api/v1/auth/logout-all")


def delete_from_another_session(tokens, user, _staff):
    other = bearer_client(login(user.email)["access"])
    return other.delete(f"/api/v1/auth/sessions/{sid(tokens['access'])}")


def password_change_from_another_session(tokens, user, _staff):
    other = bearer_client(login(user.email)["access"])
    payload = {"current_password": DEFAULT_PASSWORD, "new_password": "another-fine-passphrase-9"}
    return other.post("/api/v1/auth/password/change", payload, format="json")


def deactivation_by_staff(tokens, user, staff):
    staff_client = bearer_client(login(staff.email)["access"])
    return staff_client.patch(f"/api/v1/users/{user.pk}", {"is_active": False}, format="json")


def deletion_by_staff(tokens, user, staff):
    return bearer_client(login(staff.email)["access"]).delete(f"/api/v1/users/{user.pk}")


REVOCATIONS = [
    logout,
    logout_all_from_another_session,
    delete_from_another_session,
    password_change_from_another_session,
    deactivation_by_staff,
    deletion_by_staff,
]


@pytest.mark.parametrize("shared", [True, False], ids=["shared-cache", "unshared-cache"])
@pytest.mark.parametrize("revoke", REVOCATIONS)
def test_revocation_refuses_a_token_whose_state_was_cached(settings, user, staff_user, shared, revoke):
    settings.SHARED_STATE_CACHE = shared
    tokens = login(user.email)
    client = bearer_client(tokens["access"])
    assert client.get(ME).status_code == 200  # warms the auth state, if it is cached at all
    if shared:
        assert cache.get(SESSION_KEY.format(sid(tokens["access"]))) not in (None, GONE)

    assert revoke(tokens, user, staff_user).status_code in (200, 204)

    # Nothing is cleared by the test: the revocation itself must reach the state this request reads.
    assert_error(client.get(ME), 401, TOKEN_NOT_VALID)


def test_ended_session_leaves_a_tombstone_in_the_shared_cache(shared_cache, user):
    tokens = login(user.email)
    key = SESSION_KEY.format(sid(tokens["access"]))
    bearer_client(tokens["access"]).get(ME)

    bearer_client(tokens["access"]).post("/api/v1/auth/logout")

    assert cache.get(key) == GONE


def test_revocation_drops_the_cached_state_before_its_transaction_commits(shared_cache, user):
    pair = issue(user)
    key = SESSION_KEY.format(pair.session_id)
    assert auth_user_get(session_id=pair.session_id, user_id=user.pk) is not None
    assert cache.get(key) not in (None, GONE)

    with transaction.atomic():
        session_revoke(user_id=user.pk, session_id=pair.session_id)
        # A reader now misses the cache and reads the database, never the stale open state.
        assert cache.get(key) is None

    assert cache.get(key) == GONE
    assert auth_user_get(session_id=pair.session_id, user_id=user.pk) is None


def test_auth_user_get_returns_the_caller_with_its_flags(shared_cache, staff_user):
    pair = issue(staff_user)

    caller = auth_user_get(session_id=pair.session_id, user_id=staff_user.pk)

    assert caller is not None
    assert caller.pk == staff_user.pk
    assert caller.session_id == pair.session_id
    assert caller.is_authenticated is True
    assert (caller.is_active, caller.is_staff, caller.is_superuser) == (True, True, False)


def test_warm_auth_state_costs_no_query(shared_cache, user, django_assert_num_queries):
    pair = issue(user)
    assert auth_user_get(session_id=pair.session_id, user_id=user.pk) is not None

    with django_assert_num_queries(0):
        assert auth_user_get(session_id=pair.session_id, user_id=user.pk) is not None


def test_unshared_cache_reads_the_database_every_time(settings, user, django_assert_num_queries):
    settings.SHARED_STATE_CACHE = False
    pair = issue(user)
    assert auth_user_get(session_id=pair.session_id, user_id=user.pk) is not None

    with django_assert_num_queries(2):
        assert auth_user_get(session_id=pair.session_id, user_id=user.pk) is not None
    assert cache.get(SESSION_KEY.format(pair.session_id)) is None


def test_unknown_session_is_refused_and_remembered_as_gone(shared_cache, user):
    unknown = uuid.uuid4()

    assert auth_user_get(session_id=unknown, user_id=user.pk) is None

    assert cache.get(SESSION_KEY.format(unknown)) == GONE


def test_session_of_another_user_is_refused_even_when_both_are_cached(shared_cache, user, other_user):
    mine, theirs = issue(user), issue(other_user)
    assert auth_user_get(session_id=mine.session_id, user_id=user.pk) is not None
    assert auth_user_get(session_id=theirs.session_id, user_id=other_user.pk) is not None

    assert auth_user_get(session_id=theirs.session_id, user_id=user.pk) is None
    assert auth_user_get(session_id=mine.session_id, user_id=other_user.pk) is None


def test_expired_session_is_refused_from_its_cached_state(settings, shared_cache, user):
    settings.JWT_REFRESH_TTL = 0  # the session expires the second it opens
    pair = issue(user)
    assert cache.get(SESSION_KEY.format(pair.session_id)) not in (None, GONE)

    assert auth_user_get(session_id=pair.session_id, user_id=user.pk) is None


def test_expired_session_is_refused_from_the_database(shared_cache, user):
    pair = issue(user)
    Session.objects.filter(pk=pair.session_id).update(expires_at=timezone.now() - timedelta(seconds=1))
    cache.delete(SESSION_KEY.format(pair.session_id))

    assert auth_user_get(session_id=pair.session_id, user_id=user.pk) is None


def test_user_saved_inactive_outside_the_services_is_refused(shared_cache, user):
    pair = issue(user)
    assert auth_user_get(session_id=pair.session_id, user_id=user.pk) is not None

    user.is_active = False
    user.save()

    assert auth_user_get(session_id=pair.session_id, user_id=user.pk) is None


def test_deleted_user_is_refused_and_remembered_as_gone(shared_cache, user):
    pair = issue(user)
    assert auth_user_get(session_id=pair.session_id, user_id=user.pk) is not None

    user.delete()

    assert auth_user_get(session_id=pair.session_id, user_id=user.pk) is None
    assert cache.get(USER_KEY.format(user.pk)) == GONE


def test_last_used_at_is_written_when_older_than_a_minute(shared_cache, user):
    pair = issue(user)
    long_ago = timezone.now() - timedelta(minutes=5)
    Session.objects.filter(pk=pair.session_id).update(last_used_at=long_ago)
    cache.delete(SESSION_KEY.format(pair.session_id))

    assert auth_user_get(session_id=pair.session_id, user_id=user.pk) is not None

    last_used = Session.objects.get(pk=pair.session_id).last_used_at
    assert timezone.now() - last_used < timedelta(seconds=5)


def test_last_used_at_is_not_written_within_the_minute(shared_cache, user):
    pair = issue(user)
    recent = timezone.now() - timedelta(seconds=20)
    Session.objects.filter(pk=pair.session_id).update(last_used_at=recent)
    cache.delete(SESSION_KEY.format(pair.session_id))

    assert auth_user_get(session_id=pair.session_id, user_id=user.pk) is not None

    assert Session.objects.get(pk=pair.session_id).last_used_at == recent


def test_sessions_list_shows_last_used_at_after_a_request(shared_cache, user):
    tokens = login(user.email)
    long_ago = timezone.now() - timedelta(minutes=10)
    Session.objects.filter(pk=sid(tokens["access"])).update(last_used_at=long_ago)
    cache.delete(SESSION_KEY.format(sid(tokens["access"])))

    listed = bearer_client(tokens["access"]).get("/api/v1/auth/sessions").json()

    assert listed[0]["last_used_at"] is not None
    assert Session.objects.get(pk=sid(tokens["access"])).last_used_at > long_ago


@pytest.mark.redis
@pytest.mark.skipif(not USES_REDIS, reason="needs REDIS_URL: two instances sharing one Redis")
def test_another_instance_on_the_same_redis_sees_the_revocation(settings, user, monkeypatch):
    settings.SHARED_STATE_CACHE = True
    tokens = login(user.email)
    client = bearer_client(tokens["access"])
    assert client.get(ME).status_code == 200
    key = cache.make_key(SESSION_KEY.format(sid(tokens["access"])))
    # A client of its own, on its own connection, as another process would have.
    other_connection = redis.Redis.from_url(django_settings.REDIS_URL)
    other_instance = CacheHandler()["default"]
    try:
        assert other_connection.exists(key)
        assert other_instance.client.decode(other_connection.get(key)) != GONE

        assert client.post("/api/v1/auth/logout").status_code == 204

        assert other_instance.client.decode(other_connection.get(key)) == GONE
        monkeypatch.setattr("users.auth_state.caches", {"default": other_instance})
        assert_error(client.get(ME), 401, TOKEN_NOT_VALID)
    finally:
        other_connection.close()


def test_logout_racing_a_last_used_write_still_leaves_the_session_refused(shared_cache, user):
    pair = issue(user)
    # A stale last_used_at and a cold cache: the next check reads the session and writes last_used_at.
    Session.objects.filter(pk=pair.session_id).update(last_used_at=timezone.now() - timedelta(minutes=5))
    cache.delete(SESSION_KEY.format(pair.session_id))
    raced = []

    def logout_right_after_the_touch(execute, sql, params, many, context):
        result = execute(sql, params, many, context)
        if not raced and sql.lstrip().upper().startswith("UPDATE") and "last_used_at" in sql:
            raced.append(True)
            # Another instance ends the session between this reader's UPDATE and its next cache write.
            session_revoke(user_id=user.pk, session_id=pair.session_id)
        return result

    with connection.execute_wrapper(logout_right_after_the_touch):
        auth_user_get(session_id=pair.session_id, user_id=user.pk)

    assert raced
    assert auth_user_get(session_id=pair.session_id, user_id=user.pk) is None


def test_logout_committed_before_a_refresh_publishes_its_state_still_leaves_the_session_refused(shared_cache, user):
    pair = issue(user)

    with transaction.atomic():
        # Runs first after the commit: a logout lands between the refresh's commit and its cache write.
        transaction.on_commit(lambda: session_revoke(user_id=user.pk, session_id=pair.session_id))
        session_rotate(refresh=pair.refresh)

    assert cache.get(SESSION_KEY.format(pair.session_id)) == GONE
    assert auth_user_get(session_id=pair.session_id, user_id=user.pk) is None


def test_logout_all_committed_before_a_login_publishes_its_session_still_refuses_its_tokens(
    shared_cache, user, monkeypatch, django_assert_num_queries
):
    from users import auth_state
    from users.tokens import session_revoke_all

    store = auth_state._session_open_store

    def logout_all_lands_first(session_id, key, state):
        # Another instance ends every session of the user between the login's commit and its cache write.
        session_revoke_all(user_id=user.pk)
        store(session_id, key, state)

    monkeypatch.setattr(auth_state, "_session_open_store", logout_all_lands_first)
    tokens = login(user.email)
    monkeypatch.undo()

    assert cache.get(SESSION_KEY.format(sid(tokens["access"]))) == GONE
    with django_assert_num_queries(0):  # refused from the cached tombstone, not from the database
        assert_error(bearer_client(tokens["access"]).get(ME), 401, TOKEN_NOT_VALID)
