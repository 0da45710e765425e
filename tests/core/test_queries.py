"""core.queries.only_row: the row of a lookup by a unique key, without first()'s ORDER BY and LIMIT."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from core.queries import only_row
from tests.factories import UserFactory
from users.models import User

pytestmark = pytest.mark.django_db


def test_the_row_found_is_returned_and_its_query_has_no_ordering_or_limit():
    user = UserFactory()
    with CaptureQueriesContext(connection) as queries:
        found = only_row(User.objects.filter(pk=user.pk))
    assert found == user
    [query] = queries.captured_queries
    assert "ORDER BY" not in query["sql"].upper()
    assert "LIMIT" not in query["sql"].upper()


def test_no_row_is_none():
    assert only_row(User.objects.filter(email="nobody@example.com")) is None
    assert only_row(User.objects.filter(email="nobody@example.com").values_list("pk", flat=True)) is None


def test_more_than_one_row_is_the_caller_s_bug_and_raises():
    UserFactory.create_batch(2, first_name="Same")
    with pytest.raises(User.MultipleObjectsReturned):
        only_row(User.objects.filter(first_name="Same"))
