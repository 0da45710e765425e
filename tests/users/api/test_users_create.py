"""POST /api/v1/users: open and closed registration, staff creation, field rules, rate limit."""

import threading

import pytest
from django.db import connection
from rest_framework.test import APIClient

from tests.assertions import assert_error
from tests.conftest import bearer_client, login
from tests.factories import UserFactory
from users.models import User

pytestmark = pytest.mark.django_db

URL = "/api/v1/users"
PASSWORD = "a-long-enough-pass"
USER_FIELDS = {
    "id",
    "email",
    "first_name",
    "last_name",
    "is_active",
    "is_staff",
    "email_verified",
    "date_joined",
    "last_login",
}


def register(client, **fields):
    payload = {"email": "ann@example.com", "password": PASSWORD, **fields}
    return client.post(URL, payload, format="json")


# ---------------------------------------------------------------- open registration


def test_anonymous_registration_returns_201_with_the_user_and_location(api_client):
    response = register(api_client, first_name="Ann", last_name="Lee")

    assert response.status_code == 201, response.content
    body = response.json()
    assert set(body) == USER_FIELDS
    user = User.objects.get()
    assert body["id"] == str(user.pk)
    assert response["Location"] == f"/api/v1/users/{user.pk}"
    assert body["email"] == "ann@example.com"
    assert body["first_name"] == "Ann" and body["last_name"] == "Lee"
    assert body["is_active"] is True
    assert body["is_staff"] is False
    assert body["email_verified"] is False
    assert body["last_login"] is None
    assert body["date_joined"]


def test_location_of_created_user_is_readable_by_that_user(api_client):
    response = register(api_client)
    tokens = login("ann@example.com", PASSWORD)

    read = bearer_client(tokens["access"]).get(response["Location"])

    assert read.status_code == 200
    assert read.json()["id"] == response.json()["id"]


def test_registration_stores_email_lower_cased_and_stripped(api_client):
    response = register(api_client, email="  Ann.Lee@Example.COM ")

    assert response.status_code == 201, response.content
    assert response.json()["email"] == "ann.lee@example.com"
    assert User.objects.get().email == "ann.lee@example.com"


def test_registration_hashes_the_password_and_never_returns_it(api_client):
    response = register(api_client)

    assert response.status_code == 201
    assert "password" not in response.json()
    assert PASSWORD not in response.content.decode()
    user = User.objects.get()
    assert user.password != PASSWORD
    assert user.has_usable_password()
    assert user.check_password(PASSWORD)


def test_registered_user_can_log_in(api_client):
    register(api_client, email="Ann@Example.com")

    response = api_client.post("/api/v1/auth/token", {"email": "ann@example.com", "password": PASSWORD}, format="json")

    assert response.status_code == 200
    assert set(response.json()) == {"access", "refresh"}


def test_registration_with_trailing_slash_returns_201_without_redirect(api_client):
    response = api_client.post(URL + "/", {"email": "ann@example.com", "password": PASSWORD}, format="json")

    assert response.status_code == 201, response.content
    assert User.objects.filter(email="ann@example.com").exists()


def test_registration_ignores_unknown_and_read_only_fields(api_client):
    response = register(
        api_client,
        id="00000000-0000-0000-0000-000000000001",
        email_verified=True,
        date_joined="2000-01-01T00:00:00Z",
        last_login="2000-01-01T00:00:00Z",
        is_superuser=True,
        favourite_colour="blue",
    )

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["id"] != "00000000-0000-0000-0000-000000000001"
    assert body["email_verified"] is False
    assert body["last_login"] is None
    assert not body["date_joined"].startswith("2000")
    user = User.objects.get()
    assert user.is_superuser is False
    assert user.email_verified is False


@pytest.mark.parametrize(("field", "value"), [("is_active", True), ("is_staff", False)])
def test_anonymous_may_send_a_limited_field_equal_to_its_default(api_client, field, value):
    response = register(api_client, **{field: value})

    assert response.status_code == 201, response.content
    assert response.json()[field] is value


@pytest.mark.parametrize(("field", "value"), [("is_active", False), ("is_staff", True)])
def test_anonymous_setting_a_limited_field_returns_400(api_client, field, value):
    response = register(api_client, **{field: value})

    assert_error(response, 400, "validation_error", fields=[field])
    assert not User.objects.exists()


def test_non_staff_user_setting_is_staff_on_create_returns_400(api_client, user, auth_client):
    response = register(auth_client(user), is_staff=True)

    assert_error(response, 400, "validation_error", fields=["is_staff"])
    assert not User.objects.filter(email="ann@example.com").exists()


