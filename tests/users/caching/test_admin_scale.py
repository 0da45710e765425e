"""The admin's user list never counts the whole table (usable at a million users)."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from core.pagination import EstimatedCountPaginator
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client):
    client.force_login(UserFactory(superuser=True))
    return client


def _counts(queries) -> list[str]:
    return [q["sql"] for q in queries if "COUNT(" in q["sql"].upper()]


def test_admin_user_list_counts_at_most_a_bounded_subquery(admin_client, monkeypatch):
    monkeypatch.setattr(EstimatedCountPaginator, "max_count", 5)
    UserFactory.create_batch(12)
    with CaptureQueriesContext(connection) as ctx:
        response = admin_client.get("/admin/users/user/?q=example.com")
    assert response.status_code == 200
    counts = _counts(ctx.captured_queries)
    assert counts and all("LIMIT" in sql.upper() for sql in counts), counts


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the planner estimate exists on PostgreSQL only")
def test_admin_unfiltered_list_uses_the_planner_estimate_on_postgresql(admin_client, monkeypatch):
    monkeypatch.setattr(EstimatedCountPaginator, "max_count", 5)
    UserFactory.create_batch(12)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE users_user")
    with CaptureQueriesContext(connection) as ctx:
        response = admin_client.get("/admin/users/user/")
    assert response.status_code == 200
    assert any("reltuples" in q["sql"] for q in ctx.captured_queries)
    assert not [sql for sql in _counts(ctx.captured_queries) if "users_user" in sql and "LIMIT" not in sql.upper()]
