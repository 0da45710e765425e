"""OWASP API Security Top 10 (2023), item by item, for this service, through HTTP with real tokens.

Each section names its item. Where another module already proves a case in depth (token forgery in
tests/users/api/test_token_forgery.py, every rate limit in tests/ops/test_rate_limits.py), this one covers the
rest of the item and says so.
"""

import re
import time
import uuid

import jwt
import pytest
from django.conf import settings
from django.core import mail
from django.test import Client
from django.urls import URLResolver, get_resolver
from rest_framework.test import APIClient

from core import exceptions as codes
from tests.assertions import assert_error
from tests.conftest import bearer_client, login
from tests.factories import DEFAULT_PASSWORD, UserFactory
from users.models import SecurityEvent, Session, User

pytestmark = pytest.mark.django_db

USERS = "/api/v1/users"
TOKEN = "/api/v1/auth/token"
REFRESH = "/api/v1/auth/token/refresh"
NEW_PASSWORD = "an-entirely-new-passphrase"


def row(user: User) -> dict:
    """Every column of the user's row, as stored."""
    return User.objects.values().get(pk=user.pk)


def sid(access: str) -> str:
    return jwt.decode(access, options={"verify_signature": False})["sid"]


@pytest.fixture
def victim(db):
    """Another user with an open session: the object an attacker names."""
    victim = UserFactory()
    victim.tokens = login(victim.email)
    return victim


@pytest.fixture
def attacker(user):
    client = bearer_client(login(user.email)["access"])
    client.user = user
    return client


# ==================================================================== API1:2023 Broken Object Level Authorization


def victim_requests(victim) -> list[tuple[str, str, dict | None]]:
    """Every users and sessions endpoint that names an object, aimed at the victim's."""
    detail = f"{USERS}/{victim.pk}"
    return [
        ("get", detail, None),
        ("put", detail, {"email": "taken-over@example.com", "first_name": "Mallory", "last_name": "M"}),
        ("patch", detail, {"email": "taken-over@example.com"}),
        ("patch", detail, {"first_name": "Mallory"}),
        ("delete", detail, None),
        ("get", f"{detail}/events", None),
        ("delete", f"/api/v1/auth/sessions/{sid(victim.tokens['access'])}", None),
    ]


@pytest.mark.parametrize(
    "index", range(7), ids=["get", "put", "patch-email", "patch-name", "delete", "events", "session"]
)
def test_every_object_endpoint_with_another_users_id_is_404_and_changes_nothing(attacker, victim, index):
    method, path, body = victim_requests(victim)[index]
    before = row(victim)

    response = getattr(attacker, method)(path, body, format="json")

    assert_error(response, 404, codes.NOT_FOUND)
    assert row(victim) == before
    assert Session.objects.filter(user=victim, ended_at__isnull=True).count() == 1
    assert bearer_client(victim.tokens["access"]).get(f"{USERS}/me").status_code == 200


@pytest.mark.parametrize(
    "index", range(7), ids=["get", "put", "patch-email", "patch-name", "delete", "events", "session"]
)
def test_another_users_object_is_answered_exactly_like_an_unknown_one(attacker, victim, index):
    # Nothing tells the attacker that the id exists: same status, same body but for the request id.
    method, path, body = victim_requests(victim)[index]
    unknown = path.replace(str(victim.pk), str(uuid.uuid4())).replace(sid(victim.tokens["access"]), str(uuid.uuid4()))

    theirs = getattr(attacker, method)(path, body, format="json").json()
    nobodys = getattr(attacker, method)(unknown, body, format="json").json()

    assert {**theirs, "request_id": ""} == {**nobodys, "request_id": ""}


def test_staff_may_not_end_another_users_session(staff_user, victim):
    # Sessions are the caller's own even for staff; staff end them by deactivating the user.
    response = bearer_client(login(staff_user.email)["access"]).delete(
        f"/api/v1/auth/sessions/{sid(victim.tokens['access'])}"
    )

    assert_error(response, 404, codes.NOT_FOUND)
    assert Session.objects.filter(user=victim, ended_at__isnull=True).exists()


def test_sessions_list_never_shows_another_users_sessions(attacker, victim):
    ids = {s["id"] for s in attacker.get("/api/v1/auth/sessions").json()}

    assert sid(victim.tokens["access"]) not in ids
    assert ids == {str(s.pk) for s in Session.objects.filter(user=attacker.user)}


