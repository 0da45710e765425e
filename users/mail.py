"""Account mail: render the plain-text and HTML bodies from templates, send with retries, enqueue with the change."""

import logging
from datetime import timedelta

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode
from django_tasks_db import DatabaseBackend

logger = logging.getLogger("users.mail")

__all__ = ["frontend_link", "mail_build", "mail_deliver", "mail_enqueue"]


def frontend_link(path: str, user, token: str) -> str:
    """Return ``{FRONTEND_URL}/{path}?uid=…&token=…`` for ``user``: what the verify and confirm endpoints take."""
    uid = urlsafe_base64_encode(force_bytes(user.pk))
    return f"{settings.FRONTEND_URL}/{path}?uid={uid}&token={token}"


def mail_build(kind: str, *, to: str, context: dict) -> EmailMultiAlternatives:
    """Render ``users/email/<kind>`` (subject, plain text, HTML) into one message to ``to``."""
    context = {"frontend_url": settings.FRONTEND_URL, **context}
    subject = render_to_string(f"users/email/{kind}_subject.txt", context)
    message = EmailMultiAlternatives(
        subject=" ".join(subject.split()),  # one line: a newline in a subject is a header injection
        body=render_to_string(f"users/email/{kind}.txt", context),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[to],
    )
    message.attach_alternative(render_to_string(f"users/email/{kind}.html", context), "text/html")
    return message


def mail_deliver(message: EmailMultiAlternatives, *, task, task_kwargs: dict, attempt: int) -> None:
    """Send ``message``; on failure log it and enqueue ``task`` again with a doubling delay, up to MAIL_MAX_ATTEMPTS.

    Raises the send error after the last attempt, so the task is recorded as failed.
    """
    try:
        message.send(fail_silently=False)
    except Exception as exc:  # an SMTP or socket error; the task library records anything else
        if attempt >= settings.MAIL_MAX_ATTEMPTS:
            logger.error(
                "mail %s to %s failed on attempt %d; giving up: %r", task.name, _mask(message.to), attempt, exc
            )
            raise
        delay = settings.MAIL_RETRY_DELAY * 2 ** (attempt - 1)
        logger.warning(
            "mail %s to %s failed on attempt %d; retrying in %ds: %r",
            task.name,
            _mask(message.to),
            attempt,
            delay,
            exc,
        )
        if task.get_backend().supports_defer and delay > 0:
            task = task.using(run_after=timezone.now() + timedelta(seconds=delay))
        task.enqueue(**{**task_kwargs, "attempt": attempt + 1})
        return
    logger.info("mail %s sent to %s (attempt %d)", task.name, _mask(message.to), attempt)


def mail_enqueue(task, **kwargs) -> None:
    """Enqueue a mail task as part of the change that asks for it.

    On the database queue (production) the task's row is written in the current transaction: the change and
    its mail commit together or not at all, so a process dying between the two can no longer lose the mail
    (a transactional outbox; the worker cannot see the row before the commit). Any other backend (the
    immediate one of development sends at once) is called after the commit, so a rolled-back change sends
    nothing.
    """
    if isinstance(task.get_backend(), DatabaseBackend):
        task.enqueue(**kwargs)
    else:
        transaction.on_commit(lambda: task.enqueue(**kwargs))


def _mask(addresses: list[str]) -> str:
    # Logs name the domain, not the mailbox.
    return ", ".join("***@" + address.rpartition("@")[2] for address in addresses)
