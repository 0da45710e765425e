"""The newcomer's flow end to end: register, log in, read me, refresh, sessions, logout."""

import pytest

from tests.assertions import assert_error
from tests.conftest import bearer_client

pytestmark = pytest.mark.django_db(transaction=True)


def test_register_login_me_refresh_sessions_logout(api_client):
    response = api_client.post(
        "/api/v1/users",
        {"email": "Ann@Example.com", "password": "a-long-enough-pass", "first_name": "Ann"},
        format="json",
    )
    assert response.status_code == 201
    user_id = response.json()["id"]
    assert response["Location"] == f"/api/v1/users/{user_id}"
    assert response.json()["email"] == "ann@example.com"

    tokens = api_client.post(
        "/api/v1/auth/token", {"email": "ANN@example.com", "password": "a-long-enough-pass"}, format="json"
    ).json()
    client = bearer_client(tokens["access"])
    me = client.get("/api/v1/users/me")
    assert me.status_code == 200 and me.json()["id"] == user_id

    refreshed = api_client.post("/api/v1/auth/token/refresh", {"refresh": tokens["refresh"]}, format="json")
    assert refreshed.status_code == 200
    client = bearer_client(refreshed.json()["access"])
    sessions = client.get("/api/v1/auth/sessions").json()
    assert len(sessions) == 1 and sessions[0]["current"] is True

    assert client.post("/api/v1/auth/logout").status_code == 204
    assert_error(client.get("/api/v1/users/me"), 401, "token_not_valid")
    assert_error(bearer_client(tokens["access"]).get("/api/v1/users/me"), 401, "token_not_valid")
    again = api_client.post("/api/v1/auth/token/refresh", {"refresh": refreshed.json()["refresh"]}, format="json")
    assert_error(again, 401, "token_not_valid")
