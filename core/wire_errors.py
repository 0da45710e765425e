"""Requests gunicorn's HTTP parser refuses, answered in the contract's envelope.

A request line or header gunicorn cannot parse (raw non-ASCII or a NUL, a line over its limits, a bad
``Expect`` or transfer coding) never reaches Django: gunicorn writes the answer itself, an HTML page by
default. ``install()`` replaces that writer, so these answers carry the envelope and an ``X-Request-ID`` like
every other. ``config/wsgi.py`` calls it, so ``gunicorn config.wsgi`` without the config file gets it too;
under another server (gunicorn not loaded) it does nothing. gunicorn's message, which quotes the refused
bytes, is not sent: the code and status say what was wrong.
"""

import secrets
import sys
from http import HTTPStatus

import orjson

from core import exceptions as codes

__all__ = ["install", "wire_error_response"]

# The statuses gunicorn's parser answers with. 414, 417, 431 and 501 have no code in the contract's table:
# these are added (README, "Where this differs").
WIRE_ERRORS = {
    400: (codes.BAD_REQUEST, "The request could not be read."),
    403: (codes.PERMISSION_DENIED, "This request is not allowed."),
    414: (codes.URI_TOO_LONG, "The request line is too long."),
    417: (codes.EXPECTATION_FAILED, "The Expect header cannot be met."),
    431: (codes.HEADER_FIELDS_TOO_LARGE, "The request's header fields are too large."),
    500: (codes.SERVER_ERROR, "A server error occurred."),
    501: (codes.NOT_IMPLEMENTED, "The request uses something this server does not implement."),
}


def wire_error_response(status: int) -> bytes:
    """Return the whole HTTP answer (head and envelope) for a request refused with ``status`` before Django."""
    code, message = WIRE_ERRORS.get(status) or WIRE_ERRORS[400 if status < 500 else 500]
    request_id = secrets.token_hex(16)
    body = orjson.dumps({"success": False, "error": message, "code": code, "request_id": request_id})
    head = (
        f"HTTP/1.1 {status} {HTTPStatus(status).phrase}\r\n"
        "Connection: close\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n"
        f"X-Request-ID: {request_id}\r\n"
        "X-Content-Type-Options: nosniff\r\n"
        "Cache-Control: no-store\r\n"
        "\r\n"
    )
    return head.encode("ascii") + body


def install() -> bool:
    """Make gunicorn write its parser's refusals as the envelope; return False when gunicorn is not the server."""
    util = sys.modules.get("gunicorn.util")
    if util is None:
        return False

    def write_error(sock, status_int, reason, mesg):  # gunicorn.util.write_error's signature
        util.write_nonblock(sock, wire_error_response(status_int))

    util.write_error = write_error
    return True
