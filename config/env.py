"""The one place that reads the process environment (django-environ), and the secret checks."""

import environ
from django.core.exceptions import ImproperlyConfigured

env = environ.Env()

# Values that ship in examples and docs: never acceptable as a production secret.
KNOWN_WEAK_SECRETS = frozenset(
    {
        "",
        "changeme",
        "change-me",
        "secret",
        "django-insecure-development-only-secret-key-change-me",
        "development-only-jwt-signing-key-change-me-please",
    }
)
MIN_SECRET_LENGTH = 50


def require_secret(name: str, value: str | None) -> str:
    """Return ``value`` when it is a usable secret; raise ImproperlyConfigured naming ``name`` otherwise."""
    if not value:
        raise ImproperlyConfigured(
            f"{name} is not set: production needs a random secret of {MIN_SECRET_LENGTH}+ chars"
        )
    if value in KNOWN_WEAK_SECRETS or value.startswith("django-insecure"):
        raise ImproperlyConfigured(f"{name} is a known default: set a random secret of {MIN_SECRET_LENGTH}+ chars")
    if len(value) < MIN_SECRET_LENGTH or len(set(value)) < 5:
        raise ImproperlyConfigured(f"{name} is too short or too simple: use {MIN_SECRET_LENGTH}+ random chars")
    return value


def refuse_to_start(exc: Exception) -> None:
    """Stop the process with one line naming what is wrong (no traceback): the settings are unusable."""
    import sys

    sys.stderr.write(f"ImproperlyConfigured: {exc}\n")
    # 3 is gunicorn's worker boot-error status: its master stops instead of respawning the worker forever.
    raise SystemExit(3)


def email_settings(url: str) -> dict[str, object]:
    """Return Django's EMAIL_* settings for an ``EMAIL_URL`` (smtp://, smtp+tls://, console:, locmem:)."""
    if url.startswith("console:"):
        return {"EMAIL_BACKEND": "django.core.mail.backends.console.EmailBackend"}
    if url.startswith("locmem:"):
        return {"EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend"}
    if url.split("://", 1)[0] in {"smtp", "smtps", "smtp+tls", "smtp+ssl"}:
        return {**env.email_url_config(url), "EMAIL_TIMEOUT": 10}
    raise ImproperlyConfigured("EMAIL_URL must be smtp://, smtp+tls://, smtps://, console: or locmem:")