# ---------------------------------------------------------------- staff and superuser creation


def test_staff_may_create_an_inactive_user(staff_user, auth_client):
    response = register(auth_client(staff_user), is_active=False)

    assert response.status_code == 201, response.content
    assert response.json()["is_active"] is False
    assert User.objects.get(email="ann@example.com").is_active is False


def test_staff_who_is_not_superuser_creating_staff_returns_400(staff_user, auth_client):
    response = register(auth_client(staff_user), is_staff=True)

    assert_error(response, 400, "validation_error", fields=["is_staff"])
    assert not User.objects.filter(email="ann@example.com").exists()


def test_superuser_may_create_a_staff_member(superuser, auth_client):
    response = register(auth_client(superuser), is_staff=True)

    assert response.status_code == 201, response.content
    assert response.json()["is_staff"] is True
    created = User.objects.get(email="ann@example.com")
    assert created.is_staff is True
    assert created.is_superuser is False


# ---------------------------------------------------------------- closed registration


@pytest.fixture
def closed_registration(settings):
    settings.ALLOW_REGISTRATION = False


@pytest.mark.usefixtures("closed_registration")
def test_closed_registration_refuses_anonymous_with_401(api_client):
    response = register(api_client)

    assert_error(response, 401, "not_authenticated")
    assert not User.objects.exists()


@pytest.mark.usefixtures("closed_registration")
def test_closed_registration_refuses_non_staff_with_403(user, auth_client):
    response = register(auth_client(user))

    assert_error(response, 403, "permission_denied")
    assert not User.objects.filter(email="ann@example.com").exists()


@pytest.mark.usefixtures("closed_registration")
def test_closed_registration_lets_staff_create_users(staff_user, auth_client):
    response = register(auth_client(staff_user))

    assert response.status_code == 201, response.content
    assert User.objects.filter(email="ann@example.com").exists()


@pytest.mark.usefixtures("closed_registration")
def test_closed_registration_with_a_bad_token_returns_401_token_not_valid(api_client):
    api_client.credentials(HTTP_AUTHORIZATION="Bearer not-a-token")

    assert_error(register(api_client), 401, "token_not_valid")


# ---------------------------------------------------------------- validation


def test_duplicate_email_in_another_case_returns_400(api_client):
    UserFactory(email="ann@example.com")

    response = register(api_client, email="ANN@Example.Com")

    body = assert_error(response, 400, "validation_error", fields=["email"])
    assert set(body["details"]) == {"email"}
    assert User.objects.count() == 1


@pytest.mark.parametrize(
    "password",
    [
        pytest.param("short1", id="too-short"),
        pytest.param("1234567890123", id="numeric"),
        pytest.param("password1234", id="common"),
        pytest.param("ann@example.com", id="similar-to-email"),
    ],
)
def test_weak_password_returns_400_on_password(api_client, password):
    response = register(api_client, password=password)

    body = assert_error(response, 400, "validation_error", fields=["password"])
    assert password not in str(body)
    assert not User.objects.exists()


@pytest.mark.parametrize("email", ["not-an-email", "ann@", "@example.com", "ann example@example.com", ""])
def test_invalid_email_returns_400_on_email(api_client, email):
    response = register(api_client, email=email)

    assert_error(response, 400, "validation_error", fields=["email"])
    assert not User.objects.exists()


def test_overlong_email_returns_400_on_email(api_client):
    response = register(api_client, email="a" * 64 + "@" + "b" * 186 + ".com")

    assert_error(response, 400, "validation_error", fields=["email"])


def test_overlong_names_return_400_on_each(api_client):
    response = register(api_client, first_name="x" * 151, last_name="y" * 151)

    assert_error(response, 400, "validation_error", fields=["first_name", "last_name"])


def test_missing_email_and_password_return_400_on_both(api_client):
    response = api_client.post(URL, {"first_name": "Ann"}, format="json")

    assert_error(response, 400, "validation_error", fields=["email", "password"])


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("email", 12345),
        ("email", ["ann@example.com"]),
        ("password", 12345678901234),
        ("password", [PASSWORD]),
        ("first_name", 42),
        ("last_name", ["Lee"]),
        ("first_name", {"name": "Ann"}),
        ("is_active", "true"),
        ("is_staff", 0),
        ("is_active", None),
    ],
)
def test_wrong_json_type_for_a_field_returns_400(api_client, field, value):
    response = register(api_client, **{field: value})

    assert_error(response, 400, "validation_error", fields=[field])
    assert not User.objects.exists()


