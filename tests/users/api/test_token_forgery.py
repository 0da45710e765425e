"""Forged, tampered, expired and misused tokens, and malformed Authorization headers: all refused with 401."""

import base64
import json
import time
import uuid

import jwt
import pytest
from django.conf import settings
from rest_framework.test import APIClient

from core.exceptions import NOT_AUTHENTICATED, TOKEN_NOT_VALID
from tests.assertions import assert_error
from tests.conftest import bearer_client, login

pytestmark = pytest.mark.django_db(transaction=True)

ME = "/api/v1/users/me"


def claims(token: str) -> dict:
    return jwt.decode(token, options={"verify_signature": False})


def sign(payload: dict, *, key=None, algorithm="HS256") -> str:
    return jwt.encode(payload, settings.SIMPLE_JWT["SIGNING_KEY"] if key is None else key, algorithm=algorithm)


def b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def get_me(token: str):
    return bearer_client(token).get(ME)


def with_header(value: str):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=value)
    return client.get(ME)


@pytest.fixture
def tokens(user):
    return login(user.email)


@pytest.fixture
def access_claims(tokens):
    return claims(tokens["access"])


def test_resigned_genuine_claims_are_accepted(tokens, access_claims):
    # The control for every forgery below: the helper's tokens pass when nothing is wrong with them.
    assert get_me(sign(access_claims)).status_code == 200


def test_token_with_alg_none_is_refused(access_claims):
    token = jwt.encode(access_claims, None, algorithm="none")

    assert token.endswith(".")
    assert_error(get_me(token), 401, TOKEN_NOT_VALID)


def test_unsigned_token_with_alg_none_header_and_stripped_signature_is_refused(tokens):
    _header, payload, _signature = tokens["access"].split(".")

    assert_error(get_me(f"{b64({'alg': 'none', 'typ': 'JWT'})}.{payload}."), 401, TOKEN_NOT_VALID)


def test_token_signed_with_another_key_is_refused(access_claims):
    assert_error(get_me(sign(access_claims, key="someone-elses-signing-key-of-good-length")), 401, TOKEN_NOT_VALID)


@pytest.mark.filterwarnings("ignore:The HMAC key is")  # PyJWT's advice on HS512 key length: not the subject here
def test_token_signed_with_hs512_and_the_right_key_is_refused(access_claims):
    token = sign(access_claims, algorithm="HS512")

    assert jwt.get_unverified_header(token)["alg"] == "HS512"
    assert_error(get_me(token), 401, TOKEN_NOT_VALID)


def test_token_claiming_rs256_is_refused(tokens):
    # The header names RS256; the signature is the genuine HS256 one. The verifier must not follow the header.
    _header, payload, signature = tokens["access"].split(".")

    assert_error(get_me(f"{b64({'alg': 'RS256', 'typ': 'JWT'})}.{payload}.{signature}"), 401, TOKEN_NOT_VALID)


def test_expired_token_is_refused(access_claims):
    now = int(time.time())

    token = sign(access_claims | {"iat": now - 3600, "exp": now - 1})

    assert_error(get_me(token), 401, TOKEN_NOT_VALID)


def test_token_with_nbf_in_the_future_is_refused(access_claims):
    assert_error(get_me(sign(access_claims | {"nbf": int(time.time()) + 300})), 401, TOKEN_NOT_VALID)


def test_token_with_a_tampered_user_id_is_refused(tokens, other_user):
    header, _payload, signature = tokens["access"].split(".")
    payload = claims(tokens["access"]) | {"user_id": str(other_user.pk)}

    assert_error(get_me(f"{header}.{b64(payload)}.{signature}"), 401, TOKEN_NOT_VALID)


def test_token_with_a_tampered_sid_is_refused(tokens, other_user):
    theirs = login(other_user.email)
    header, _payload, signature = tokens["access"].split(".")
    payload = claims(tokens["access"]) | {"sid": claims(theirs["access"])["sid"]}

    assert_error(get_me(f"{header}.{b64(payload)}.{signature}"), 401, TOKEN_NOT_VALID)


def test_signed_token_pairing_a_user_with_another_users_session_is_refused(user, other_user, access_claims):
    theirs = claims(login(other_user.email)["access"])

    # Even with the signing key, a session only authenticates its own user.
    assert_error(get_me(sign(access_claims | {"user_id": theirs["user_id"]})), 401, TOKEN_NOT_VALID)
    assert_error(get_me(sign(theirs | {"user_id": str(user.pk)})), 401, TOKEN_NOT_VALID)


