"""No user enumeration: login, reset and (when protected) registration answer alike for known and unknown emails."""

import pytest
from django.contrib.auth.hashers import MD5PasswordHasher
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from core.exceptions import VALIDATION_ERROR
from tests.assertions import assert_error
from tests.factories import DEFAULT_PASSWORD
from tests.users.lifecycle.support import messages_to
from users.models import User

pytestmark = pytest.mark.django_db(transaction=True)


class CountingHasher(MD5PasswordHasher):
    """The test suite's MD5 hasher, counting how often a password is hashed (checking hashes too)."""

    calls = 0

    def encode(self, password, salt):
        CountingHasher.calls += 1
        return super().encode(password, salt)


@pytest.fixture
def hasher_calls(settings):
    settings.PASSWORD_HASHERS = [f"{__name__}.CountingHasher"]
    CountingHasher.calls = 0

    def calls_during(action):
        before = CountingHasher.calls
        with CaptureQueriesContext(connection) as queries:
            response = action()
        return response, CountingHasher.calls - before, len(queries)

    return calls_during


def without_request_id(response) -> dict:
    return {k: v for k, v in response.json().items() if k != "request_id"}


def post(url, data):
    return APIClient().post(url, data, format="json")


def test_login_answer_and_work_are_the_same_for_a_known_and_an_unknown_email(user, hasher_calls):
    known, known_hashes, known_queries = hasher_calls(
        lambda: post("/api/v1/auth/token", {"email": user.email, "password": "wrong-password"})
    )
    unknown, unknown_hashes, unknown_queries = hasher_calls(
        lambda: post("/api/v1/auth/token", {"email": "nobody@example.com", "password": "wrong-password"})
    )

    assert known.status_code == unknown.status_code == 401
    assert without_request_id(known) == without_request_id(unknown)
    assert known_hashes == unknown_hashes == 1
    assert known_queries == unknown_queries


def test_reset_answer_and_work_are_the_same_for_a_known_and_an_unknown_email(user, hasher_calls):
    known, known_hashes, known_queries = hasher_calls(
        lambda: post("/api/v1/auth/password/reset", {"email": user.email})
    )
    unknown, unknown_hashes, unknown_queries = hasher_calls(
        lambda: post("/api/v1/auth/password/reset", {"email": "nobody@example.com"})
    )

    assert known.status_code == unknown.status_code == 202
    assert known.content == unknown.content
    assert known_hashes == unknown_hashes == 1
    assert known_queries == unknown_queries
    assert len(messages_to(user.email)) == 1 and messages_to("nobody@example.com") == []


def test_login_answer_is_the_same_for_an_inactive_account(hasher_calls):
    from tests.factories import UserFactory

    inactive = UserFactory(inactive=True)

    right, hashes, _ = hasher_calls(
        lambda: post("/api/v1/auth/token", {"email": inactive.email, "password": DEFAULT_PASSWORD})
    )
    unknown = post("/api/v1/auth/token", {"email": "nobody@example.com", "password": DEFAULT_PASSWORD})

    assert right.status_code == 401 and hashes == 1
    assert without_request_id(right) == without_request_id(unknown)


def test_taken_email_registration_is_a_400_by_default(user):
    response = post("/api/v1/users", {"email": user.email, "password": DEFAULT_PASSWORD})

    assert_error(response, 400, VALIDATION_ERROR, fields=["email"])


def test_protected_registration_answers_the_same_for_a_new_and_a_taken_email(user, settings, hasher_calls):
    settings.REGISTRATION_ENUMERATION_PROTECTION = True

    new, new_hashes, _ = hasher_calls(
        lambda: post("/api/v1/users", {"email": "fresh@example.com", "password": DEFAULT_PASSWORD})
    )
    taken, taken_hashes, _ = hasher_calls(lambda: post("/api/v1/users", {"email": user.email, "password": "x" * 12}))

    assert new.status_code == taken.status_code == 202
    assert new.content == taken.content
    assert "Location" not in new and "Location" not in taken
    assert new_hashes == taken_hashes == 1
    assert User.objects.filter(email="fresh@example.com").exists()
    assert User.objects.filter(email=user.email).count() == 1
    [notice] = messages_to(user.email)
    assert "already has one" in notice.body
    [verification] = messages_to("fresh@example.com")
    assert "verify-email" in verification.body


def test_protected_registration_still_rejects_a_weak_password_for_either_email(user, settings):
    settings.REGISTRATION_ENUMERATION_PROTECTION = True

    for email in ("fresh@example.com", user.email):
        response = post("/api/v1/users", {"email": email, "password": "123"})
        assert_error(response, 400, VALIDATION_ERROR, fields=["password"])
    assert messages_to(user.email) == []


def test_protected_registration_does_not_apply_to_staff(staff_user, auth_client, settings):
    settings.REGISTRATION_ENUMERATION_PROTECTION = True

    response = auth_client(staff_user).post(
        "/api/v1/users", {"email": "made@example.com", "password": DEFAULT_PASSWORD}, format="json"
    )

    assert response.status_code == 201
    assert response.json()["email"] == "made@example.com"
