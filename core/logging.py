"""Request-scoped log context (request id), the JSON line formatter and the access-line writer."""

import contextvars
import logging
import sys
import time
import traceback
from datetime import UTC, datetime

import orjson
from django.conf import settings

__all__ = [
    "JsonFormatter",
    "OncePerInterval",
    "RequestIdFilter",
    "get_request_id",
    "request_id_var",
    "write_access_line",
]

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)

# Attributes every LogRecord has; anything else passed in ``extra`` goes into the JSON line.
# ``request`` (Django's request loggers pass the HttpRequest) is left out: its repr carries the query string.
_RESERVED = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message",
    "asctime",
    "request_id",
    "request",
}


def get_request_id() -> str | None:
    """Return the id of the request being served by this thread, if any."""
    return request_id_var.get()


class RequestIdFilter(logging.Filter):
    """Stamp every record with the current request id (``-`` outside a request)."""

    def filter(self, record):
        if not getattr(record, "request_id", None):
            record.request_id = request_id_var.get() or "-"
        return True


class JsonFormatter(logging.Formatter):
    """Format a record as one JSON line; the stack trace of an error goes inside the line."""

    def format(self, record):
        line = {
            "ts": datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None) or request_id_var.get(),
        }
        for key, value in record.__dict__.items():
            if key not in _RESERVED and not key.startswith("_"):
                line[key] = value
        if record.exc_info:
            line["exc_type"] = record.exc_info[0].__name__ if record.exc_info[0] else None
            line["stack"] = "".join(traceback.format_exception(*record.exc_info))
        return orjson.dumps(line, default=str).decode()


def write_access_line(line: dict) -> None:
    """Write one access line to stdout: one orjson dump and one write, bypassing ``logging`` (PERF.md).

    JSON with ``LOG_FORMAT=json`` (production's default), else a readable text line (development).
    """
    stream = sys.stdout
    if settings.LOG_FORMAT == "json":
        stream.write(orjson.dumps(line).decode() + "\n")
    else:
        stream.write(
            f"{line['ts']} {line['level']} access [{line['request_id']}] {line['method']} {line['path']} "
            f"{line['status']} {line['duration_ms']}ms route={line['route']} user={line['user_id'] or '-'} "
            f"ip={line['ip']} bytes={line['bytes']}\n"
        )
    stream.flush()


class OncePerInterval:
    """Lets a repeated warning through at most once per ``seconds`` in this process; the first one always.

    An outage fails every request: one line per interval says so without flooding the log (metrics count each).
    """

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.last = float("-inf")

    def due(self) -> bool:
        now = time.monotonic()
        if now - self.last < self.seconds:
            return False
        self.last = now
        return True
