"""POST /api/v1/auth/token: log in with email and password, one answer for every failure, rate limits."""

import jwt
import pytest
from rest_framework.test import APIClient

from core.exceptions import AUTHENTICATION_FAILED, RATE_LIMITED, VALIDATION_ERROR
from tests.assertions import assert_error
from tests.conftest import bearer_client, login
from tests.factories import DEFAULT_PASSWORD, UserFactory
from users.models import Session

pytestmark = pytest.mark.django_db(transaction=True)

URL = "/api/v1/auth/token"


def claims(token: str) -> dict:
    return jwt.decode(token, options={"verify_signature": False})


def post_login(email, password=DEFAULT_PASSWORD, **extra):
    return APIClient().post(URL, {"email": email, "password": password}, format="json", **extra)


def body_without_request_id(response) -> dict:
    return {key: value for key, value in response.json().items() if key != "request_id"}


def test_login_returns_access_and_refresh_tokens(user):
    response = post_login(user.email)

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"access", "refresh"}
    assert claims(body["access"])["token_type"] == "access"
    assert claims(body["refresh"])["token_type"] == "refresh"
    assert claims(body["access"])["user_id"] == str(user.pk)
    assert bearer_client(body["access"]).get("/api/v1/users/me").json()["id"] == str(user.pk)


def test_login_tokens_carry_the_same_sid_of_a_new_session(user):
    tokens = login(user.email)

    sid = claims(tokens["access"])["sid"]
    assert claims(tokens["refresh"])["sid"] == sid
    session = Session.objects.get(pk=sid)
    assert session.user_id == user.pk
    assert session.ended_at is None


def test_each_login_opens_its_own_session(user):
    first, second = login(user.email), login(user.email)

    assert claims(first["access"])["sid"] != claims(second["access"])["sid"]
    assert Session.objects.filter(user=user, ended_at__isnull=True).count() == 2


def test_login_records_last_login(user):
    assert user.last_login is None

    login(user.email)

    user.refresh_from_db()
    assert user.last_login is not None


def test_login_with_email_in_another_case_succeeds(user):
    response = post_login(f"  {user.email.upper()} ")

    assert response.status_code == 200
    assert claims(response.json()["access"])["user_id"] == str(user.pk)


def test_wrong_password_unknown_email_and_inactive_user_get_the_same_401(user):
    inactive = UserFactory(inactive=True)

    wrong_password = post_login(user.email, "not-the-password")
    unknown_email = post_login("nobody@example.com")
    inactive_user = post_login(inactive.email)

    for response in (wrong_password, unknown_email, inactive_user):
        assert_error(response, 401, AUTHENTICATION_FAILED)
    assert body_without_request_id(wrong_password) == body_without_request_id(unknown_email)
    assert body_without_request_id(wrong_password) == body_without_request_id(inactive_user)
    assert not Session.objects.exists()


def test_login_checks_the_current_password_not_an_old_one(user):
    user.set_password("a-brand-new-password-42")
    user.save()

    assert_error(post_login(user.email), 401, AUTHENTICATION_FAILED)
    assert post_login(user.email, "a-brand-new-password-42").status_code == 200


@pytest.mark.parametrize(
    ("payload", "fields"),
    [
        ({}, ["email", "password"]),
        ({"email": "someone@example.com"}, ["password"]),
        ({"password": DEFAULT_PASSWORD}, ["email"]),
        ({"email": 42, "password": DEFAULT_PASSWORD}, ["email"]),
        ({"email": "someone@example.com", "password": ["list"]}, ["password"]),
    ],
)
def test_login_with_missing_or_mistyped_fields_returns_400(db, payload, fields):
    response = APIClient().post(URL, payload, format="json")

    assert_error(response, 400, VALIDATION_ERROR, fields=fields)


def test_login_with_form_encoded_body_returns_415(user):
    response = APIClient().post(URL, {"email": user.email, "password": DEFAULT_PASSWORD})

    assert_error(response, 415, "unsupported_media_type")


