"""Run the mail worker: put back tasks orphaned by a killed worker, then run django-tasks-db's db_worker.

A worker that stops gracefully (SIGTERM, SIGINT) finishes the task it is running and leaves the rest queued.
One that is killed mid-task leaves that task "running" for ever; a task running for longer than
MAIL_TASK_STALE_AFTER seconds (well past the SMTP timeout) is put back in the queue, so it is sent.
"""

from datetime import timedelta

from django.conf import settings
from django.utils import timezone
from django_tasks import TaskResultStatus
from django_tasks_db.management.commands.db_worker import Command as DbWorkerCommand
from django_tasks_db.models import DBTaskResult


class Command(DbWorkerCommand):
    help = "Send queued mail (django-tasks database backend), first re-queuing tasks of a killed worker."

    def handle(self, *args, **options):
        cutoff = timezone.now() - timedelta(seconds=settings.MAIL_TASK_STALE_AFTER)
        requeued = DBTaskResult.objects.filter(status=TaskResultStatus.RUNNING, started_at__lt=cutoff).update(
            status=TaskResultStatus.READY, started_at=None
        )
        if requeued:
            self.stderr.write(f"Re-queued {requeued} task(s) left running by a stopped worker.")
        return super().handle(*args, **options)
