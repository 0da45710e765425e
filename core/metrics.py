"""Prometheus metrics of the service and the /metrics endpoint, correct across gunicorn workers.

With ``PROMETHEUS_MULTIPROC_DIR`` set before prometheus-client is imported (config/gunicorn.py does it), every
worker writes its values to files in that directory and /metrics merges them: the numbers are the server's,
whichever worker answers the scrape. Without it (``manage.py runserver``, tests, ``gunicorn config.wsgi``
alone) each process reports its own.

On the hot path a request costs one dict lookup for its label set (the children are resolved once and kept)
plus a counter increment and a histogram observation.
"""

import hmac
import ipaddress
import logging

from django.conf import settings
from django.http import HttpResponse
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest, values
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.metrics_core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector

from core import exceptions as codes
from core.health import readiness

logger = logging.getLogger("core.metrics")

__all__ = [
    "CACHE_REQUESTS",
    "DB_ERRORS",
    "LOGIN_FAILURES",
    "MULTIPROCESS",
    "PASSWORD_HASH_DURATION",
    "RATELIMIT_REFUSED",
    "RATELIMIT_STORE_ERRORS",
    "REQUESTS",
    "REQUEST_DURATION",
    "MetricsMiddleware",
    "observe_request",
    "record_cache_lookup",
    "record_db_error",
    "record_password_hash",
    "record_rate_limited",
    "record_rate_limit_store_error",
    "render_metrics",
]

# What prometheus-client decided at import time: files per process (multiprocess mode) or memory.
MULTIPROCESS: bool = getattr(values.ValueClass, "_multiprocess", False)

