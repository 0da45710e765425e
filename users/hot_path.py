"""The hot path: a cached ``GET /users/me`` or ``/users/{id}`` answered by a plain Django view.

PERF.md measured DRF's dispatch around a cached read (request wrapper, content negotiation, permission and
throttle objects) at a tenth of the floor. ``cached_read`` wraps the viewset's own view for these two routes:
it answers the plain case itself, with the same authentication class, the same per-user limit (counted in
the authentication's Redis round trip when it can), the same cached body and the same headers, and hands
everything else to the viewset unchanged. What it hands over carries the authentication outcome and the
request count it already paid for, so the viewset never verifies the token or counts the request twice.

Handed to the viewset: any method but GET, a query string (``?format=`` is DRF's), an ``Accept`` header
other than the plain JSON ones, a request without Bearer credentials, a refused token, an error while
authenticating, a caller over the per-user limit (or whose count the cache could not give), and an id the
caller may not read. DRF answers each exactly as it would alone: 401, 404, 406, 429 (or fail open) and 503
in the envelope. A database that fails while the body is read is answered 503 by the envelope middleware.

``AuthStatePrefetchMiddleware`` (high in the middleware chain) sends the authentication's Redis round trip
as the request comes in, so its answer is waiting when the view asks for it.
"""

import dataclasses
import functools

from django.conf import settings
from django.http import HttpResponse

from core.ratelimit import STORE_DOWN, STORE_ERRORS, count_request, under_user_limit
from users import selectors
from users.auth_state import auth_prefetch
from users.authentication import PREFETCH_ATTR, SessionJWTAuthentication, remember_outcome, verified_bearer
from users.models import User

__all__ = ["AuthStatePrefetchMiddleware", "cached_read"]

# Accept headers the JSON renderer serves as they are (absent: DRF reads it as */*).
PLAIN_ACCEPT = frozenset({"", "*/*", "application/json", "application/json, */*", "application/*"})


def cached_read(drf_view):
    """Wrap the viewset's view of one route (``me`` or the detail) with the plain-view fast path for GET."""
    authenticator = SessionJWTAuthentication()
    # DRF's answer carries Allow (the route's methods, as APIView.allowed_methods lists them); so does this one.
    bound = {*drf_view.actions, "head", "options"}
    allow = ", ".join(method.upper() for method in drf_view.cls.http_method_names if method in bound)

    @functools.wraps(drf_view)  # keeps .cls, .actions and csrf_exempt: the schema and Django see the viewset
    def view(request, *args, **kwargs):
        meta = request.META
        if request.method != "GET" or meta.get("QUERY_STRING") or meta.get("HTTP_ACCEPT", "") not in PLAIN_ACCEPT:
            return drf_view(request, *args, **kwargs)
        try:
            outcome = authenticator.authenticate(request)
        except Exception as exc:  # noqa: BLE001  (the viewset raises it again and answers it in the envelope)
            remember_outcome(request, exc)
            return drf_view(request, *args, **kwargs)
        if outcome is None:
            return drf_view(request, *args, **kwargs)  # no Bearer credentials: DRF's 401
        user, token = outcome
        if settings.RATELIMIT_ENABLE and user.rate_count is None:
            # Not counted in the round trip (no Redis): count it once, here; the viewset reuses this count.
            user = dataclasses.replace(user, rate_count=_count(user))
        remember_outcome(request, (user, token))
        if settings.RATELIMIT_ENABLE and not under_user_limit(user.rate_count, settings.RATELIMIT_USER):
            return drf_view(request, *args, **kwargs)  # DRF's throttle: 429, or fail open, from this count
        request.user = user
        try:
            body = selectors.user_body_for(requested_by=user, user_id=kwargs.get("pk", user.pk))
        except User.DoesNotExist:
            return drf_view(request, *args, **kwargs)  # DRF's 404 in the envelope
        # Anything else (a dead database on a cold entry) is not tried twice: the envelope middleware answers it
        # as DRF would have (503 service_unavailable).
        response = HttpResponse(body, content_type="application/json")
        response["Allow"] = allow
        return response

    return view


def _count(user) -> int:
    try:
        return count_request("user", str(user.pk), settings.RATELIMIT_USER)
    except STORE_ERRORS:
        return STORE_DOWN


class AuthStatePrefetchMiddleware:
    """Send a token's auth-state round trip as the request comes in; the view reads the replies when it needs them.

    For ``GET /api/v1/users...`` with a valid Bearer token, and Redis as the shared cache, the round trip that
    authentication makes (session, user entry, per-user count: users.auth_state) goes out here, before the
    rest of the middleware chain runs, so Redis answers while this worker does that work instead of after.
    Nothing else changes: the view authenticates as before and reads these replies instead of sending its
    own (same keys, counted once). Whatever the view does, the replies are read before this returns, so the
    connection is clean for the next request. A request answered before its view runs (an HTTPS redirect, a
    refused Host) was still counted against its user's limit, as a request made with that user's token.
    """

    prefix = "/api/v1/users"

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        sent = None
        if request.method == "GET" and request.path_info.startswith(self.prefix):
            verified = verified_bearer(request)
            if verified is not None:
                sent = auth_prefetch(session_id=verified[0], user_id=verified[1])
        if sent is None:
            return self.get_response(request)
        setattr(request, PREFETCH_ATTR, sent)
        try:
            return self.get_response(request)
        finally:
            sent.settle()
