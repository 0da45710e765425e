"""Odd input on every endpoint that takes a body: each answer is a 400 in the envelope, and nothing changes.

"Nothing changes" is checked on the database after each request: every user row (password hashes included),
every session (ended or not, rotation counter), the security events and the count of each table.
"""

import json

import pytest
from django.test import Client

from core import exceptions as codes
from tests.assertions import assert_error
from tests.conftest import bearer_client, login
from tests.factories import DEFAULT_PASSWORD, UserFactory
from users.models import SecurityEvent, Session, User

pytestmark = pytest.mark.django_db

# Endpoint -> (method, path, needs a token, a body it would accept).
ENDPOINTS = {
    "register": ("POST", "/api/v1/users", False, {"email": "new@example.com", "password": DEFAULT_PASSWORD}),
    "login": ("POST", "/api/v1/auth/token", False, {"email": "owner@example.com", "password": DEFAULT_PASSWORD}),
    "refresh": ("POST", "/api/v1/auth/token/refresh", False, {"refresh": "REFRESH"}),
    "put-me": ("PUT", "/api/v1/users/me", True, {"email": "owner@example.com", "first_name": "A", "last_name": "B"}),
    "patch-me": ("PATCH", "/api/v1/users/me", True, {"first_name": "A"}),
    "password-change": (
        "POST",
        "/api/v1/auth/password/change",
        True,
        {"current_password": DEFAULT_PASSWORD, "new_password": "an-entirely-new-passphrase"},
    ),
    "password-reset": ("POST", "/api/v1/auth/password/reset", False, {"email": "owner@example.com"}),
    "reset-confirm": (
        "POST",
        "/api/v1/auth/password/reset/confirm",
        False,
        {"uid": "x", "token": "x", "new_password": "an-entirely-new-passphrase"},
    ),
    "email-verify": ("POST", "/api/v1/auth/email/verify", False, {"uid": "x", "token": "x"}),
    "logout": ("POST", "/api/v1/auth/logout", True, {"refresh": "REFRESH"}),
    "logout-all": ("POST", "/api/v1/auth/logout-all", True, {"keep_current": False}),
}
# Bodies that are empty when absent: an empty PATCH changes nothing and is a 200; logout needs no body at all.
EMPTY_BODY_ALLOWED = {"patch-me", "logout", "logout-all"}


class Owner:
    """The account every request is about, with an open session; ``state()`` is what must not change."""

    def __init__(self):
        self.user = UserFactory(email="owner@example.com")
        self.other = UserFactory(email="other@example.com")
        self.tokens = login(self.user.email)

    def client(self, needs_token: bool) -> Client:
        if needs_token:
            return Client(HTTP_AUTHORIZATION=f"Bearer {self.tokens['access']}", raise_request_exception=False)
        return Client(raise_request_exception=False)

    @staticmethod
    def state() -> dict:
        return {
            "users": list(User.objects.order_by("pk").values()),
            "sessions": list(Session.objects.order_by("pk").values()),
            "events": SecurityEvent.objects.count(),
        }


@pytest.fixture
def owner(generous_rate_limits):
    return Owner()


def send(owner: Owner, endpoint: str, body: bytes | str | None, content_type: str = "application/json"):
    method, path, needs_token, _ = ENDPOINTS[endpoint]
    client = owner.client(needs_token)
    if body is None:
        return client.generic(method, path)
    if isinstance(body, str):
        body = body.replace("REFRESH", owner.tokens["refresh"])
    return client.generic(method, path, body, content_type)


def assert_refused_and_unchanged(owner: Owner, endpoint: str, body, content_type: str = "application/json") -> dict:
    before = owner.state()

    response = send(owner, endpoint, body, content_type)

    assert response.status_code == 400, (endpoint, response.status_code, response.content[:300])
    envelope = assert_error(response, 400, response.json()["code"])
    assert envelope["code"] in (codes.VALIDATION_ERROR, codes.PARSE_ERROR), envelope
    assert owner.state() == before, endpoint
    # The owner's session still works: the odd request ended nothing.
    assert bearer_client(owner.tokens["access"]).get("/api/v1/users/me").status_code == 200
    return envelope