LABELS = ("route", "method", "status")
REQUESTS = Counter("http_requests_total", "HTTP requests answered, by route template, method and status.", LABELS)
REQUEST_DURATION = Histogram(
    "http_request_duration_seconds",
    "Time from the first middleware to the response, by route template, method and status.",
    LABELS,
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
LOGIN_FAILURES = Counter(
    "auth_login_failures_total",
    "Refused logins (wrong email or password, locked or inactive account), by endpoint (api, admin).",
    ["endpoint"],
)
RATELIMIT_REFUSED = Counter("ratelimit_refused_total", "Requests refused with 429, by limit.", ["limit"])
RATELIMIT_STORE_ERRORS = Counter(
    "ratelimit_store_errors_total",
    "Rate-limit checks that could not reach the shared cache, by limit and outcome (fail_open, fail_closed).",
    ["limit", "outcome"],
)
CACHE_REQUESTS = Counter(
    "cache_requests_total", "Shared-cache lookups, by cache and result (hit, miss, error).", ["cache", "result"]
)
DB_ERRORS = Counter("db_errors_total", "Database errors that reached a response, by exception class.", ["error"])
PASSWORD_HASH_DURATION = Histogram(
    "password_hash_seconds",
    "Argon2 password hashes (logins, registrations, password changes): the wait for one of the process's turns "
    "(ARGON2_MAX_CONCURRENT) and the hash itself, by phase (wait, hash).",
    ["phase"],
    buckets=(0.001, 0.01, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5, 1.0, 2.5, 5.0),
)

# Bounded label values: anything else is "OTHER", so a client cannot create series at will.
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# (route, method, status) of a refused login -> the endpoint label of auth_login_failures_total.
# The API answers 401; Django's admin answers a refused login by showing its form again (200).
LOGIN_FAILURE_ANSWERS = {
    ("/api/v1/auth/token", "POST", 401): "api",
    ("/admin/login/", "POST", 200): "admin",
}

_request_children: dict[tuple[str, str, int], tuple] = {}
_children: dict[tuple, object] = {}


def observe_request(route: str, method: str, status: int, seconds: float) -> None:
    """Count one answered request and its duration under its (route, method, status) label set."""
    key = (route, method, status)
    children = _request_children.get(key)
    if children is None:
        children = _request_children[key] = _resolve_request_children(route, method, status)
    children[0].inc()
    children[1].observe(seconds)
    if children[2] is not None:
        children[2].inc()


def _resolve_request_children(route: str, method: str, status: int) -> tuple:
    label_method = method if method in KNOWN_METHODS else "OTHER"
    labels = (route, label_method, str(status))
    endpoint = LOGIN_FAILURE_ANSWERS.get((route, method, status))
    return (
        REQUESTS.labels(*labels),
        REQUEST_DURATION.labels(*labels),
        LOGIN_FAILURES.labels(endpoint) if endpoint else None,
    )


def _child(metric, *labels: str):
    key = (metric, labels)
    child = _children.get(key)
    if child is None:
        child = _children[key] = metric.labels(*labels)
    return child


def record_rate_limited(limit: str) -> None:
    """Count one request refused by the named limit."""
    _child(RATELIMIT_REFUSED, limit).inc()


def record_rate_limit_store_error(limit: str, outcome: str) -> None:
    """Count one rate-limit check the shared cache could not answer, and what was done instead."""
    _child(RATELIMIT_STORE_ERRORS, limit, outcome).inc()


def record_cache_lookup(cache: str, *, hits: int = 0, misses: int = 0, errors: int = 0) -> None:
    """Count shared-cache lookups of one cache (for example ``auth_state``) by result."""
    if hits:
        _child(CACHE_REQUESTS, cache, "hit").inc(hits)
    if misses:
        _child(CACHE_REQUESTS, cache, "miss").inc(misses)
    if errors:
        _child(CACHE_REQUESTS, cache, "error").inc(errors)


def record_password_hash(*, waited: float, hashed: float) -> None:
    """Time one password hash: its wait for a turn and its run, in seconds.

    Hashes run outside the web workers too (``createsuperuser``, ``changepassword``), where PROMETHEUS_MULTIPROC_DIR
    may name a directory only the gunicorn master creates: the hash stands, and the miss is logged.
    """
    try:
        _child(PASSWORD_HASH_DURATION, "wait").observe(waited)
        _child(PASSWORD_HASH_DURATION, "hash").observe(hashed)
    except OSError as exc:
        logger.warning("password hash not timed: the metrics files cannot be written (%s)", exc)


def record_db_error(exc: BaseException) -> None:
    """Count one database error that reached a response (503 or 500)."""
    _child(DB_ERRORS, type(exc).__name__).inc()


class ReadinessCollector:
    """``dependency_up{dependency}``: 1 when the database or the cache answers at scrape time, else 0."""

    def collect(self):
        family = GaugeMetricFamily(
            "dependency_up", "1 when the dependency answered its readiness check at scrape.", labels=["dependency"]
        )
        for name, state in readiness().items():
            family.add_metric([name], 1.0 if state == "ok" else 0.0)
        yield family


_readiness_registry = CollectorRegistry(auto_describe=False)
_readiness_registry.register(ReadinessCollector())


def render_metrics() -> bytes:
    """Return every metric in Prometheus text format: merged across workers in multiprocess mode."""
    if MULTIPROCESS:
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
    else:
        registry = REGISTRY
    return generate_latest(registry) + generate_latest(_readiness_registry)


class MetricsMiddleware:
    """Answer ``GET /metrics`` before Host checks and HTTPS redirects (Prometheus scrapes by IP, in plain HTTP).

    Allowed for clients in ``METRICS_ALLOWED_IPS`` (networks; the client IP honours TRUSTED_PROXY_COUNT) or
    presenting ``Authorization: Bearer $METRICS_TOKEN``; anyone else gets 403 ``permission_denied``.
    """

    paths = frozenset({"/metrics", "/metrics/"})

    def __init__(self, get_response):
        # Imported here: both modules record metrics, so importing them at the top would be circular.
        from core.exception_handler import error_response
        from core.ratelimit import client_ip

        self.error_response = error_response
        self.client_ip = client_ip
        self.get_response = get_response
        self.networks = tuple(ipaddress.ip_network(net, strict=False) for net in settings.METRICS_ALLOWED_IPS)
        token = settings.METRICS_TOKEN
        self.bearer = f"Bearer {token}".encode() if token else None

    def __call__(self, request):
        if request.path_info not in self.paths:
            return self.get_response(request)
        if request.method not in ("GET", "HEAD"):
            response = self.error_response(405, codes.METHOD_NOT_ALLOWED, "Method not allowed.", request=request)
            response["Allow"] = "GET, HEAD"
            return response
        if not self.allowed(request):
            return self.error_response(
                403, codes.PERMISSION_DENIED, "You do not have permission to perform this action.", request=request
            )
        response = HttpResponse(render_metrics(), content_type=CONTENT_TYPE_PLAIN_0_0_4)
        response["Cache-Control"] = "no-store"
        return response

    def allowed(self, request) -> bool:
        header = request.META.get("HTTP_AUTHORIZATION")
        if header and self.bearer is not None and hmac.compare_digest(header.encode(), self.bearer):
            return True
        try:
            address = ipaddress.ip_address(self.client_ip(request))
        except ValueError:
            return False
        if address.version == 6 and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        return any(address in network for network in self.networks)
