"""Delete expired sessions, ended ones older than --keep-days, and stale login-failure counters (run daily)."""

from datetime import timedelta

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db.models import Q
from django.utils import timezone

from users.models import LoginLockout, Session


class Command(BaseCommand):
    help = (
        "Delete expired sessions and sessions ended more than --keep-days ago, and login-failure counters "
        "that no longer count (window over, no lock within LOCKOUT_MAX_DURATION)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--keep-days", type=int, default=7, help="Keep ended sessions this long (default 7).")

    def handle(self, *args, keep_days, **options):
        now = timezone.now()
        expired = Q(expires_at__lte=now) | Q(ended_at__lte=now - timedelta(days=keep_days))
        deleted, _ = Session.objects.filter(expired).delete()
        self.stdout.write(f"Purged {deleted} session(s).")
        # Failed logins for any submitted email, known or not, leave a row: without this, guessing random
        # addresses grows the table for ever. A row whose lock ended less than LOCKOUT_MAX_DURATION ago stays,
        # so the next lock of a repeat offender still doubles.
        stale = LoginLockout.objects.filter(
            Q(window_started_at__isnull=True)
            | Q(window_started_at__lte=now - timedelta(seconds=settings.LOCKOUT_WINDOW)),
            Q(locked_until__isnull=True) | Q(locked_until__lte=now - timedelta(seconds=settings.LOCKOUT_MAX_DURATION)),
        )
        deleted, _ = stale.delete()
        self.stdout.write(f"Purged {deleted} stale login-failure counter(s).")
