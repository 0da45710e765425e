"""Production: base settings, hardened; refuse to start on a missing, default or short secret."""

from django.core.exceptions import ImproperlyConfigured

from config.env import env, refuse_to_start, require_secret
from config.settings.base import *  # noqa: F403
from config.settings.base import SIMPLE_JWT

try:
    SECRET_KEY = require_secret("DJANGO_SECRET_KEY", env.str("DJANGO_SECRET_KEY", default=""))
    SIMPLE_JWT["SIGNING_KEY"] = require_secret("JWT_SIGNING_KEY", env.str("JWT_SIGNING_KEY", default=""))
    if SIMPLE_JWT["SIGNING_KEY"] == SECRET_KEY:
        raise ImproperlyConfigured("JWT_SIGNING_KEY must differ from DJANGO_SECRET_KEY")
    ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=[])
    if not ALLOWED_HOSTS:
        raise ImproperlyConfigured("DJANGO_ALLOWED_HOSTS is not set: name the hosts this service answers for")
except ImproperlyConfigured as exc:
    refuse_to_start(exc)

# Never DEBUG in production, whatever DJANGO_DEBUG says: no stack traces, no exception text in responses.
DEBUG = False
SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=True)
SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", default=31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
SECURE_HSTS_PRELOAD = env.bool("DJANGO_SECURE_HSTS_PRELOAD", default=True)
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
CSRF_COOKIE_HTTPONLY = True