def test_me_events_never_include_another_users_events(attacker, victim):
    body = attacker.get(f"{USERS}/me/events").json()

    assert body["results"]
    assert {e["id"] for e in body["results"]} <= {
        str(pk) for pk in SecurityEvent.objects.filter(user_id=attacker.user.pk).values_list("pk", flat=True)
    }


# ==================================================================== API2:2023 Broken Authentication
# Forged, tampered, expired and misused access tokens: tests/users/api/test_token_forgery.py. Here: the refresh
# endpoint, where credentials may travel, and what a login answer exposes.


def test_access_token_presented_as_a_refresh_token_is_refused(victim):
    response = APIClient().post(REFRESH, {"refresh": victim.tokens["access"]}, format="json")

    assert_error(response, 401, codes.TOKEN_NOT_VALID)


@pytest.mark.parametrize(
    "forge",
    [
        pytest.param(lambda claims: jwt.encode(claims, None, algorithm="none"), id="alg-none"),
        pytest.param(lambda claims: jwt.encode(claims, "an-attackers-own-key-of-good-length!!"), id="wrong-key"),
        pytest.param(
            lambda claims: jwt.encode(claims | {"exp": int(time.time()) - 1}, settings.SIMPLE_JWT["SIGNING_KEY"]),
            id="expired",
        ),
        pytest.param(
            lambda claims: jwt.encode(
                {k: v for k, v in claims.items() if k != "exp"}, settings.SIMPLE_JWT["SIGNING_KEY"]
            ),
            id="no-exp",
        ),
    ],
)
def test_forged_refresh_token_is_refused_and_opens_no_session(victim, forge):
    claims = jwt.decode(victim.tokens["refresh"], options={"verify_signature": False})
    sessions = Session.objects.count()

    response = APIClient().post(REFRESH, {"refresh": forge(claims)}, format="json")

    assert_error(response, 401, codes.TOKEN_NOT_VALID)
    assert Session.objects.count() == sessions


def test_access_token_without_exp_is_refused(victim):
    claims = jwt.decode(victim.tokens["access"], options={"verify_signature": False})
    token = jwt.encode({k: v for k, v in claims.items() if k != "exp"}, settings.SIMPLE_JWT["SIGNING_KEY"])

    assert_error(bearer_client(token).get(f"{USERS}/me"), 401, codes.TOKEN_NOT_VALID)


@pytest.mark.parametrize(
    "where",
    [
        pytest.param({"QUERY_STRING": "access_token={}"}, id="query-string"),
        pytest.param({"HTTP_COOKIE": "access_token={}"}, id="cookie"),
        pytest.param({"HTTP_X_ACCESS_TOKEN": "{}"}, id="custom-header"),
    ],
)
def test_access_token_is_accepted_only_in_the_authorization_header(victim, where):
    extra = {key: value.format(victim.tokens["access"]) for key, value in where.items()}

    assert_error(APIClient().get(f"{USERS}/me", **extra), 401, codes.NOT_AUTHENTICATED)


def test_login_takes_credentials_only_from_the_json_body(user):
    response = APIClient().post(f"{TOKEN}?email={user.email}&password={DEFAULT_PASSWORD}", {}, format="json")

    assert_error(response, 400, codes.VALIDATION_ERROR, fields=["email", "password"])


def test_login_answer_sets_no_cookie_and_carries_only_the_token_pair(user):
    response = APIClient().post(TOKEN, {"email": user.email, "password": DEFAULT_PASSWORD}, format="json")

    assert response.status_code == 200
    assert set(response.json()) == {"access", "refresh"}
    assert not response.cookies
    assert "no-store" in response.get("Cache-Control", "")  # RFC 6749 5.1: token answers are never cached


# ============================================================ API3:2023 Broken Object Property Level Authorization

READ_ONLY = {
    "id": str(uuid.uuid4()),
    "email_verified": True,
    "date_joined": "2001-01-01T00:00:00Z",
    "last_login": "2001-01-01T00:00:00Z",
}
# Fields the API never exposes or writes; sent anyway, they are ignored.
UNKNOWN = {"is_superuser": True, "password_hash": "x", "groups": [1], "user_permissions": [1]}
LIMITED = {"is_active": False, "is_staff": True}