def json_with(endpoint: str, **changes) -> str:
    return json.dumps({**ENDPOINTS[endpoint][3], **changes})


def string_fields(endpoint: str) -> list[str]:
    return [name for name, value in ENDPOINTS[endpoint][3].items() if isinstance(value, str)]


ALL = sorted(ENDPOINTS)
WITH_STRINGS = [e for e in ALL if string_fields(e)]


# ---------------------------------------------------------------- bytes that are not JSON text


@pytest.mark.parametrize("endpoint", ALL)
@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b'{"email": "\xff\xfe@example.com"}', id="invalid-utf8-in-a-string"),
        pytest.param(b"\xc3\x28\xa0\xa1", id="invalid-utf8-body"),
        pytest.param(b'{"first_name": "a\x00b"}', id="raw-nul-in-a-string"),
        pytest.param(b"\x00\x00\x00\x00", id="nul-bytes-body"),
        pytest.param(b"\xef\xbb\xbf\xef\xbb\xbf{}", id="double-bom"),
        pytest.param(b'{"email": "a@example.com"', id="truncated"),
        pytest.param(b"{'email': 'a@example.com'}", id="single-quotes"),
        pytest.param(b'{"keep_current": NaN}', id="nan"),
        pytest.param(b'{"first_name": "x", "first_name": "y"}', id="duplicate-keys"),
        pytest.param(b'{"a": {"b": 1, "b": 2}}', id="nested-duplicate-keys"),
    ],
)
def test_bytes_that_are_not_valid_json_are_a_parse_error(owner, endpoint, body):
    envelope = assert_refused_and_unchanged(owner, endpoint, body)

    assert envelope["code"] == codes.PARSE_ERROR


# ---------------------------------------------------------------- JSON that is not an object


@pytest.mark.parametrize("endpoint", ALL)
@pytest.mark.parametrize("body", ["null", "[]", "[{}]", '"a string"', "0", "true", "1e999"])
def test_a_body_that_is_not_an_object_is_a_validation_error(owner, endpoint, body):
    envelope = assert_refused_and_unchanged(owner, endpoint, body)

    assert envelope["code"] == codes.VALIDATION_ERROR
    assert "non_field_errors" in envelope["details"]


@pytest.mark.parametrize("endpoint", [e for e in ALL if e not in EMPTY_BODY_ALLOWED])
def test_an_empty_body_is_a_validation_error(owner, endpoint):
    assert_refused_and_unchanged(owner, endpoint, "")


@pytest.mark.parametrize("endpoint", [e for e in ALL if e not in EMPTY_BODY_ALLOWED])
def test_no_body_at_all_is_a_validation_error(owner, endpoint):
    assert_refused_and_unchanged(owner, endpoint, None)


@pytest.mark.parametrize("endpoint", [e for e in ALL if e not in EMPTY_BODY_ALLOWED])
def test_an_empty_object_is_a_validation_error(owner, endpoint):
    assert_refused_and_unchanged(owner, endpoint, "{}")


# ---------------------------------------------------------------- wrong types where strings belong


@pytest.mark.parametrize("endpoint", WITH_STRINGS)
@pytest.mark.parametrize(
    "value",
    [0, 1.5, -(10**30), True, False, None, [], ["owner@example.com"], {}, {"$ne": ""}],
    ids=["zero", "float", "huge-int", "true", "false", "null", "empty-list", "list", "empty-object", "operator"],
)
def test_a_non_string_where_a_string_belongs_is_400_on_that_field(owner, endpoint, value):
    for field in string_fields(endpoint):
        envelope = assert_refused_and_unchanged(owner, endpoint, json_with(endpoint, **{field: value}))

        assert field in envelope["details"], (field, envelope)


@pytest.mark.parametrize("endpoint", ["register", "put-me", "patch-me", "logout-all"])
@pytest.mark.parametrize("value", ["true", "false", 1, 0, None, [], {}], ids=str)
def test_a_non_boolean_where_a_boolean_belongs_is_400(owner, endpoint, value):
    field = "keep_current" if endpoint == "logout-all" else "is_active"

    envelope = assert_refused_and_unchanged(owner, endpoint, json_with(endpoint, **{field: value}))

    assert field in envelope["details"]


