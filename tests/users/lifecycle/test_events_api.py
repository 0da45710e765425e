"""GET /api/v1/users/me/events and /api/v1/users/{id}/events: cursor pages, newest first, self or staff."""

import pytest

from core.exceptions import NOT_AUTHENTICATED, NOT_FOUND
from tests.assertions import assert_error
from tests.conftest import bearer_client, login
from users.models import SecurityEvent

pytestmark = pytest.mark.django_db

FIELDS = {"id", "type", "created_at", "actor_id", "ip", "user_agent", "request_id", "details"}


def client_of(user):
    return bearer_client(login(user.email)["access"])


def test_me_events_lists_the_callers_events_newest_first(user, other_user):
    login(other_user.email)
    client = client_of(user)

    body = client.get("/api/v1/users/me/events").json()

    assert [e["type"] for e in body["results"]] == ["login_succeeded"]
    assert set(body["results"][0]) == FIELDS
    assert body["results"][0]["actor_id"] == str(user.pk)
    assert body["next"] is None and body["previous"] is None


def test_events_come_in_cursor_pages_newest_first(user):
    for _ in range(4):
        login(user.email)
    client = client_of(user)
    expected = [
        str(pk)
        for pk in SecurityEvent.objects.filter(user_id=user.pk)
        .order_by("-created_at", "-id")
        .values_list("pk", flat=True)
    ]

    first = client.get("/api/v1/users/me/events", {"page_size": 3}).json()
    second = client.get(first["next"]).json()

    assert [e["id"] for e in first["results"] + second["results"]] == expected
    assert second["next"] is None and second["previous"] is not None
    stamps = [e["created_at"] for e in first["results"] + second["results"]]
    assert stamps == sorted(stamps, reverse=True)


def test_own_events_by_id_are_listed(user):
    client = client_of(user)

    response = client.get(f"/api/v1/users/{user.pk}/events")

    assert response.status_code == 200 and len(response.json()["results"]) == 1


def test_another_users_events_are_404_for_a_non_staff_caller(user, other_user):
    login(other_user.email)

    assert_error(client_of(user).get(f"/api/v1/users/{other_user.pk}/events"), 404, NOT_FOUND)


def test_staff_lists_anyones_events(user, staff_user):
    login(user.email)

    body = client_of(staff_user).get(f"/api/v1/users/{user.pk}/events").json()

    assert [e["type"] for e in body["results"]] == ["login_succeeded"]


def test_events_need_authentication(api_client, user):
    assert_error(api_client.get("/api/v1/users/me/events"), 401, NOT_AUTHENTICATED)
    assert_error(api_client.get(f"/api/v1/users/{user.pk}/events"), 401, NOT_AUTHENTICATED)


def test_events_with_a_bad_cursor_are_a_validation_error(user):
    response = client_of(user).get("/api/v1/users/me/events", {"cursor": "garbage"})

    assert response.status_code == 400 and response.json()["code"] == "validation_error"
