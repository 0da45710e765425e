"""Fixtures for fault tests: the database or the shared cache down, simulated without stopping either."""

import contextlib
from unittest import mock

import pytest
from django.db import OperationalError
from django.db.backends.utils import CursorWrapper
from django.test import Client

from tests.conftest import dead_cache

# What a driver error may carry and a response must never show.
DRIVER_ERROR_TEXT = "connection to server at db-internal-7 failed: password authentication failed for dbuser"


@pytest.fixture
def plain_client():
    """Django's test client that returns the 500 response instead of raising the view's exception."""
    return Client(raise_request_exception=False)


@contextlib.contextmanager
def database_outage():
    """Make every SQL statement fail as it does when PostgreSQL is unreachable."""
    error = OperationalError(DRIVER_ERROR_TEXT)
    with (
        mock.patch.object(CursorWrapper, "execute", side_effect=error),
        mock.patch.object(CursorWrapper, "executemany", side_effect=error),
    ):
        yield


@pytest.fixture
def database_down(db):
    with database_outage():
        yield


@pytest.fixture
def cache_down(settings):
    settings.CACHES = dead_cache()
    return settings
