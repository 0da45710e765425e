"""Odd bytes on the wire to a real gunicorn: what the test client cannot send (raw non-UTF-8 in the request line
and headers, NUL bytes, oversized header lines) answered without a 5xx, and the account unchanged afterwards.

The server is tests/ops/server.py's: ``config.settings`` under ``config/gunicorn.py`` on 127.0.0.1, a throwaway
database of its own (SQLite file, or a PostgreSQL database on the test server) and, with REDIS_URL, that Redis.
Requests gunicorn's own HTTP parser refuses (raw non-ASCII in the request line, a NUL in a header, a header line
over its limit, an unknown ``Expect`` or transfer coding) never reach Django: gunicorn answers them itself, in the
envelope since core/wire_errors.py, and no worker dies.
"""

import socket

import orjson
import pytest

from core import exceptions as codes
from tests.hostile.tally import count_response
from tests.ops.server import Server, base_env, create_user, throwaway_database

pytestmark = pytest.mark.slow

SUITE = "odd input"
EMAIL = "wire-owner@example.com"
PASSWORD = "correct-horse-battery-staple"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("hostile-gunicorn")
    with throwaway_database(tmp) as url:
        create_user(url, EMAIL, PASSWORD)
        server = Server(env={**base_env(url), "GUNICORN_WORKERS": "2"}, log_dir=tmp)
        try:
            yield server.start()
        finally:
            server.stop()


@pytest.fixture(scope="module")
def access(server) -> str:
    response = server.request("POST", "/api/v1/auth/token", {"email": EMAIL, "password": PASSWORD})
    assert response.status == 200, response.data
    return orjson.loads(response.data)["access"]


