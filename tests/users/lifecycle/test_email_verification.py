"""Email verification: registration mails a one-time link; following it verifies; resend; email change."""

from datetime import datetime, timedelta

import pytest
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from core.exceptions import EMAIL_NOT_VERIFIED, RATE_LIMITED, VALIDATION_ERROR
from tests.assertions import assert_error
from tests.conftest import login
from tests.factories import DEFAULT_PASSWORD, UserFactory
from tests.users.lifecycle.support import link_in, messages_to
from users.models import User
from users.tokens import EmailVerificationTokenGenerator, email_verification_token

pytestmark = pytest.mark.django_db(transaction=True)

VERIFY = "/api/v1/auth/email/verify"
RESEND = "/api/v1/auth/email/verify/resend"


def register(api_client, email="new@example.com"):
    response = api_client.post("/api/v1/users", {"email": email, "password": DEFAULT_PASSWORD}, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def test_registration_mails_a_link_that_verifies_the_email(api_client):
    body = register(api_client)
    assert body["email_verified"] is False

    [message] = messages_to("new@example.com", "confirm")
    response = api_client.post(VERIFY, link_in(message, "verify-email"), format="json")

    assert response.status_code == 204
    assert User.objects.get(pk=body["id"]).email_verified is True


def test_verification_mail_has_a_plain_and_an_html_body_with_the_same_link(api_client):
    register(api_client)

    [message] = messages_to("new@example.com")

    assert message.alternatives[0][1] == "text/html"
    assert "&amp;" not in message.body  # the plain part is not HTML-escaped
    link_in(message, "verify-email")  # asserts both parts carry it


def test_verification_link_works_only_once(api_client):
    register(api_client)
    params = link_in(messages_to("new@example.com")[0], "verify-email")
    assert api_client.post(VERIFY, params, format="json").status_code == 204

    assert_error(api_client.post(VERIFY, params, format="json"), 400, VALIDATION_ERROR, fields=["token"])


def test_expired_verification_token_is_rejected(api_client, user, settings):
    settings.EMAIL_VERIFICATION_TIMEOUT = 60
    params = {"uid": _uid(user), "token": _token_made_at(user, datetime.now() - timedelta(seconds=120))}

    assert_error(api_client.post(VERIFY, params, format="json"), 400, VALIDATION_ERROR, fields=["token"])
    assert User.objects.get(pk=user.pk).email_verified is False


def test_forged_or_malformed_verification_params_are_rejected(api_client, user):
    for params in (
        {"uid": _uid(user), "token": "abc-0123456789"},
        {"uid": "not-base64!", "token": email_verification_token.make_token(user)},
        {"uid": _uid(UserFactory.build()), "token": email_verification_token.make_token(user)},
    ):
        assert_error(api_client.post(VERIFY, params, format="json"), 400, VALIDATION_ERROR, fields=["token"])


def test_resend_mails_a_new_link_to_an_unverified_caller(auth_client, user):
    response = auth_client(user).post(RESEND)

    assert response.status_code == 202
    assert set(response.json()) == {"detail"}
    [message] = messages_to(user.email)
    assert link_in(message, "verify-email")["uid"] == _uid(user)


def test_resend_to_a_verified_caller_answers_the_same_and_mails_nothing(auth_client, user):
    User.objects.filter(pk=user.pk).update(email_verified=True)
    client = auth_client(user)

    response = client.post(RESEND)

    assert response.status_code == 202
    assert messages_to(user.email) == []


def test_resend_is_rate_limited(auth_client, user, settings):
    settings.RATELIMIT_VERIFY_RESEND = "2/h"
    client = auth_client(user)
    assert [client.post(RESEND).status_code for _ in range(2)] == [202, 202]

    response = client.post(RESEND)

    assert_error(response, 429, RATE_LIMITED)
    assert int(response["Retry-After"]) > 0
    assert len(messages_to(user.email)) == 2


def test_resend_needs_authentication(api_client):
    assert api_client.post(RESEND).status_code == 401


def test_email_change_clears_verification_and_mails_the_new_address(auth_client, user, api_client):
    User.objects.filter(pk=user.pk).update(email_verified=True)
    client = auth_client(user)

    response = client.patch("/api/v1/users/me", {"email": "moved@example.com"}, format="json")

    assert response.status_code == 200 and response.json()["email_verified"] is False
    assert messages_to(user.email) == []
    [message] = messages_to("moved@example.com")
    assert api_client.post(VERIFY, link_in(message, "verify-email"), format="json").status_code == 204
    assert User.objects.get(pk=user.pk).email_verified is True


def test_link_for_the_old_address_stops_working_after_an_email_change(auth_client, user, api_client):
    old_params = {"uid": _uid(user), "token": email_verification_token.make_token(user)}
    auth_client(user).patch("/api/v1/users/me", {"email": "moved@example.com"}, format="json")

    assert_error(api_client.post(VERIFY, old_params, format="json"), 400, VALIDATION_ERROR, fields=["token"])


def test_login_of_unverified_account_is_refused_when_verification_is_required(api_client, user, settings):
    settings.REQUIRE_EMAIL_VERIFICATION = True

    right = api_client.post("/api/v1/auth/token", {"email": user.email, "password": DEFAULT_PASSWORD}, format="json")
    wrong = api_client.post("/api/v1/auth/token", {"email": user.email, "password": "wrong-password"}, format="json")

    assert_error(right, 403, EMAIL_NOT_VERIFIED)
    assert_error(wrong, 401, "authentication_failed")


def test_login_after_verification_works_when_verification_is_required(api_client, settings):
    settings.REQUIRE_EMAIL_VERIFICATION = True
    register(api_client)
    api_client.post(VERIFY, link_in(messages_to("new@example.com")[0], "verify-email"), format="json")

    assert login("new@example.com")["access"]


def test_unverified_login_works_by_default(user):
    assert login(user.email)["access"]


def _uid(user) -> str:
    return urlsafe_base64_encode(force_bytes(user.pk))


def _token_made_at(user, when) -> str:
    """Make the token a link mailed at ``when`` (naive local time, as Django's generator uses) would carry."""
    generator = EmailVerificationTokenGenerator()
    generator._now = lambda: when
    return generator.make_token(user)
