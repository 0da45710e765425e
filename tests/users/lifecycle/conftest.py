"""Fixtures of the account lifecycle tests: a clean outbox and an admin client."""

import pytest
from django.core import mail
from django.test import Client


@pytest.fixture(autouse=True)
def _empty_outbox():
    mail.outbox = []
    yield


@pytest.fixture
def admin_client_for(db):
    """Return a function: admin_client_for(user) -> Django test client logged in to the admin as ``user``."""

    def make(user):
        client = Client()
        client.force_login(user)  # the admin's own login is not the subject here
        return client

    return make