def test_login_trailing_slash_also_works(user):
    response = APIClient().post(URL + "/", {"email": user.email, "password": DEFAULT_PASSWORD}, format="json")

    assert response.status_code == 200


def test_login_is_rate_limited_per_ip(settings, user):
    # A day-long window: the test cannot straddle a window boundary.
    settings.RATELIMIT_LOGIN_IP = "3/d"
    for n in range(3):
        assert_error(post_login(f"stranger{n}@example.com", REMOTE_ADDR="10.1.1.1"), 401, AUTHENTICATION_FAILED)

    refused = post_login(user.email, REMOTE_ADDR="10.1.1.1")

    assert_error(refused, 429, RATE_LIMITED)
    assert 1 <= int(refused["Retry-After"]) <= 24 * 3600
    assert not Session.objects.exists()
    # Another client address is counted on its own.
    assert post_login(user.email, REMOTE_ADDR="10.1.1.2").status_code == 200


def test_login_is_rate_limited_per_email_across_ips(settings, user):
    settings.RATELIMIT_LOGIN_EMAIL = "3/d"
    for n in range(3):
        response = post_login(user.email, "wrong-password", REMOTE_ADDR=f"10.2.0.{n}")
        assert_error(response, 401, AUTHENTICATION_FAILED)

    # Counted on the lower-cased email: another case does not get a fresh budget.
    refused = post_login(user.email.upper(), REMOTE_ADDR="10.2.0.99")

    assert_error(refused, 429, RATE_LIMITED)
    assert 1 <= int(refused["Retry-After"]) <= 24 * 3600
    # Another email from the same addresses is not limited.
    other = UserFactory()
    assert post_login(other.email, REMOTE_ADDR="10.2.0.0").status_code == 200


def test_attempts_refused_for_their_ip_do_not_use_up_the_emails_limit(settings, user):
    settings.RATELIMIT_LOGIN_IP, settings.RATELIMIT_LOGIN_EMAIL = "2/d", "3/d"
    for _ in range(2):
        assert_error(post_login(user.email, "wrong-password", REMOTE_ADDR="10.3.0.1"), 401, AUTHENTICATION_FAILED)
    for _ in range(5):  # refused for the IP: the email's limit counts none of these
        assert_error(post_login(user.email, "wrong-password", REMOTE_ADDR="10.3.0.1"), 429, RATE_LIMITED)

    # The email's third request of the day, from another address: within its limit.
    assert post_login(user.email, REMOTE_ADDR="10.3.0.2").status_code == 200
    assert_error(post_login(user.email, REMOTE_ADDR="10.3.0.3"), 429, RATE_LIMITED)


def test_rate_limited_login_with_the_right_password_is_refused_without_checking_it(settings, user):
    settings.RATELIMIT_LOGIN_EMAIL = "2/d"
    post_login(user.email, "wrong-password")
    post_login(user.email, "wrong-password")

    refused = post_login(user.email)

    assert_error(refused, 429, RATE_LIMITED)
    assert "Retry-After" in refused
    assert not Session.objects.filter(user=user).exists()
    user.refresh_from_db()
    assert user.last_login is None


def test_login_under_the_default_limits_is_not_refused(user):
    for _ in range(5):
        assert post_login(user.email).status_code == 200


def test_a_login_writes_in_one_transaction_without_savepoints_or_needless_deletes(user):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        assert post_login(user.email).status_code == 200
    statements = [query["sql"].upper() for query in captured.captured_queries]
    assert not [sql for sql in statements if "SAVEPOINT" in sql], statements
    # No failure was ever counted for this email: nothing to clear.
    assert not [sql for sql in statements if sql.startswith("DELETE")], statements
    assert len([sql for sql in statements if sql.startswith('INSERT INTO "USERS_SESSION"')]) == 1


def test_a_login_clears_the_failures_counted_before_it(user):
    from users.models import LoginLockout

    assert_error(post_login(user.email, "wrong-password-1"), 401, AUTHENTICATION_FAILED)
    assert LoginLockout.objects.get(email=user.email).failures == 1
    assert post_login(user.email).status_code == 200
    assert not LoginLockout.objects.filter(email=user.email).exists()