@pytest.mark.parametrize("method", ["put", "patch"])
@pytest.mark.parametrize("path", ["me", "id"])
def test_read_only_and_unknown_fields_on_update_are_ignored(user, attacker, method, path):
    before = row(user)
    target = f"{USERS}/me" if path == "me" else f"{USERS}/{user.pk}"
    body = {"email": user.email, "first_name": "Renamed", **READ_ONLY, **UNKNOWN}

    response = getattr(attacker, method)(target, body, format="json")

    assert response.status_code == 200, response.content
    after = row(user)
    assert after == {**before, "first_name": "Renamed"}
    assert response.json()["id"] == str(user.pk)


@pytest.mark.parametrize("method", ["put", "patch"])
@pytest.mark.parametrize(("field", "value"), LIMITED.items())
def test_permission_limited_field_on_own_update_is_400_and_applies_nothing(user, attacker, method, field, value):
    before = row(user)

    response = getattr(attacker, method)(
        f"{USERS}/me", {"email": user.email, "first_name": "Sneaky", field: value}, format="json"
    )

    assert_error(response, 400, codes.VALIDATION_ERROR, fields=[field])
    assert row(user) == before


def test_staff_who_is_not_a_superuser_cannot_grant_staff(staff_user, victim):
    before = row(victim)

    response = bearer_client(login(staff_user.email)["access"]).patch(
        f"{USERS}/{victim.pk}", {"is_staff": True}, format="json"
    )

    assert_error(response, 400, codes.VALIDATION_ERROR, fields=["is_staff"])
    assert row(victim) == before


@pytest.mark.parametrize(("field", "value"), LIMITED.items())
@pytest.mark.parametrize("who", ["anonymous", "user"])
def test_permission_limited_field_on_create_is_400_and_creates_nobody(request, field, value, who):
    client = APIClient() if who == "anonymous" else request.getfixturevalue("attacker")
    count = User.objects.count()

    response = client.post(
        USERS, {"email": "new@example.com", "password": DEFAULT_PASSWORD, field: value}, format="json"
    )

    assert_error(response, 400, codes.VALIDATION_ERROR, fields=[field])
    assert User.objects.count() == count


def test_read_only_and_unknown_fields_on_create_are_ignored(api_client):
    response = api_client.post(
        USERS, {"email": "new@example.com", "password": DEFAULT_PASSWORD, **READ_ONLY, **UNKNOWN}, format="json"
    )

    assert response.status_code == 201, response.content
    created = User.objects.get(email="new@example.com")
    assert str(created.pk) != READ_ONLY["id"]
    assert not created.email_verified and not created.is_superuser and not created.is_staff
    assert created.last_login is None
    assert created.date_joined.year > 2001


def test_no_answer_ever_carries_a_password_or_a_hash(user, attacker, staff_user):
    staff = bearer_client(login(staff_user.email)["access"])
    bodies = [
        attacker.get(f"{USERS}/me").content,
        attacker.get("/api/v1/auth/sessions").content,
        attacker.get(f"{USERS}/me/events").content,
        staff.get(USERS).content,
        staff.get(f"{USERS}/{user.pk}").content,
        attacker.patch(f"{USERS}/me", {"first_name": "A"}, format="json").content,
    ]
    secrets = [user.password.encode(), b"password", b"refresh_hash", b"is_superuser", DEFAULT_PASSWORD.encode()]

    for body in bodies:
        for secret in secrets:
            assert secret not in body, (secret, body[:300])


# ==================================================================== API4:2023 Unrestricted Resource Consumption


def test_page_size_far_over_the_cap_is_served_as_the_cap(staff_user):
    UserFactory.create_batch(3)
    staff = bearer_client(login(staff_user.email)["access"])

    response = staff.get(USERS, {"page_size": str(10**40)})

    assert response.status_code == 200
    assert len(response.json()["results"]) == 4


@pytest.mark.parametrize(
    ("method", "path", "authenticated"),
    [
        ("POST", TOKEN, False),
        ("POST", USERS, False),
        ("POST", "/api/v1/auth/password/reset", False),
        ("PATCH", f"{USERS}/me", True),
        ("PUT", f"{USERS}/me", True),
        ("POST", "/api/v1/auth/password/change", True),
    ],
)
def test_body_over_the_limit_is_413_and_changes_nothing(user, attacker, settings, method, path, authenticated):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10_000
    body = '{"email": "' + "a" * 20_000 + '@example.com", "first_name": "Big"}'
    before = row(user)

    response = (attacker if authenticated else APIClient()).generic(method, path, body, "application/json")

    assert_error(response, 413, codes.PAYLOAD_TOO_LARGE)
    assert row(user) == before


