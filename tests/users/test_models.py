"""The User model: string form, names, email normalisation and the case-insensitive unique constraint."""

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction

from tests.factories import UserFactory
from users.models import User

pytestmark = pytest.mark.django_db


def test_str_is_the_email():
    assert str(UserFactory.build(email="ann@example.com")) == "ann@example.com"


def test_full_name_joins_first_and_last_name():
    assert UserFactory.build(first_name="Ann", last_name="Lee").get_full_name() == "Ann Lee"


def test_full_name_without_last_name_has_no_trailing_space():
    assert UserFactory.build(first_name="Ann", last_name="").get_full_name() == "Ann"


def test_short_name_is_the_first_name():
    assert UserFactory.build(first_name="Ann").get_short_name() == "Ann"


def test_primary_key_is_a_uuid_set_before_saving():
    first, second = UserFactory.build(), UserFactory.build()

    assert first.pk is not None and first.pk.version == 4
    assert first.pk != second.pk


def test_new_user_defaults():
    user = User(email="ann@example.com")

    assert user.is_active is True
    assert user.is_staff is False
    assert user.is_superuser is False
    assert user.email_verified is False
    assert user.last_login is None
    assert user.date_joined is not None


def test_email_is_the_login_field():
    assert User.USERNAME_FIELD == "email"
    assert User.EMAIL_FIELD == "email"
    assert User.REQUIRED_FIELDS == []


def test_clean_lower_cases_and_strips_the_email():
    user = User(email="  Ann.Lee@Example.COM ")

    user.clean()

    assert user.email == "ann.lee@example.com"


def test_full_clean_refuses_a_taken_email_in_another_case():
    UserFactory(email="ann@example.com")
    user = User(email="ANN@Example.com")
    user.set_unusable_password()

    with pytest.raises(ValidationError) as excinfo:
        user.full_clean()

    assert "email" in excinfo.value.message_dict


def test_validate_constraints_names_the_case_insensitive_unique_constraint():
    UserFactory(email="ann@example.com")

    with pytest.raises(ValidationError) as excinfo:
        User(email="ANN@EXAMPLE.COM").validate_constraints()

    assert any("users_user_email_ci_unique" in m for m in excinfo.value.messages)


def test_validate_constraints_accepts_a_free_lower_cased_email():
    UserFactory(email="ann@example.com")

    User(email="bob@example.com").validate_constraints()


def test_validate_constraints_refuses_an_upper_case_email():
    with pytest.raises(ValidationError) as excinfo:
        User(email="Bob@example.com").validate_constraints()

    assert any("users_user_email_lowercase" in m for m in excinfo.value.messages)
    assert not any("users_user_email_ci_unique" in m for m in excinfo.value.messages)


def test_database_refuses_a_second_email_differing_only_in_case():
    UserFactory(email="ann@example.com")

    with pytest.raises(IntegrityError), transaction.atomic():
        # objects.create skips the manager's normalisation: this is the raw insert the constraint must stop.
        User.objects.create(email="Ann@Example.com", password="!")

    assert User.objects.count() == 1


def test_database_refuses_a_second_identical_email():
    UserFactory(email="ann@example.com")

    with pytest.raises(IntegrityError), transaction.atomic():
        User.objects.bulk_create([User(email="ann@example.com", password="!")])


def test_database_refuses_an_email_stored_in_upper_case():
    with pytest.raises(IntegrityError), transaction.atomic():
        User.objects.create(email="Bob@Example.com", password="!")

    assert not User.objects.exists()


def test_case_insensitive_unique_constraint_exists_in_the_database():
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, User._meta.db_table)

    assert constraints["users_user_email_ci_unique"]["unique"] is True


def test_lookup_by_lower_cased_email_finds_the_user():
    user = UserFactory(email="ann@example.com")

    assert User.objects.get_by_natural_key("ANN@example.COM") == user
