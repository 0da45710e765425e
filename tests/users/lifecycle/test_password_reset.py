"""Password reset: 202 for any email, a one-time expiring link by mail; confirming it ends every session."""

from datetime import datetime, timedelta

import pytest
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from core.exceptions import RATE_LIMITED, TOKEN_NOT_VALID, VALIDATION_ERROR
from tests.assertions import assert_error
from tests.conftest import bearer_client, login
from tests.factories import DEFAULT_PASSWORD, UserFactory
from tests.users.lifecycle.support import link_in, messages_to
from users.models import Session, User
from users.tokens import PasswordResetLinkTokenGenerator, password_reset_token

pytestmark = pytest.mark.django_db(transaction=True)

RESET = "/api/v1/auth/password/reset"
CONFIRM = "/api/v1/auth/password/reset/confirm"
NEW_PASSWORD = "a-brand-new-passphrase"


def request_reset(api_client, email):
    response = api_client.post(RESET, {"email": email}, format="json")
    assert response.status_code == 202, response.content
    return response


def reset_link(api_client, user) -> dict:
    request_reset(api_client, user.email)
    [message] = messages_to(user.email, "reset")
    return link_in(message, "reset-password")


def test_reset_link_from_the_mail_sets_a_new_password(api_client, user):
    params = reset_link(api_client, user)

    response = api_client.post(CONFIRM, {**params, "new_password": NEW_PASSWORD}, format="json")

    assert response.status_code == 204
    assert login(user.email, NEW_PASSWORD)["access"]
    assert_error(
        api_client.post("/api/v1/auth/token", {"email": user.email, "password": DEFAULT_PASSWORD}, format="json"),
        401,
        "authentication_failed",
    )


def test_reset_request_for_an_unknown_email_answers_202_and_mails_nothing(api_client):
    response = request_reset(api_client, "nobody@example.com")

    assert set(response.json()) == {"detail"}
    assert messages_to("nobody@example.com") == []


def test_reset_request_for_an_inactive_account_mails_nothing(api_client):
    user = UserFactory(inactive=True)

    request_reset(api_client, user.email)

    assert messages_to(user.email) == []


def test_reset_token_works_only_once(api_client, user):
    params = reset_link(api_client, user)
    assert api_client.post(CONFIRM, {**params, "new_password": NEW_PASSWORD}, format="json").status_code == 204

    again = api_client.post(CONFIRM, {**params, "new_password": "another-new-passphrase"}, format="json")

    assert_error(again, 400, VALIDATION_ERROR, fields=["token"])
    assert login(user.email, NEW_PASSWORD)["access"]


def test_expired_reset_token_is_rejected(api_client, user, settings):
    settings.PASSWORD_RESET_TIMEOUT = 3600
    generator = PasswordResetLinkTokenGenerator()
    generator._now = lambda: datetime.now() - timedelta(seconds=3601)  # a link mailed an hour and a second ago
    params = {"uid": urlsafe_base64_encode(force_bytes(user.pk)), "token": generator.make_token(user)}

    response = api_client.post(CONFIRM, {**params, "new_password": NEW_PASSWORD}, format="json")

    assert_error(response, 400, VALIDATION_ERROR, fields=["token"])
    assert User.objects.get(pk=user.pk).check_password(DEFAULT_PASSWORD)


def test_reset_token_of_the_verification_kind_is_rejected(api_client, user):
    from users.tokens import email_verification_token

    params = {"uid": urlsafe_base64_encode(force_bytes(user.pk)), "token": email_verification_token.make_token(user)}

    response = api_client.post(CONFIRM, {**params, "new_password": NEW_PASSWORD}, format="json")

    assert_error(response, 400, VALIDATION_ERROR, fields=["token"])


def test_weak_new_password_is_rejected_and_keeps_the_link_usable(api_client, user):
    params = reset_link(api_client, user)

    weak = api_client.post(CONFIRM, {**params, "new_password": "12345"}, format="json")

    assert_error(weak, 400, VALIDATION_ERROR, fields=["new_password"])
    assert api_client.post(CONFIRM, {**params, "new_password": NEW_PASSWORD}, format="json").status_code == 204


def test_reset_ends_every_session_of_the_user(api_client, user):
    first, second = login(user.email), login(user.email)
    params = reset_link(api_client, user)

    api_client.post(CONFIRM, {**params, "new_password": NEW_PASSWORD}, format="json")

    for tokens in (first, second):
        assert_error(bearer_client(tokens["access"]).get("/api/v1/users/me"), 401, TOKEN_NOT_VALID)
        refreshed = api_client.post("/api/v1/auth/token/refresh", {"refresh": tokens["refresh"]}, format="json")
        assert_error(refreshed, 401, TOKEN_NOT_VALID)
    assert set(Session.objects.filter(user=user).values_list("end_reason", flat=True)) == {"password_reset"}


def test_reset_link_of_another_user_does_not_apply(api_client, user, other_user):
    params = {
        "uid": urlsafe_base64_encode(force_bytes(other_user.pk)),
        "token": password_reset_token.make_token(user),
    }

    response = api_client.post(CONFIRM, {**params, "new_password": NEW_PASSWORD}, format="json")

    assert_error(response, 400, VALIDATION_ERROR, fields=["token"])


def test_reset_request_is_rate_limited_per_email(api_client, user, settings):
    settings.RATELIMIT_RESET_EMAIL = "3/h"
    for _ in range(3):
        request_reset(api_client, user.email)

    response = api_client.post(RESET, {"email": user.email.upper()}, format="json")

    assert_error(response, 429, RATE_LIMITED)
    assert len(messages_to(user.email)) == 3


def test_reset_request_is_rate_limited_per_ip(api_client, settings):
    settings.RATELIMIT_RESET_IP = "2/h"
    request_reset(api_client, "a@example.com")
    request_reset(api_client, "b@example.com")

    assert_error(api_client.post(RESET, {"email": "c@example.com"}, format="json"), 429, RATE_LIMITED)


def test_reset_request_with_a_malformed_email_is_a_validation_error(api_client):
    assert_error(api_client.post(RESET, {"email": "not-an-email"}, format="json"), 400, VALIDATION_ERROR)
