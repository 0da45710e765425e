"""Schemathesis against the service's own /api/schema/: every operation, anonymous and with real user and staff tokens.

The service runs in-process as its WSGI application (``config.wsgi``, the one gunicorn serves), with every
middleware, against whatever the settings point at: SQLite and local memory by default, PostgreSQL and Redis
when ``DATABASE_URL`` and ``REDIS_URL`` are set. Checks: no 5xx, status codes, content types, headers and bodies
as the schema says, invalid input refused, auth enforced where the schema asks for it, and every 4xx/5xx body
the contract's error envelope (``error_envelope`` below).

Bounded for CI by ``HOSTILE_FUZZ_EXAMPLES`` (examples per operation and identity) and ``HOSTILE_FUZZ_BUDGET``
(seconds for the whole module; once spent, remaining examples are not sent). ``make fuzz`` raises both and
draws a fresh random seed; CI's run is derandomized so a red build reproduces.
"""

import os
import time

import jwt
import pytest
import schemathesis
from django.conf import settings as django_settings
from django.core import signals
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.errors import FlakyStrategyDefinition
from schemathesis.checks import not_a_server_error
from schemathesis.core.parameters import ParameterLocation
from schemathesis.specs.openapi import checks as openapi_checks

from core import exceptions as codes
from tests.conftest import login
from tests.factories import UserFactory
from users.models import Session, User

pytestmark = pytest.mark.django_db

EXAMPLES = int(os.environ.get("HOSTILE_FUZZ_EXAMPLES", "12"))
BUDGET = float(os.environ.get("HOSTILE_FUZZ_BUDGET", "90"))
RANDOM = os.environ.get("HOSTILE_FUZZ_RANDOM", "") == "1"
STATEFUL_SCENARIOS = int(os.environ.get("HOSTILE_FUZZ_SCENARIOS", "15"))

# The contract's error table: which codes each error status may carry.
CODES_BY_STATUS = {
    400: {codes.VALIDATION_ERROR, codes.PARSE_ERROR, codes.BAD_REQUEST},
    401: {codes.NOT_AUTHENTICATED, codes.AUTHENTICATION_FAILED, codes.TOKEN_NOT_VALID},
    403: {codes.PERMISSION_DENIED, codes.EMAIL_NOT_VERIFIED},
    404: {codes.NOT_FOUND},
    405: {codes.METHOD_NOT_ALLOWED},
    413: {codes.PAYLOAD_TOO_LARGE},
    415: {codes.UNSUPPORTED_MEDIA_TYPE},
    429: {codes.RATE_LIMITED},
    500: {codes.SERVER_ERROR},
    503: {codes.SERVICE_UNAVAILABLE},
}


def in_test_transaction(app):
    """Wrap the WSGI app as Django's test client runs it: request signals leave the test's connection open.

    Django's handler closes the database connection when a request starts or ends with autocommit off, which it
    is inside the test's transaction: on PostgreSQL every later query would fail ("the connection is closed").
    """

    def application(environ, start_response):
        signals.request_started.disconnect(close_old_connections)
        signals.request_finished.disconnect(close_old_connections)
        try:
            response = app(environ, start_response)
            body = b"".join(response)
            response.close()  # sends request_finished
        finally:
            signals.request_started.connect(close_old_connections)
            signals.request_finished.connect(close_old_connections)
        return [body]

    return application


schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", in_test_transaction(get_wsgi_application()))

_started: float | None = None


def budget_left() -> bool:
    """Whether the module's time budget, counted from its first example, still has time in it."""
    global _started
    if _started is None:
        _started = time.monotonic()
    return time.monotonic() - _started < BUDGET


def error_envelope(ctx, response, case):
    """Every error response is the contract's envelope, with a code its status allows."""
    status = response.status_code
    if status < 400:
        return None
    assert response.headers.get("content-type", [""])[0].startswith("application/json"), response.headers
    body = response.json()
    assert isinstance(body, dict), body
    expected = {"success", "error", "code", "request_id"}
    if body.get("code") == codes.VALIDATION_ERROR:
        expected.add("details")
    assert set(body) == expected, f"envelope keys {sorted(body)} != {sorted(expected)}"
    assert body["success"] is False
    assert isinstance(body["error"], str) and body["error"], body
    assert body["code"] in CODES_BY_STATUS.get(status, set()), f"{status} carries code {body['code']!r}"
    assert body["request_id"] == response.headers["x-request-id"][0], body
    if body["code"] == codes.VALIDATION_ERROR:
        details = body["details"]
        assert isinstance(details, dict) and details, details
        assert all(isinstance(m, list) and all(isinstance(x, str) for x in m) for m in details.values()), details
    if status == 429:
        assert int(response.headers["retry-after"][0]) >= 1
    return True


CHECKS = [
    not_a_server_error,
    openapi_checks.status_code_conformance,
    openapi_checks.content_type_conformance,
    openapi_checks.response_headers_conformance,
    openapi_checks.response_schema_conformance,
    openapi_checks.negative_data_rejection,
    openapi_checks.missing_required_header,
    openapi_checks.ignored_auth,
    openapi_checks.unsupported_method,
    error_envelope,
]
# Not positive_data_acceptance: a schema-valid cursor, token or password is still refused when it is not a real
# one (400 in the envelope, as the contract says), so that check would only report the contract itself.
STATEFUL_CHECKS = [*CHECKS, openapi_checks.use_after_free, openapi_checks.ensure_resource_availability]


