"""Floor F0: a raw WSGI callable that answers every request with one fixed user, as the service renders it.

The body is the service's user representation (``UserSerializer`` through orjson, as the cache
stores it) for a typical seeded user, so F0, F1 and the service move the same number of bytes.
tests/bench checks that the service renders these very field values to these very bytes.
"""

import orjson

USER = {
    "id": "6f1c2a9e-8b47-4d3e-9a51-2c7e0b4f8d13",
    "email": "anna.martinez.mx4k2q71048213@example.org",
    "first_name": "Anna",
    "last_name": "Martinez",
    "is_active": True,
    "is_staff": False,
    "email_verified": True,
    "date_joined": "2023-04-11T08:15:42.123456Z",
    "last_login": "2026-11-20T17:03:11.654321Z",
}
BODY = orjson.dumps(USER)
HEADERS = [("Content-Type", "application/json"), ("Content-Length", str(len(BODY)))]


def application(environ, start_response):
    start_response("200 OK", HEADERS)
    return [BODY]
