"""Mail tasks (django-tasks): each builds its message when it runs, outside the request, and sends it.

Arguments are ids and addresses only; links and tokens are made by the task, so nothing secret sits in
the queue. In development and tests the immediate backend runs them as the request ends; in production
``manage.py mail_worker`` (the Procfile's ``worker``) runs them from the database queue.
"""

import uuid

from django_tasks import task

from users.mail import frontend_link, mail_build, mail_deliver
from users.models import User
from users.tokens import email_verification_token, password_reset_token


@task()
def verification_mail_send(*, user_id: str, attempt: int = 1) -> None:
    """Mail ``user_id`` a link that verifies their current address (nothing when it is verified or gone)."""
    user = User.objects.filter(pk=uuid.UUID(user_id), is_active=True, email_verified=False).first()
    if user is None:
        return
    link = frontend_link("verify-email", user, email_verification_token.make_token(user))
    message = mail_build("verify_email", to=user.email, context={"user": user, "link": link})
    mail_deliver(message, task=verification_mail_send, task_kwargs={"user_id": user_id}, attempt=attempt)


@task()
def password_reset_mail_send(*, email: str, attempt: int = 1) -> None:
    """Mail the active account of ``email`` a one-time reset link; an unknown address gets nothing."""
    user = User.objects.filter(email=email, is_active=True).first()
    if user is None:
        return
    link = frontend_link("reset-password", user, password_reset_token.make_token(user))
    message = mail_build("password_reset", to=user.email, context={"user": user, "link": link})
    mail_deliver(message, task=password_reset_mail_send, task_kwargs={"email": email}, attempt=attempt)


@task()
def lockout_mail_send(*, user_id: str, minutes: int, attempt: int = 1) -> None:
    """Tell the owner of ``user_id`` that repeated failed logins locked the account for ``minutes``."""
    user = User.objects.filter(pk=uuid.UUID(user_id)).first()
    if user is None:
        return
    message = mail_build("account_locked", to=user.email, context={"user": user, "minutes": minutes})
    mail_deliver(
        message, task=lockout_mail_send, task_kwargs={"user_id": user_id, "minutes": minutes}, attempt=attempt
    )


@task()
def registration_notice_mail_send(*, email: str, attempt: int = 1) -> None:
    """Tell the owner of an address that someone tried to register it again (enumeration protection)."""
    user = User.objects.filter(email=email).first()
    if user is None:
        return
    message = mail_build("registration_notice", to=user.email, context={"user": user})
    mail_deliver(message, task=registration_notice_mail_send, task_kwargs={"email": email}, attempt=attempt)