@pytest.mark.parametrize(
    ("path", "field"),
    [
        (TOKEN, "email"),
        (TOKEN, "password"),
        (USERS, "email"),
        (USERS, "first_name"),
        (USERS, "password"),
        ("/api/v1/auth/password/reset", "email"),
        ("/api/v1/auth/email/verify", "token"),
        (REFRESH, "refresh"),
    ],
)
def test_very_long_field_is_400_on_that_field(path, field):
    body = {"email": "long@example.com", "password": DEFAULT_PASSWORD, "uid": "x", "token": "x", "refresh": "x"}
    body[field] = "x" * 100_000

    assert_error(APIClient().post(path, body, format="json"), 400, codes.VALIDATION_ERROR, fields=[field])


@pytest.mark.parametrize("known", [True, False], ids=["known-email", "unknown-email"])
def test_very_long_password_is_refused_before_it_is_hashed(user, monkeypatch, known):
    # Hashing half a megabyte with Argon2 per request would be a cheap way to burn the server's CPU.
    hashed = []
    original = User.check_password
    monkeypatch.setattr(User, "check_password", lambda self, raw: hashed.append(raw) or original(self, raw))
    monkeypatch.setattr(User, "set_password", lambda self, raw: hashed.append(raw))
    email = user.email if known else "nobody@example.com"

    response = APIClient().post(TOKEN, {"email": email, "password": "p" * 500_000}, format="json")

    assert_error(response, 400, codes.VALIDATION_ERROR, fields=["password"])
    assert hashed == []
    # The control: a normal wrong password does reach the hasher.
    APIClient().post(TOKEN, {"email": email, "password": "wrong-password"}, format="json")
    assert hashed == ["wrong-password"]


@pytest.mark.parametrize("depth", [100, 5_000, 200_000])
@pytest.mark.parametrize("opener", ["[", '{"a":'])
def test_deeply_nested_json_is_a_4xx_envelope(depth, opener):
    closer = "]" if opener == "[" else "}"
    body = opener * depth + ("1" if opener != "[" else "") + closer * depth

    response = Client(raise_request_exception=False).post(TOKEN, body, content_type="application/json")

    assert 400 <= response.status_code < 500, response.content[:300]
    assert_error(response, response.status_code, response.json()["code"])


def test_very_long_authorization_header_is_401(db):
    response = APIClient().get(f"{USERS}/me", HTTP_AUTHORIZATION="Bearer " + "a" * 100_000)

    assert_error(response, 401, codes.TOKEN_NOT_VALID)


def test_very_long_url_is_404(db):
    assert_error(Client().get("/api/v1/" + "a" * 50_000), 404, codes.NOT_FOUND)


def test_anonymous_flood_is_cut_off_with_429(settings):
    settings.RATELIMIT_ANON = "5/h"
    client = APIClient(REMOTE_ADDR="203.0.113.77")

    statuses = [
        client.post(TOKEN, {"email": "x@example.com", "password": "x"}, format="json").status_code for _ in range(8)
    ]

    assert statuses[:5] == [401] * 5
    assert statuses[5:] == [429] * 3


def test_authenticated_flood_is_cut_off_with_429(attacker, settings):
    settings.RATELIMIT_USER = "5/h"

    statuses = [attacker.get(f"{USERS}/me").status_code for _ in range(7)]

    assert statuses == [200] * 5 + [429] * 2


# ==================================================================== API5:2023 Broken Function Level Authorization


def staff_only_requests(victim) -> list[tuple[str, str, dict | None, int, str]]:
    """(method, path, body, status, code) of every staff-only action, and what a plain user gets."""
    return [
        ("get", USERS, None, 403, codes.PERMISSION_DENIED),
        ("get", f"{USERS}?is_staff=true", None, 403, codes.PERMISSION_DENIED),
        ("get", f"{USERS}/{victim.pk}", None, 404, codes.NOT_FOUND),
        ("get", f"{USERS}/{victim.pk}/events", None, 404, codes.NOT_FOUND),
        ("patch", f"{USERS}/{victim.pk}", {"is_active": False}, 404, codes.NOT_FOUND),
        ("delete", f"{USERS}/{victim.pk}", None, 404, codes.NOT_FOUND),
        (
            "post",
            USERS,
            {"email": "inactive@example.com", "password": DEFAULT_PASSWORD, "is_active": False},
            400,
            codes.VALIDATION_ERROR,
        ),
    ]


