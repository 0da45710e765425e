"""Assertions on the contract's error envelope."""

import re

REQUEST_ID_RE = re.compile(r"[A-Za-z0-9._-]{1,128}")


def assert_error(response, status: int, code: str, *, fields: list[str] | None = None) -> dict:
    """Assert ``response`` is the error envelope with this status and code; return its body."""
    assert response.status_code == status, (response.status_code, response.content[:500])
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["success"] is False
    assert body["code"] == code, body
    assert isinstance(body["error"], str) and body["error"]
    assert body["request_id"] == response["X-Request-ID"]
    assert REQUEST_ID_RE.fullmatch(body["request_id"])
    assert "stack" not in body
    if code == "validation_error":
        assert isinstance(body["details"], dict) and body["details"]
        for messages in body["details"].values():
            assert isinstance(messages, list) and all(isinstance(m, str) for m in messages)
        if fields is not None:
            assert set(fields) <= set(body["details"]), body["details"]
    else:
        assert "details" not in body
    expected_keys = {"success", "error", "code", "request_id"} | ({"details"} if code == "validation_error" else set())
    assert set(body) == expected_keys, body
    return body
