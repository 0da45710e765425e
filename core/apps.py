"""Cross-cutting pieces: the error envelope, middleware, health, pagination, logging."""

from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "core"

    def ready(self):
        # System checks, and the bounds on web processes' database sessions: imported for their registrations.
        from core import checks, db  # noqa: F401