# ---------------------------------------------------------------- strings no one should send


@pytest.mark.parametrize("endpoint", WITH_STRINGS)
@pytest.mark.parametrize(
    "value",
    [
        pytest.param("x" * 10_000, id="10000-chars"),
        pytest.param("\u00e9" * 10_000, id="10000-two-byte-chars"),
        pytest.param("\U0001f600" * 10_000, id="10000-emoji"),
        pytest.param("a\x00b", id="nul"),
        pytest.param("\ud800", id="lone-surrogate"),
    ],
)
def test_a_string_no_one_should_send_is_400_on_that_field(owner, endpoint, value):
    for field in string_fields(endpoint):
        envelope = assert_refused_and_unchanged(owner, endpoint, json_with(endpoint, **{field: value}))

        assert field in envelope["details"], (field, envelope)


# ---------------------------------------------------------------- emails with Unicode and mixed case


@pytest.mark.parametrize(
    "email",
    [
        pytest.param("OTHER@EXAMPLE.COM", id="taken-upper-case"),
        pytest.param("Other@Example.Com", id="taken-mixed-case"),
        pytest.param(" other@example.com ", id="taken-with-spaces"),
        pytest.param("\u041eTHER@example.com", id="cyrillic-O"),
        pytest.param("oth\u0435r@example.com", id="cyrillic-e-homoglyph"),
        pytest.param("\uff4f\uff54\uff48\uff45\uff52@example.com", id="fullwidth"),
        pytest.param("\u0130nfo@example.com", id="dotted-capital-I"),
        pytest.param("other@example.com\u200b", id="zero-width-space"),
        pytest.param("other\u202e@example.com", id="right-to-left-override"),
        pytest.param("a@b@example.com", id="two-ats"),
        pytest.param("other@example.com\nBcc: x@example.com", id="header-injection"),
    ],
)
@pytest.mark.parametrize("endpoint", ["register", "put-me", "patch-me"])
def test_odd_or_taken_email_is_400_on_email(owner, endpoint, email):
    envelope = assert_refused_and_unchanged(owner, endpoint, json_with(endpoint, email=email))

    assert "email" in envelope["details"]


def test_kelvin_sign_email_that_lower_cases_onto_a_taken_one_is_refused(owner):
    # "\u212a".lower() == "k": a naive lower() would map this onto kim@example.com.
    UserFactory(email="kim@example.com")

    envelope = assert_refused_and_unchanged(owner, "register", json_with("register", email="\u212aim@example.com"))

    assert "email" in envelope["details"]


def test_login_with_the_owners_email_in_another_case_works_and_odd_forms_do_not(owner):
    # The control: case does not matter for a real login (emails are stored lower-cased).
    assert login("OWNER@Example.COM")["access"]

    for email in ("\u041ewner@example.com", "owner@example.com\u200b", "owner@exa\u200bmple.com"):
        response = owner.client(False).post(
            "/api/v1/auth/token", {"email": email, "password": DEFAULT_PASSWORD}, content_type="application/json"
        )
        assert_error(response, 401, codes.AUTHENTICATION_FAILED)


# ---------------------------------------------------------------- not JSON at all


@pytest.mark.parametrize("endpoint", ALL)
@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("application/x-www-form-urlencoded", "email=owner%40example.com&password=x"),
        ("text/plain", '{"email": "owner@example.com"}'),
        ("multipart/form-data; boundary=x", "--x\r\nContent-Disposition: form-data; name=email\r\n\r\na\r\n--x--"),
        ("application/json; charset=utf-16", '{"email": "owner@example.com"}'),
    ],
    ids=["form", "text", "multipart", "utf-16-label"],
)
def test_a_body_that_is_not_json_is_refused_and_changes_nothing(owner, endpoint, content_type, body):
    before = owner.state()

    response = send(owner, endpoint, body, content_type)

    assert response.status_code in (400, 415), response.content[:300]
    assert_error(response, response.status_code, response.json()["code"])
    assert owner.state() == before