def test_token_of_a_deleted_user_is_refused(tokens, access_claims):
    assert get_me(tokens["access"]).status_code == 200

    assert bearer_client(tokens["access"]).delete(ME).status_code == 204

    assert_error(get_me(tokens["access"]), 401, TOKEN_NOT_VALID)
    assert_error(get_me(sign(access_claims)), 401, TOKEN_NOT_VALID)


def test_token_of_a_deactivated_user_is_refused(user, tokens, staff_user, auth_client):
    assert get_me(tokens["access"]).status_code == 200

    response = auth_client(staff_user).patch(f"/api/v1/users/{user.pk}", {"is_active": False}, format="json")

    assert response.status_code == 200
    assert_error(get_me(tokens["access"]), 401, TOKEN_NOT_VALID)


def test_refresh_token_used_as_access_token_is_refused(tokens):
    assert_error(get_me(tokens["refresh"]), 401, TOKEN_NOT_VALID)


def test_signed_token_with_refresh_type_is_refused_as_access(access_claims):
    assert_error(get_me(sign(access_claims | {"token_type": "refresh"})), 401, TOKEN_NOT_VALID)


def test_signed_token_without_a_type_is_refused(access_claims):
    payload = {key: value for key, value in access_claims.items() if key != "token_type"}

    assert_error(get_me(sign(payload)), 401, TOKEN_NOT_VALID)


def test_signed_token_without_sid_is_refused(access_claims):
    payload = {key: value for key, value in access_claims.items() if key != "sid"}

    assert_error(get_me(sign(payload)), 401, TOKEN_NOT_VALID)


def test_signed_token_without_user_id_is_refused(access_claims):
    payload = {key: value for key, value in access_claims.items() if key != "user_id"}

    assert_error(get_me(sign(payload)), 401, TOKEN_NOT_VALID)


@pytest.mark.parametrize(
    "change",
    [
        {"sid": "not-a-uuid"},
        {"sid": None},
        {"sid": 12},
        {"sid": str(uuid.uuid4())},
        {"user_id": "not-a-uuid"},
        {"user_id": str(uuid.uuid4())},
    ],
)
def test_signed_token_with_a_bad_or_unknown_sid_or_user_id_is_refused(access_claims, change):
    assert_error(get_me(sign(access_claims | change)), 401, TOKEN_NOT_VALID)


@pytest.mark.parametrize(
    "header",
    ["Bearer", "Bearer ", "Bearer a b", "Bearer not-a-jwt", "Bearer a.b.c", "Bearer \u00e9t\u00e9"],
)
def test_malformed_bearer_header_is_refused_as_token_not_valid(db, header):
    response = with_header(header)

    body = assert_error(response, 401, TOKEN_NOT_VALID)
    assert body["error"]
    assert response["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize("header", [None, "Basic dXNlcjpwYXNz", "Token abc", "JWT abc", ""])
def test_missing_credentials_or_another_scheme_is_not_authenticated(db, tokens, header):
    response = APIClient().get(ME) if header is None else with_header(header)

    assert_error(response, 401, NOT_AUTHENTICATED)
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_genuine_access_token_in_another_scheme_is_not_authenticated(tokens):
    assert_error(with_header(f"Basic {tokens['access']}"), 401, NOT_AUTHENTICATED)


def test_token_not_valid_message_does_not_tell_forgeries_apart(access_claims):
    forged = get_me(sign(access_claims, key="someone-elses-signing-key-of-good-length"))
    expired = get_me(sign(access_claims | {"exp": int(time.time()) - 1}))
    unknown_session = get_me(sign(access_claims | {"sid": str(uuid.uuid4())}))

    messages = {response.json()["error"] for response in (forged, expired, unknown_session)}

    assert len(messages) == 1


def test_token_accepted_once_is_refused_when_it_expires(access_claims):
    expires = int(time.time()) + 2
    token = sign(access_claims | {"exp": expires})
    assert get_me(token).status_code == 200  # verified once; a per-process cache may now hold it

    time.sleep(max(0.0, expires - time.time()) + 0.05)

    assert_error(get_me(token), 401, TOKEN_NOT_VALID)
