"""SessionJWTAuthentication: a SimpleJWT access token whose session and user are still valid."""

import uuid

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework_simplejwt.authentication import AUTH_HEADER_TYPE_BYTES, JWTAuthentication
from rest_framework_simplejwt.exceptions import InvalidToken, TokenError
from rest_framework_simplejwt.settings import api_settings
from rest_framework_simplejwt.tokens import AccessToken

from users.auth_state import auth_user_get


class SessionJWTAuthentication(JWTAuthentication):
    """Accept ``Authorization: Bearer <access>`` when its session is open and its user active.

    No header, or another scheme: not authenticated (401 ``not_authenticated``). A Bearer header
    that is malformed, forged, expired, of the wrong type or of an ended session: 401
    ``token_not_valid``. The state check is one shared-cache round trip, the database on a miss.
    """

    www_authenticate_realm = "api"

    def authenticate(self, request):
        header = self.get_header(request)
        if header is None:
            return None
        parts = header.split()
        if not parts or parts[0] not in AUTH_HEADER_TYPE_BYTES:
            return None
        if len(parts) != 2:
            raise InvalidToken("Authorization header must be 'Bearer <token>'.")
        try:
            token = AccessToken(parts[1].decode("ascii"))
            session_id = uuid.UUID(str(token["sid"]))
            user_id = uuid.UUID(str(token[api_settings.USER_ID_CLAIM]))
        except (TokenError, KeyError, ValueError, UnicodeDecodeError):
            raise InvalidToken("Token is invalid or expired.") from None
        user = auth_user_get(session_id=session_id, user_id=user_id)
        if user is None:
            raise InvalidToken("Token is invalid or expired.")
        return user, token


class SessionJWTAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "users.authentication.SessionJWTAuthentication"
    name = "jwtAuth"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
