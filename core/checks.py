"""System checks that ``manage.py check --deploy`` runs for this service."""

from django.conf import settings
from django.core.checks import Tags, Warning, register


@register(Tags.security, deploy=True)
def check_rate_limits_enabled(app_configs, **kwargs):
    """Warn when RATELIMIT_ENABLE=false is deployed: it is meant for local benchmarks only."""
    if not getattr(settings, "RATELIMIT_ENABLE", True):
        return [Warning("RATELIMIT_ENABLE is false: every rate limit is off.", id="core.W001")]
    return []