@pytest.mark.parametrize("index", range(7))
def test_every_staff_only_action_is_refused_to_a_plain_user(attacker, victim, index):
    method, path, body, status, code = staff_only_requests(victim)[index]
    before = row(victim)
    count = User.objects.count()

    assert_error(getattr(attacker, method)(path, body, format="json"), status, code)
    assert row(victim) == before
    assert User.objects.count() == count


def test_registration_closed_lets_only_staff_create_users(attacker, settings):
    settings.ALLOW_REGISTRATION = False

    response = attacker.post(USERS, {"email": "new@example.com", "password": DEFAULT_PASSWORD}, format="json")

    assert_error(response, 403, codes.PERMISSION_DENIED)
    assert not User.objects.filter(email="new@example.com").exists()


def test_admin_is_closed_to_a_plain_user_with_or_without_a_token(user, attacker):
    client = Client()
    client.force_login(user)  # even a Django session of a non-staff user does not open the admin

    assert client.get("/admin/").status_code == 302
    assert client.get("/admin/users/user/").status_code == 302
    assert attacker.get("/admin/users/user/").status_code == 302


def test_metrics_are_refused_to_a_plain_user_from_outside(attacker):
    response = attacker.get("/metrics", REMOTE_ADDR="203.0.113.9")

    assert_error(response, 403, codes.PERMISSION_DENIED)


def test_a_users_token_gains_no_staff_rights_when_is_staff_is_forged_into_it(user, attacker):
    claims = jwt.decode(attacker._credentials["HTTP_AUTHORIZATION"].split()[1], options={"verify_signature": False})
    forged = jwt.encode(claims | {"is_staff": True, "is_superuser": True}, settings.SIMPLE_JWT["SIGNING_KEY"])

    # Signed with the real key (a leaked key, the worst case): the rights still come from the database.
    assert_error(bearer_client(forged).get(USERS), 403, codes.PERMISSION_DENIED)


# ======================================================= API6:2023 Unrestricted Access to Sensitive Business Flows


def test_password_guessing_from_many_ips_is_stopped_by_the_per_email_limit(user, settings):
    settings.RATELIMIT_LOGIN_EMAIL = "5/h"
    statuses = [
        APIClient(REMOTE_ADDR=f"198.51.100.{n}")
        .post(TOKEN, {"email": user.email.upper(), "password": f"guess-{n}"}, format="json")
        .status_code
        for n in range(7)
    ]

    assert statuses == [401] * 5 + [429] * 2
    # Refused before the password is checked, even when the guess is right.
    assert (
        APIClient(REMOTE_ADDR="198.51.100.99")
        .post(TOKEN, {"email": user.email, "password": DEFAULT_PASSWORD}, format="json")
        .status_code
        == 429
    )


def test_credential_stuffing_from_one_ip_is_stopped_by_the_per_ip_limit(settings):
    settings.RATELIMIT_LOGIN_IP = "4/h"
    client = APIClient(REMOTE_ADDR="198.51.100.200")

    statuses = [
        client.post(TOKEN, {"email": f"victim{n}@example.com", "password": "password123"}, format="json").status_code
        for n in range(6)
    ]

    assert statuses == [401] * 4 + [429] * 2


@pytest.mark.django_db(transaction=True)
def test_slow_guessing_under_the_rate_limits_locks_the_account(user, settings):
    settings.LOCKOUT_THRESHOLD = 3
    for n in range(3):
        ip = f"198.51.100.{n + 1}"  # a new IP each time, under every rate limit
        assert (
            APIClient(REMOTE_ADDR=ip)
            .post(TOKEN, {"email": user.email, "password": f"guess-{n}"}, format="json")
            .status_code
            == 401
        )

    # Locked: even the right password answers exactly like a wrong one.
    response = APIClient(REMOTE_ADDR="198.51.100.50").post(
        TOKEN, {"email": user.email, "password": DEFAULT_PASSWORD}, format="json"
    )
    assert_error(response, 401, codes.AUTHENTICATION_FAILED)


