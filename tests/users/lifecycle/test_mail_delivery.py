"""Mail delivery: after commit, out of the request's transaction; a failed send is retried and logged."""

import logging

import pytest
from django.core import mail
from django.core.mail.backends.locmem import EmailBackend

from tests.factories import DEFAULT_PASSWORD
from tests.users.lifecycle.support import messages_to
from users import services

pytestmark = pytest.mark.django_db(transaction=True)


class FlakyBackend(EmailBackend):
    """The test outbox behind a mail server that refuses the first ``failures`` messages (a 4xx answer)."""

    failures = 0

    def send_messages(self, messages):
        if FlakyBackend.failures > 0:
            FlakyBackend.failures -= 1
            raise ConnectionRefusedError("mail server unavailable")
        return super().send_messages(messages)


@pytest.fixture
def flaky_mail(settings):
    settings.EMAIL_BACKEND = f"{__name__}.FlakyBackend"
    settings.MAIL_RETRY_DELAY = 0

    def fail_next(count):
        FlakyBackend.failures = count

    yield fail_next
    FlakyBackend.failures = 0


def register(api_client, email="new@example.com"):
    return api_client.post("/api/v1/users", {"email": email, "password": DEFAULT_PASSWORD}, format="json")


def test_failed_send_is_retried_and_logged(api_client, flaky_mail, caplog):
    flaky_mail(2)

    with caplog.at_level(logging.WARNING, logger="users.mail"):
        response = register(api_client)

    assert response.status_code == 201
    assert len(messages_to("new@example.com")) == 1
    retries = [r for r in caplog.records if r.name == "users.mail" and "retrying" in r.getMessage()]
    assert [r.levelname for r in retries] == ["WARNING", "WARNING"]
    assert "new@example.com" not in " ".join(r.getMessage() for r in caplog.records)  # the mailbox is masked


def test_send_gives_up_after_the_last_attempt_and_logs_an_error(api_client, flaky_mail, settings, caplog):
    settings.MAIL_MAX_ATTEMPTS = 3
    flaky_mail(10)

    with caplog.at_level(logging.WARNING, logger="users.mail"):
        response = register(api_client)

    assert response.status_code == 201  # the request does not fail with its mail
    assert messages_to("new@example.com") == []
    assert [r.levelname for r in caplog.records if r.name == "users.mail"] == ["WARNING", "WARNING", "ERROR"]


def test_mail_is_sent_only_after_the_transaction_commits(user, django_capture_on_commit_callbacks):
    from django.db import transaction

    with django_capture_on_commit_callbacks(execute=True):
        with transaction.atomic():
            services.email_verification_resend(user=user)
            assert mail.outbox == []
    assert len(messages_to(user.email)) == 1


def test_rolled_back_write_sends_no_mail(user):
    from django.db import transaction

    with pytest.raises(RuntimeError), transaction.atomic():
        services.email_verification_resend(user=user)
        raise RuntimeError("the write fails after asking for mail")

    assert mail.outbox == []


def test_links_use_the_configured_frontend_url(api_client, settings):
    settings.FRONTEND_URL = "https://app.example.org"

    register(api_client)

    [message] = messages_to("new@example.com")
    assert "https://app.example.org/verify-email?uid=" in message.body
    assert message.from_email == settings.DEFAULT_FROM_EMAIL


@pytest.fixture
def database_queue(settings):
    """The production queue (django-tasks-db) instead of the tests' immediate backend."""
    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}  # django-tasks reloads on change


def test_on_the_database_queue_the_mail_commits_with_the_change_that_asks_for_it(database_queue, monkeypatch):
    from django.db.backends.base.base import BaseDatabaseWrapper
    from django_tasks_db.models import DBTaskResult

    # A process that dies right after COMMIT runs none of its on-commit callbacks.
    monkeypatch.setattr(BaseDatabaseWrapper, "run_and_clear_commit_hooks", lambda self: self.run_on_commit.clear())
    user = services.user_create(email="outbox@example.com", password=DEFAULT_PASSWORD)

    queued = DBTaskResult.objects.filter(task_path="users.tasks.verification_mail_send")
    assert [row.args_kwargs["kwargs"] for row in queued] == [{"user_id": str(user.pk)}]


def test_on_the_database_queue_a_rolled_back_change_queues_no_mail(database_queue):
    from django.db import transaction
    from django_tasks_db.models import DBTaskResult

    with pytest.raises(RuntimeError), transaction.atomic():
        services.user_create(email="rolled-back@example.com", password=DEFAULT_PASSWORD)
        raise RuntimeError("the request failed after the registration")

    assert not DBTaskResult.objects.exists()