def raw(server: Server, head: bytes, body: bytes = b"") -> tuple[int, dict[str, str], bytes]:
    """Send bytes as they are on a new connection; return (status, headers, body) of the answer."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(head + b"\r\n\r\n" + body)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head_bytes, _, payload = data.partition(b"\r\n\r\n")
    status_line, *header_lines = head_bytes.decode("latin-1").split("\r\n")
    status = int(status_line.split()[1])
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in header_lines)}
    count_response(SUITE, status)
    return status, headers, payload


def request_head(method: bytes, target: bytes, *headers: bytes, body: bytes = b"") -> bytes:
    lines = [method + b" " + target + b" HTTP/1.1", b"Host: 127.0.0.1", b"Connection: close"]
    if body:
        lines += [b"Content-Type: application/json", b"Content-Length: " + str(len(body)).encode()]
    return b"\r\n".join([*lines, *headers])


def assert_envelope(status: int, headers: dict, payload: bytes, expected_status: int, code: str | None = None):
    assert status == expected_status, (status, payload[:300])
    assert headers["content-type"].startswith("application/json"), headers
    body = orjson.loads(payload)
    assert body["success"] is False and body["request_id"] == headers["x-request-id"], body
    if code:
        assert body["code"] == code, body


def me(server: Server, access: str) -> bytes:
    response = server.request("GET", "/api/v1/users/me", headers={"Authorization": f"Bearer {access}"})
    assert response.status == 200, response.data
    return response.data


@pytest.mark.parametrize(
    ("target", "status", "code"),
    [
        (b"/api/v1/users/%ff%fe", 404, codes.NOT_FOUND),
        (b"/api/v1/%c3%28", 404, codes.NOT_FOUND),
        (b"/api/v1/users/%00", 404, codes.NOT_FOUND),
        (b"/api/v1/nowhere/%ff%fe%00", 404, codes.NOT_FOUND),
        (b"/api/v1/auth/sessions?x=%ff&y=%00", 401, codes.NOT_AUTHENTICATED),
    ],
)
def test_non_utf8_and_nul_in_the_request_target_get_the_envelope(server, target, status, code):
    assert_envelope(*raw(server, request_head(b"GET", target)), status, code)


def test_non_utf8_bearer_token_is_token_not_valid(server):
    answer = raw(server, request_head(b"GET", b"/api/v1/users/me", b"Authorization: Bearer \xff\xfe\xfd.\x80.\x81"))

    assert_envelope(*answer, 401, codes.TOKEN_NOT_VALID)


def test_non_utf8_request_id_is_replaced(server):
    status, headers, payload = raw(server, request_head(b"GET", b"/healthz", b"X-Request-ID: \xff\xfe-abc"))

    assert status == 200
    assert headers["x-request-id"].isascii() and "\xff" not in headers["x-request-id"]


@pytest.mark.parametrize(
    "body",
    [b'{"email": "\xff\xfe", "password": "x"}', b"\x00" * 64, b"[" * 50_000 + b"]" * 50_000, b'{"a": 1, "a": 2}'],
    ids=["invalid-utf8", "nul-bytes", "deep-nesting", "duplicate-keys"],
)
def test_odd_json_bodies_through_gunicorn_are_a_parse_error(server, access, body):
    before = me(server, access)

    answer = raw(server, request_head(b"POST", b"/api/v1/auth/token", body=body), body)

    assert_envelope(*answer, 400, codes.PARSE_ERROR)
    assert me(server, access) == before


def test_odd_patch_of_the_owner_changes_nothing(server, access):
    before = me(server, access)
    body = b'{"first_name": "\xff", "first_name": "x"}'

    answer = raw(
        server,
        request_head(b"PATCH", b"/api/v1/users/me", f"Authorization: Bearer {access}".encode(), body=body),
        body,
    )

    assert_envelope(*answer, 400, codes.PARSE_ERROR)
    assert me(server, access) == before


@pytest.mark.parametrize(
    ("target", "header"),
    [
        (b"/api/v1/users/\xff\xfe", b"X-Odd: x"),
        (b"/api/v1/\xc3\x28", b"X-Odd: x"),
        (b"/api/v1/users/me", b"X-Odd: a\x00b"),
        (b"/api/v1/users/me", b"X-Long: " + b"a" * 20_000),
        (b"/api/v1/users/me", b"Bad Header Name: x"),
        (b"/api/v1/users/me", b"X-Odd: \r"),
    ],
    ids=["raw-non-utf8-path", "raw-invalid-utf8-path", "nul-in-header", "header-too-long", "space-in-name", "bare-cr"],
)
def test_requests_gunicorn_refuses_get_the_envelope_and_no_worker_dies(server, access, target, header):
    workers = server.worker_pids()

    status, headers, payload = raw(server, request_head(b"GET", target, header))

    # 431: Request Header Fields Too Large (RFC 6585), a code the contract's table lacks (README).
    expected = {400: codes.BAD_REQUEST, 431: codes.HEADER_FIELDS_TOO_LARGE}
    assert status in expected, (status, payload[:300])
    assert_envelope(status, headers, payload, status, expected[status])
    assert b"<html" not in payload and b"\xff" not in payload  # nothing of gunicorn's page, nothing echoed
    assert server.worker_pids() == workers
    me(server, access)


@pytest.mark.parametrize(
    ("head", "status", "code"),
    [
        (request_head(b"GET", b"/api/v1/users/" + b"a" * 9000), 414, codes.URI_TOO_LONG),
        (request_head(b"POST", b"/api/v1/auth/token", b"Expect: 200-ok"), 417, codes.EXPECTATION_FAILED),
        (b"GET /api/v1/users/me HTTP/9.9\r\nHost: 127.0.0.1", 400, codes.BAD_REQUEST),
    ],
    ids=["request-line-too-long", "unknown-expectation", "bad-http-version"],
)
def test_each_refusal_of_gunicorns_parser_has_its_status_and_code(server, access, head, status, code):
    got, headers, payload = raw(server, head)

    assert_envelope(got, headers, payload, status, code)
    assert "details" not in orjson.loads(payload)
    me(server, access)
