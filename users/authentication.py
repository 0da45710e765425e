"""SessionJWTAuthentication: a SimpleJWT access token whose session and user are still valid."""

import time
import uuid

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import HTTP_HEADER_ENCODING
from rest_framework_simplejwt.authentication import AUTH_HEADER_TYPE_BYTES, JWTAuthentication
from rest_framework_simplejwt.exceptions import InvalidToken, TokenError
from rest_framework_simplejwt.settings import api_settings
from rest_framework_simplejwt.tokens import AccessToken

from users.auth_state import auth_user_get

# Per-process cache of tokens whose signature and claims were already verified, keyed by the exact bytes.
# It skips only the decode (PERF.md: ~30-100 us); expiry is re-checked on every hit and the session and
# user are still checked in the shared cache on every request, so revocation stays immediate. Entries are
# small (expiry and two UUIDs) and bounded, so a worker's memory stays flat however many users it serves.
VERIFIED_TOKENS_MAX = 2048
_verified: dict[bytes, tuple[int, uuid.UUID, uuid.UUID]] = {}


def _verify(raw: bytes) -> tuple[uuid.UUID, uuid.UUID]:
    """Return (session id, user id) of a valid access token; raise InvalidToken otherwise."""
    hit = _verified.get(raw)
    if hit is not None and hit[0] > time.time():
        return hit[1], hit[2]
    try:
        token = AccessToken(raw.decode("ascii"))
        session_id = uuid.UUID(str(token["sid"]))
        user_id = uuid.UUID(str(token[api_settings.USER_ID_CLAIM]))
        expires = int(token["exp"])
    except (TokenError, KeyError, ValueError, TypeError, UnicodeDecodeError):
        raise InvalidToken("Token is invalid or expired.") from None
    if len(_verified) >= VERIFIED_TOKENS_MAX:
        _verified.clear()
    _verified[raw] = (expires, session_id, user_id)
    return session_id, user_id


def _bearer(request) -> bytes | None:
    """Return the token of ``Authorization: Bearer <token>``, None without Bearer credentials.

    Raises InvalidToken when the header says Bearer but is not ``Bearer <token>``.
    """
    header = request.META.get(api_settings.AUTH_HEADER_NAME)
    if header is None:
        return None
    if isinstance(header, str):
        header = header.encode(HTTP_HEADER_ENCODING)
    parts = header.split()
    if not parts or parts[0] not in AUTH_HEADER_TYPE_BYTES:
        return None
    if len(parts) != 2:
        raise InvalidToken("Authorization header must be 'Bearer <token>'.")
    return parts[1]


def verified_bearer(request) -> tuple[uuid.UUID, uuid.UUID] | None:
    """Return (session id, user id) of the request's Bearer token when its signature and claims are valid.

    Says nothing of its session or user (``auth_user_get`` does); None for anything else, never raises.
    """
    try:
        raw = _bearer(request)
        return None if raw is None else _verify(raw)
    except InvalidToken:
        return None


# Where users.hot_path leaves the outcome it already got for a request it hands over to DRF.
OUTCOME_ATTR = "_session_jwt_outcome"
# Where users.hot_path.AuthStatePrefetchMiddleware leaves the auth-state round trip it sent for this request.
PREFETCH_ATTR = "_session_jwt_prefetch"


def remember_outcome(request, outcome) -> None:
    """Keep this request's authentication outcome ((user, token) or the exception) for DRF's own pass."""
    setattr(request, OUTCOME_ATTR, outcome)


class SessionJWTAuthentication(JWTAuthentication):
    """Accept ``Authorization: Bearer <access>`` when its session is open and its user active.

    No header, or another scheme: not authenticated (401 ``not_authenticated``). A Bearer header
    that is malformed, forged, expired, of the wrong type or of an ended session: 401
    ``token_not_valid``. The state check is one shared-cache round trip, the database on a miss.
    """

    www_authenticate_realm = "api"

    def authenticate(self, request):
        # DRF passes its Request; the outcome the hot path remembered sits on the Django request inside it.
        outcome = getattr(getattr(request, "_request", request), OUTCOME_ATTR, None)
        if outcome is not None:
            if isinstance(outcome, Exception):
                raise outcome
            return outcome
        raw = _bearer(request)
        if raw is None:
            return None
        session_id, user_id = _verify(raw)
        sent = getattr(getattr(request, "_request", request), PREFETCH_ATTR, None)
        user = auth_user_get(session_id=session_id, user_id=user_id, sent=sent)
        if user is None:
            raise InvalidToken("Token is invalid or expired.")
        return user, raw.decode("ascii")


class SessionJWTAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "users.authentication.SessionJWTAuthentication"
    name = "jwtAuth"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