def test_mass_registration_from_one_ip_is_limited(settings):
    settings.RATELIMIT_REGISTER_IP = "3/h"
    client = APIClient(REMOTE_ADDR="198.51.100.201")

    statuses = [
        client.post(USERS, {"email": f"bot{n}@example.com", "password": DEFAULT_PASSWORD}, format="json").status_code
        for n in range(5)
    ]

    assert statuses == [201] * 3 + [429] * 2
    assert User.objects.filter(email__startswith="bot").count() == 3


def test_reset_mail_bombing_of_one_address_is_limited(user, settings):
    settings.RATELIMIT_RESET_EMAIL = "2/h"
    mail.outbox = []

    statuses = [
        APIClient(REMOTE_ADDR=f"198.51.100.{n}")
        .post("/api/v1/auth/password/reset", {"email": user.email}, format="json")
        .status_code
        for n in range(4)
    ]

    assert statuses == [202, 202, 429, 429]


# ==================================================================== API7:2023 Server Side Request Forgery


def test_no_operation_takes_a_url_so_there_is_nothing_to_forge_requests_with(api_client):
    """API7 does not apply: the service fetches no URL a client gives.

    It makes outbound connections only to its own configured PostgreSQL, Redis and SMTP server, whose addresses
    come from the environment. No request field is a URL, a host or a file path (checked here against the
    schema), and mail links are built from FRONTEND_URL, never from the request (API10 below).
    """
    components = api_client.get("/api/schema/", {"format": "json"}).json()["components"]["schemas"]
    request_bodies = {name: body for name, body in components.items() if name.endswith("Request")}
    request_fields = {field for body in request_bodies.values() for field in body.get("properties", {})}

    assert request_bodies
    assert not {f for f in request_fields if re.search(r"url|uri|host|callback|webhook|path|file", f, re.I)}
    assert "'format': 'uri'" not in str(request_bodies)


# ==================================================================== API8:2023 Security Misconfiguration


def test_debug_is_off_in_the_running_settings():
    assert settings.DEBUG is False


def test_server_error_carries_no_stack_or_exception_text(attacker, monkeypatch, provoked_server_error):
    def boom(**kwargs):
        raise RuntimeError("secret internals: password=hunter2 at db-internal-7")

    monkeypatch.setattr("users.services.user_update", boom)
    client = APIClient(raise_request_exception=False)
    client.credentials(**attacker._credentials)

    response = client.patch(f"{USERS}/me", {"first_name": "X"}, format="json")

    body = assert_error(response, 500, codes.SERVER_ERROR)
    assert "hunter2" not in response.content.decode() and "Traceback" not in response.content.decode()
    assert body["error"] == "A server error occurred."


@pytest.mark.parametrize("path", [f"{USERS}/me", TOKEN, "/api/v1/nowhere", "/api/schema/"])
def test_security_headers_are_on_every_answer(attacker, path):
    response = attacker.get(path)

    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["X-Frame-Options"] == "DENY"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["Cross-Origin-Opener-Policy"] == "same-origin"
    assert "Server" not in response and "X-Powered-By" not in response


def test_cors_refuses_a_foreign_origin(attacker, settings):
    settings.CORS_ALLOWED_ORIGINS = ["https://app.example.com"]

    preflight = APIClient().options(
        f"{USERS}/me",
        HTTP_ORIGIN="https://evil.example",
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="GET",
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS="authorization",
    )
    simple = attacker.get(f"{USERS}/me", HTTP_ORIGIN="https://evil.example")

    assert "Access-Control-Allow-Origin" not in preflight
    assert "Access-Control-Allow-Origin" not in simple


def test_cors_admits_a_configured_origin_without_credentials(attacker, settings):
    settings.CORS_ALLOWED_ORIGINS = ["https://app.example.com"]

    response = attacker.get(f"{USERS}/me", HTTP_ORIGIN="https://app.example.com")

    assert response["Access-Control-Allow-Origin"] == "https://app.example.com"
    assert "Access-Control-Allow-Credentials" not in response
    assert "X-Request-ID" in response["Access-Control-Expose-Headers"]


def test_foreign_host_header_is_refused(db):
    assert_error(Client().get(f"{USERS}/me", HTTP_HOST="evil.example"), 400, codes.BAD_REQUEST)


