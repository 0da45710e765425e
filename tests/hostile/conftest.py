"""Hostile-input suites: a tally of the requests each suite sends, printed as one line per suite at the end.

Every request that reaches Django in this process goes through ``BaseHandler.get_response`` (the test client's
handler and the WSGI application schemathesis drives alike), so the tally wraps it while a hostile test runs.
The session hooks that count the tests and print the sum are in tests/hostile/report.py.
"""

import pytest
from django.core.handlers.base import BaseHandler

from tests.hostile.tally import count_response, suite_of

# A rate generous enough for a fuzzer (thousands of requests a minute from one IP, one user) without turning
# the limits off: they stay enabled and counted, so their code path is exercised too.
FUZZ_RATE = "1000000/m"
RATE_SETTINGS = (
    "RATELIMIT_ANON",
    "RATELIMIT_USER",
    "RATELIMIT_LOGIN_IP",
    "RATELIMIT_LOGIN_EMAIL",
    "RATELIMIT_REGISTER_IP",
    "RATELIMIT_RESET_IP",
    "RATELIMIT_RESET_EMAIL",
    "RATELIMIT_VERIFY_RESEND",
)


@pytest.fixture(autouse=True)
def _count_requests(request, monkeypatch):
    suite = suite_of(request.node.nodeid)
    if suite is None:
        yield
        return
    original = BaseHandler.get_response
    # A test that provokes a 500 on purpose (to look at its body) asks for ``provoked_server_error``.
    provoked = "provoked_server_error" in request.fixturenames

    def get_response(handler, django_request):
        response = original(handler, django_request)
        count_response(suite, 200 if provoked and response.status_code == 500 else response.status_code)
        return response

    monkeypatch.setattr(BaseHandler, "get_response", get_response)
    yield


@pytest.fixture
def provoked_server_error():
    """Mark a test whose 500 is the subject, so the suite's 5xx count shows only unexpected ones."""


@pytest.fixture
def generous_rate_limits(settings):
    """Raise every rate limit far above what a suite sends (limits stay on)."""
    for name in RATE_SETTINGS:
        setattr(settings, name, FUZZ_RATE)
    return settings
