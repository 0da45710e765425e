"""Cross-cutting pieces: the error envelope, middleware, health, pagination, logging."""

from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "core"

    def ready(self):
        from core import checks  # noqa: F401  (system checks)
