"""The users app: accounts, JWT sessions, their API and admin."""

from django.apps import AppConfig


class UsersConfig(AppConfig):
    name = "users"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from users import signals  # noqa: F401  (cache invalidation receivers)
