"""Pick the settings module from DJANGO_ENV: ``production`` or ``development`` (the default)."""

from config.env import env

if env.str("DJANGO_ENV", default="development") == "production":
    from config.settings.production import *  # noqa: F403
else:
    from config.settings.base import *  # noqa: F403
