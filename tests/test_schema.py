"""The OpenAPI schema describes the contract's users and auth API with its errors; the docs are self-hosted."""

import re

import pytest
from drf_spectacular.validation import validate_schema
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db

ENVELOPE_REF = "#/components/schemas/ErrorEnvelope"

# The contract's users and auth tables: (method, path, anonymous allowed, success status).
OPERATIONS = [
    ("post", "/api/v1/users", True, "201"),
    ("get", "/api/v1/users", False, "200"),
    ("get", "/api/v1/users/{id}", False, "200"),
    ("put", "/api/v1/users/{id}", False, "200"),
    ("patch", "/api/v1/users/{id}", False, "200"),
    ("delete", "/api/v1/users/{id}", False, "204"),
    ("get", "/api/v1/users/me", False, "200"),
    ("put", "/api/v1/users/me", False, "200"),
    ("patch", "/api/v1/users/me", False, "200"),
    ("delete", "/api/v1/users/me", False, "204"),
    ("get", "/api/v1/users/{user_id}/events", False, "200"),
    ("get", "/api/v1/users/me/events", False, "200"),
    ("post", "/api/v1/auth/token", True, "200"),
    ("post", "/api/v1/auth/token/refresh", True, "200"),
    ("post", "/api/v1/auth/logout", False, "204"),
    ("post", "/api/v1/auth/logout-all", False, "204"),
    ("get", "/api/v1/auth/sessions", False, "200"),
    ("delete", "/api/v1/auth/sessions/{session_id}", False, "204"),
    ("post", "/api/v1/auth/password/change", False, "204"),
    ("post", "/api/v1/auth/password/reset", True, "202"),
    ("post", "/api/v1/auth/password/reset/confirm", True, "204"),
    ("post", "/api/v1/auth/email/verify", True, "204"),
    ("post", "/api/v1/auth/email/verify/resend", False, "202"),
]
OPERATION_IDS = [f"{method.upper()} {path}" for method, path, _, _ in OPERATIONS]


@pytest.fixture(scope="module")
def schema(django_db_blocker):
    with django_db_blocker.unblock():
        response = APIClient().get("/api/schema/", {"format": "json"})
    assert response.status_code == 200, response.content[:300]
    return response.json()


def _operation(schema, method, path):
    assert path in schema["paths"], sorted(schema["paths"])
    assert method in schema["paths"][path], sorted(schema["paths"][path])
    return schema["paths"][path][method]


def test_schema_is_served_anonymously_as_openapi_3(api_client):
    response = api_client.get("/api/schema/")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/vnd.oai.openapi")
    assert response.content.startswith(b"openapi: 3.")


def test_schema_is_served_as_json_on_request(api_client):
    response = api_client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")

    assert response.status_code == 200
    assert response.json()["openapi"].startswith("3.")


def test_schema_is_valid_openapi(schema):
    validate_schema(schema)


@pytest.mark.parametrize(("method", "path", "anonymous", "success"), OPERATIONS, ids=OPERATION_IDS)
def test_contract_operation_is_described_with_its_success_response(schema, method, path, anonymous, success):
    operation = _operation(schema, method, path)

    assert success in operation["responses"], sorted(operation["responses"])


@pytest.mark.parametrize(("method", "path", "anonymous", "success"), OPERATIONS, ids=OPERATION_IDS)
def test_every_error_response_of_an_operation_is_the_envelope(schema, method, path, anonymous, success):
    operation = _operation(schema, method, path)
    errors = {status: r for status, r in operation["responses"].items() if int(status) >= 400}

    assert {"405", "429", "500", "503"} <= set(errors), sorted(errors)
    for status, response in errors.items():
        assert response["description"], status
        assert response["content"]["application/json"]["schema"] == {"$ref": ENVELOPE_REF}, status


@pytest.mark.parametrize(("method", "path", "anonymous", "success"), OPERATIONS, ids=OPERATION_IDS)
def test_operation_lists_the_errors_its_request_can_meet(schema, method, path, anonymous, success):
    operation = _operation(schema, method, path)
    statuses = set(operation["responses"])

    if "requestBody" in operation:
        assert {"400", "413", "415"} <= statuses
    if "{" in path:
        assert "404" in statuses
    if not anonymous:
        assert "401" in statuses


@pytest.mark.parametrize(("method", "path", "anonymous", "success"), OPERATIONS, ids=OPERATION_IDS)
def test_operation_security_says_whether_a_token_is_needed(schema, method, path, anonymous, success):
    security = _operation(schema, method, path).get("security", [])

    if anonymous:
        assert {} in security, security
    else:
        assert security == [{"jwtAuth": []}]


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("get", "/api/v1/users", "403"),
        ("post", "/api/v1/auth/token", "401"),
        ("post", "/api/v1/auth/token", "403"),
        ("post", "/api/v1/auth/token/refresh", "401"),
        ("get", "/api/v1/users/{id}", "404"),
        ("delete", "/api/v1/auth/sessions/{session_id}", "404"),
    ],
)
def test_contract_specific_errors_are_named(schema, method, path, status):
    response = _operation(schema, method, path)["responses"][status]

    assert response["content"]["application/json"]["schema"] == {"$ref": ENVELOPE_REF}


def test_error_envelope_component_matches_the_contract(schema):
    envelope = schema["components"]["schemas"]["ErrorEnvelope"]

    assert set(envelope["properties"]) == {"success", "error", "code", "details", "request_id"}
    assert set(envelope["required"]) == {"code", "error", "request_id"}
    details = envelope["properties"]["details"]
    assert details["type"] == "object"
    assert details["additionalProperties"] == {"type": "array", "items": {"type": "string"}}


def test_bearer_jwt_security_scheme_is_described(schema):
    assert schema["components"]["securitySchemes"]["jwtAuth"] == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
    }


def _local_assets(html: str) -> list[str]:
    return re.findall(r'(?:src|href)="(/static/[^"]+)"', html)


@pytest.mark.parametrize("page", ["/api/docs/", "/api/redoc/"])
def test_docs_page_renders_anonymously(api_client, page):
    response = api_client.get(page)

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    assert "/api/schema/" in response.content.decode()


@pytest.mark.parametrize("page", ["/api/docs/", "/api/redoc/"])
def test_docs_page_assets_are_served_by_the_service(api_client, page):
    html = api_client.get(page).content.decode()
    assets = _local_assets(html)

    assert any(a.endswith(".js") for a in assets), html
    for asset in assets:
        response = api_client.get(asset)
        assert response.status_code == 200, asset
        assert b"".join(response.streaming_content), asset


def test_swagger_ui_stylesheet_is_served_by_the_service(api_client):
    html = api_client.get("/api/docs/").content.decode()

    assert any(a.endswith(".css") for a in _local_assets(html)), html


@pytest.mark.parametrize("page", ["/api/docs/", "/api/redoc/"])
def test_docs_page_loads_nothing_from_outside(api_client, page):
    html = api_client.get(page).content.decode()

    assert not re.findall(r'(?:src|href)="(?:https?:)?//', html), html


def test_registration_documents_its_location_header(schema):
    created = _operation(schema, "post", "/api/v1/users")["responses"]["201"]

    assert "Location" in created.get("headers", {}), created


def test_swagger_ui_does_not_send_the_schema_to_the_online_validator(api_client):
    html = api_client.get("/api/docs/").content.decode()

    assert '"validatorUrl": null' in html