@pytest.mark.parametrize("body", ["null", "[]", '[{"email": "ann@example.com"}]', '"a string"', "42"])
def test_non_object_json_body_returns_400_validation_error(api_client, body):
    response = api_client.post(URL, body, content_type="application/json")

    assert_error(response, 400, "validation_error", fields=["non_field_errors"])
    assert not User.objects.exists()


def test_malformed_json_returns_400_parse_error(api_client):
    response = api_client.post(URL, '{"email": ', content_type="application/json")

    assert_error(response, 400, "parse_error")


def test_form_encoded_body_returns_415(api_client):
    response = api_client.post(URL, {"email": "ann@example.com", "password": PASSWORD})

    assert_error(response, 415, "unsupported_media_type")
    assert not User.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_concurrent_registrations_of_one_email_give_one_201_and_400s(api_client):
    if connection.vendor == "sqlite" and connection.is_in_memory_db():
        # Threads on SQLite's shared-cache memory database fail with "table is locked" instead of waiting.
        pytest.skip("concurrent writers need a file or server database")
    start = threading.Barrier(6)
    results = []

    def register_once(n):
        try:
            start.wait(timeout=10)
            response = APIClient().post(
                URL, {"email": "Race@Example.com", "password": PASSWORD}, format="json", REMOTE_ADDR=f"10.2.0.{n}"
            )
            results.append(response)
        finally:
            connection.close()

    threads = [threading.Thread(target=register_once, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    statuses = sorted(response.status_code for response in results)
    assert statuses == [201] + [400] * 5, statuses
    for response in results:
        if response.status_code == 400:
            assert_error(response, 400, "validation_error", fields=["email"])
    assert User.objects.filter(email="race@example.com").count() == 1


# ---------------------------------------------------------------- rate limit


@pytest.fixture
def register_limit(settings):
    settings.RATELIMIT_REGISTER_IP = "2/m"


@pytest.mark.usefixtures("register_limit")
def test_anonymous_registration_over_the_ip_limit_returns_429_with_retry_after(api_client):
    for n in range(2):
        assert register(api_client, email=f"ann{n}@example.com").status_code == 201

    response = register(api_client, email="ann2@example.com")

    assert_error(response, 429, "rate_limited")
    assert 1 <= int(response["Retry-After"]) <= 60
    assert not User.objects.filter(email="ann2@example.com").exists()


@pytest.mark.usefixtures("register_limit")
def test_registration_limit_counts_refused_attempts_too(api_client):
    for _ in range(2):
        assert_error(register(api_client, email="bad"), 400, "validation_error")

    assert_error(register(api_client), 429, "rate_limited")


@pytest.mark.usefixtures("register_limit")
def test_registration_limit_is_per_client_ip(api_client):
    for n in range(2):
        response = api_client.post(
            URL, {"email": f"ann{n}@example.com", "password": PASSWORD}, format="json", REMOTE_ADDR="10.0.0.1"
        )
        assert response.status_code == 201
    assert_error(
        api_client.post(URL, {"email": "x@example.com", "password": PASSWORD}, format="json", REMOTE_ADDR="10.0.0.1"),
        429,
        "rate_limited",
    )

    response = api_client.post(
        URL, {"email": "bob@example.com", "password": PASSWORD}, format="json", REMOTE_ADDR="10.0.0.2"
    )

    assert response.status_code == 201, response.content


@pytest.mark.usefixtures("register_limit")
def test_registration_limit_ignores_forwarded_for_without_trusted_proxies(api_client, settings):
    settings.TRUSTED_PROXY_COUNT = 0
    for n in range(2):
        response = api_client.post(
            URL,
            {"email": f"ann{n}@example.com", "password": PASSWORD},
            format="json",
            HTTP_X_FORWARDED_FOR=f"10.1.0.{n}",
        )
        assert response.status_code == 201

    response = api_client.post(
        URL, {"email": "ann2@example.com", "password": PASSWORD}, format="json", HTTP_X_FORWARDED_FOR="10.1.0.99"
    )

    assert_error(response, 429, "rate_limited")


@pytest.mark.usefixtures("register_limit")
def test_staff_creating_users_is_not_held_to_the_registration_limit(staff_user, auth_client):
    client = auth_client(staff_user)

    statuses = [register(client, email=f"ann{n}@example.com").status_code for n in range(4)]

    assert statuses == [201] * 4