class Identity:
    """Who sends the requests: nobody, a plain user or a staff member, with a real token from the login API.

    A fuzzed request may end the identity's session or delete its account (logout, DELETE /users/me, ...);
    the identity then logs in again as a new user before the next example.
    """

    def __init__(self, kind: str):
        self.kind = kind
        self.user: User | None = None
        self.access = ""
        self.sid = ""

    def headers(self) -> dict[str, str]:
        if self.kind == "anonymous":
            return {}
        if self.user is None:
            self.user = UserFactory(staff=self.kind == "staff")
            self.access = login(self.user.email)["access"]
            self.sid = jwt.decode(self.access, options={"verify_signature": False})["sid"]
        return {"Authorization": f"Bearer {self.access}"}

    def refresh_if_ended(self) -> None:
        """Start over as a new user when the last request ended this identity's session or account."""
        if self.user is None:
            return
        alive = Session.objects.filter(pk=self.sid, ended_at__isnull=True).exists() and (
            User.objects.filter(pk=self.user.pk, is_active=True).exists()
        )
        if not alive:
            self.user = None


class Victim:
    """Another user, with an open session: the object a request names that is not the caller's."""

    def __init__(self):
        self.user: User | None = None
        self.sid = ""

    def ids(self) -> tuple[str, str]:
        if self.user is None or not User.objects.filter(pk=self.user.pk).exists():
            self.user = UserFactory()
            access = login(self.user.email)["access"]
            self.sid = jwt.decode(access, options={"verify_signature": False})["sid"]
        return str(self.user.pk), self.sid


_current = Identity("anonymous")


@schema.auth(refresh_interval=None)
class CurrentIdentity:
    """Put the current identity's real token on every generated case (none for anonymous).

    Cases that test a missing Authorization header keep it missing: schemathesis skips the provider for them.
    """

    def get(self, case, context):
        return _current.headers().get("Authorization")

    def set(self, case, data, context):
        case.headers = {**(case.headers or {}), "Authorization": data}


def aim_path_parameters(case, identity: Identity, victim: Victim, choice: str) -> None:
    """Point a generated ``{id}`` / ``{session_id}`` at the caller's own object, another user's, or leave it."""
    negative_path = case.meta is not None and case.meta.is_negative_at(ParameterLocation.PATH)
    if not case.path_parameters or choice == "generated" or negative_path:
        return
    victim_id, victim_sid = victim.ids()
    own_id = str(identity.user.pk) if identity.user else victim_id
    for name in case.path_parameters:
        if name in ("id", "user_id"):
            case.path_parameters[name] = own_id if choice == "own" else victim_id
        elif name == "session_id":
            case.path_parameters[name] = identity.sid if choice == "own" and identity.sid else victim_sid


def hypothesis_settings(examples: int):
    return settings(
        max_examples=examples,
        deadline=None,
        derandomize=not RANDOM,
        database=None,
        suppress_health_check=list(HealthCheck),
        print_blob=True,
    )


@pytest.fixture
def victim():
    return Victim()


@pytest.fixture(params=["anonymous", "user", "staff"])
def identity(request, generous_rate_limits):
    global _current
    _current = Identity(request.param)
    yield _current
    _current = Identity("anonymous")


@schema.given(choice=st.sampled_from(["generated", "own", "other"]))
@schema.parametrize()
@hypothesis_settings(EXAMPLES)
def test_operation_answers_within_its_schema_and_the_envelope(case, choice, identity, victim):
    if not budget_left():
        return
    aim_path_parameters(case, identity, victim, choice)
    try:
        case.call_and_validate(checks=CHECKS)
    finally:
        identity.refresh_if_ended()


Workflow = schema.as_state_machine()


class StatefulWorkflow(Workflow):
    """Chains of calls along the links schemathesis infers (a created user's id into its detail, ...)."""

    completed = 0

    def validate_response(self, response, case, additional_checks=None, **kwargs):
        case.validate_response(
            response, checks=STATEFUL_CHECKS, transport_kwargs=kwargs or None, recorder=self.recorder
        )

    def after_call(self, response, case):
        _current.refresh_if_ended()

    def teardown(self):
        type(self).completed += 1
        super().teardown()


def stateful_settings(scenarios: int, attempt: int):
    return settings(
        max_examples=scenarios,
        stateful_step_count=8,
        deadline=None,
        # Later attempts draw new scenarios rather than replaying the ones the database already answered.
        derandomize=not RANDOM and attempt == 0,
        database=None,
        # Scenarios share the database, so a replayed one may meet other rows: generate, never shrink.
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )


def test_stateful_workflows_stay_within_the_schema_and_the_envelope(identity):
    if not budget_left():
        pytest.skip(f"HOSTILE_FUZZ_BUDGET ({BUDGET:.0f}s) spent before the stateful phase")
    StatefulWorkflow.completed = 0
    for attempt in range(5):
        if StatefulWorkflow.completed >= STATEFUL_SCENARIOS or not budget_left():
            break
        try:
            StatefulWorkflow.run(settings=stateful_settings(STATEFUL_SCENARIOS - StatefulWorkflow.completed, attempt))
        except FlakyStrategyDefinition:
            # A scenario prefix met a database that earlier scenarios had changed, so the links it could follow
            # differed (schemathesis's own runner retries the same way). Check failures are never swallowed:
            # they arrive as schemathesis's FailureGroup.
            continue
    assert StatefulWorkflow.completed > 0


def test_schema_under_test_is_the_one_the_service_serves():
    # Guard against fuzzing an empty or foreign schema: the operations of the contract are all there.
    labels = {result.ok().label for result in schema.get_all_operations()}

    assert "POST /api/v1/users" in labels
    assert "DELETE /api/v1/auth/sessions/{session_id}" in labels
    assert len(labels) >= 23, sorted(labels)
    assert django_settings.RATELIMIT_ENABLE
