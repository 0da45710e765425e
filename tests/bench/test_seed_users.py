"""seed_users: valid, unique, varied rows on either back end (COPY on PostgreSQL), a loginable staff account."""

import pytest
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from users.models import User

pytestmark = pytest.mark.django_db

PASSWORD = "seeded-password-for-tests"


def seed(*args: str) -> None:
    call_command("seed_users", *args, "--batch", "128", verbosity=0)


def test_seeded_rows_are_valid_unique_and_varied():
    seed("300", "--seed", "7")

    users = list(User.objects.all())
    assert len(users) == 300
    emails = [user.email for user in users]
    assert all(email == email.lower() for email in emails)
    assert len({email.lower() for email in emails}) == 300
    for user in users[:50]:
        user.full_clean()  # field formats and lengths, and the model's constraints
    assert len({user.first_name for user in users}) > 20
    assert len({user.last_name for user in users}) > 20
    assert len({user.email.rsplit("@", 1)[1] for user in users}) > 3
    assert 0 < sum(user.last_login is None for user in users) < 300
    assert all(user.last_login is None or user.last_login >= user.date_joined for user in users)
    joined = sorted(user.date_joined for user in users)
    assert (joined[-1] - joined[0]).days > 365
    assert not any(user.has_usable_password() for user in users)  # no --password: nobody can log in


def test_second_run_adds_rows_without_colliding():
    seed("200")
    seed("200")

    assert User.objects.count() == 400


@pytest.mark.parametrize("second", ["20", "200"])  # 200: more new rows than old, so PostgreSQL rebuilds indexes
def test_reused_prefix_is_refused_with_a_clear_error(second):
    seed("20", "--prefix", "same", "--seed", "1")

    with pytest.raises(CommandError, match="prefix"):
        seed(second, "--prefix", "same", "--seed", "1")


def test_staff_email_can_log_in_and_rows_share_the_password():
    seed("100", "--staff-email", "Bench-Staff@Example.com", "--password", PASSWORD)

    staff = User.objects.get(email="bench-staff@example.com")
    assert staff.is_staff and staff.is_active
    assert User.objects.count() == 101
    assert len(set(User.objects.values_list("password", flat=True))) == 1  # one hash, computed once
    client = APIClient()
    for email in ("bench-staff@example.com", User.objects.filter(is_staff=False, is_active=True).first().email):
        response = client.post("/api/v1/auth/token", {"email": email, "password": PASSWORD}, format="json")
        assert response.status_code == 200, response.content


def test_staff_email_needs_a_password():
    with pytest.raises(CommandError, match="--password"):
        seed("1", "--staff-email", "staff@example.com")