def test_production_settings_are_hardened():
    # The production module itself is imported and checked in tests/config/test_production_settings.py;
    # here: the hardening that does not depend on the environment is in the base settings the tests run.
    assert settings.SECURE_CONTENT_TYPE_NOSNIFF is True
    assert settings.CORS_ALLOW_CREDENTIALS is False
    assert "*" not in settings.ALLOWED_HOSTS
    assert settings.SESSION_COOKIE_HTTPONLY is True


# ==================================================================== API9:2023 Improper Inventory Management


API_METHODS = ("get", "post", "put", "patch", "delete")


def served_api_routes() -> set[tuple[str, str]]:
    """(method, path) of every route the URLconf serves under /api/v1/, with ``{name}`` placeholders."""
    routes = set()

    def walk(patterns, prefix):
        for pattern in patterns:
            regex = prefix + pattern.pattern.regex.pattern.lstrip("^").rstrip("$").replace("\\Z", "")
            if isinstance(pattern, URLResolver):
                walk(pattern.url_patterns, regex)
                continue
            if not regex.startswith("api/v1/"):
                continue
            path = "/" + re.sub(r"\(\?P<(\w+)>[^)]*\)", r"{\1}", regex)
            path = re.sub(r"/\?$|\\\.\(\?P<format>.*$", "", path).removesuffix("/?")
            view = pattern.callback
            actions = getattr(view, "actions", None)
            view_class = getattr(view, "cls", None) or getattr(view, "view_class", None)
            # A viewset route maps methods to actions (DRF adds HEAD to GET); an APIView defines a method each.
            methods = actions if actions else {m for m in API_METHODS if hasattr(view_class, m)}
            routes.update((m, path) for m in methods if m in API_METHODS)

    walk(get_resolver().url_patterns, "")
    return routes


def test_schema_lists_exactly_the_routes_the_service_serves_under_api(api_client):
    schema = api_client.get("/api/schema/", {"format": "json"}).json()
    documented = {(method, path) for path, item in schema["paths"].items() for method in item if method in API_METHODS}
    served = {(m, re.sub(r"\{pk\}", "{id}", p)) for m, p in served_api_routes()}

    assert documented == served, {"undocumented": served - documented, "not served": documented - served}
    assert all(path.startswith("/api/v1/") for _, path in documented)


def test_no_other_api_version_or_debug_route_answers(db):
    for path in ("/api/v0/users", "/api/v2/users", "/api/users", "/api/v1/debug", "/__debug__/", "/api/v1/admin"):
        assert_error(Client().get(path), 404, codes.NOT_FOUND)


# ==================================================================== API10:2023 Unsafe Consumption of APIs


def links_in_outbox() -> list[str]:
    found = []
    for message in mail.outbox:
        bodies = [message.body] + [body for body, _ in getattr(message, "alternatives", [])]
        for body in bodies:
            found += re.findall(r"https?://[^\s\"'<>]+", body)
    return found


@pytest.mark.parametrize(
    ("path", "body"),
    [
        (USERS, {"email": "new@example.com", "password": DEFAULT_PASSWORD}),
        ("/api/v1/auth/password/reset", {"email": "USER-RESET@example.com"}),
    ],
    ids=["verification", "reset"],
)
def test_mail_links_come_from_frontend_url_never_from_the_request(
    settings, django_capture_on_commit_callbacks, path, body
):
    """API10 otherwise does not apply: the service consumes no third-party API; its only outbound
    content is mail, and the links in it must not be steerable by a poisoned Host (password-reset poisoning).
    """
    UserFactory(email="user-reset@example.com")
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "evil.example"]
    settings.FRONTEND_URL = "https://app.example.com"
    mail.outbox = []

    with django_capture_on_commit_callbacks(execute=True):
        response = APIClient().post(
            path,
            body,
            format="json",
            HTTP_HOST="evil.example",
            HTTP_X_FORWARDED_HOST="evil2.example",
            HTTP_ORIGIN="https://evil3.example",
            HTTP_REFERER="https://evil4.example/",
        )

    assert response.status_code in (201, 202), response.content
    links = links_in_outbox()
    assert links, [m.body for m in mail.outbox]
    assert all(link.startswith("https://app.example.com/") for link in links), links
    assert all("evil" not in link for link in links)
