"""Delete expired sessions, and ended ones older than --keep-days (run daily, e.g. from cron)."""

from datetime import timedelta

from django.core.management.base import BaseCommand
from django.db.models import Q
from django.utils import timezone

from users.models import Session


class Command(BaseCommand):
    help = "Delete expired sessions and sessions ended more than --keep-days ago."

    def add_arguments(self, parser):
        parser.add_argument("--keep-days", type=int, default=7, help="Keep ended sessions this long (default 7).")

    def handle(self, *args, keep_days, **options):
        now = timezone.now()
        expired = Q(expires_at__lte=now) | Q(ended_at__lte=now - timedelta(days=keep_days))
        deleted, _ = Session.objects.filter(expired).delete()
        self.stdout.write(f"Purged {deleted} session(s).")
