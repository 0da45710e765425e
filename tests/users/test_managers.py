"""UserManager.create_user / create_superuser, the createsuperuser command and the password hasher."""

import pytest
from django.conf import settings as django_settings
from django.contrib.auth import authenticate
from django.contrib.auth.hashers import make_password
from django.core.management import CommandError, call_command

from config.settings import base
from tests.conftest import login
from tests.factories import UserFactory
from users.models import User

pytestmark = pytest.mark.django_db

PASSWORD = "a-long-enough-pass"


def test_create_user_saves_a_plain_active_user():
    user = User.objects.create_user("ann@example.com", PASSWORD)

    user.refresh_from_db()
    assert user.email == "ann@example.com"
    assert user.is_active is True
    assert user.is_staff is False
    assert user.is_superuser is False
    assert user.email_verified is False


def test_create_user_normalises_the_email():
    user = User.objects.create_user("  Ann.Lee@EXAMPLE.com ", PASSWORD)

    assert User.objects.get(pk=user.pk).email == "ann.lee@example.com"


def test_create_user_hashes_the_password():
    user = User.objects.create_user("ann@example.com", PASSWORD)

    user.refresh_from_db()
    assert user.password != PASSWORD
    assert user.check_password(PASSWORD)
    assert not user.check_password(PASSWORD + "x")


def test_create_user_without_password_sets_an_unusable_one():
    user = User.objects.create_user("ann@example.com")

    user.refresh_from_db()
    assert user.has_usable_password() is False


def test_create_user_passes_extra_fields():
    user = User.objects.create_user("ann@example.com", PASSWORD, first_name="Ann", is_active=False)

    user.refresh_from_db()
    assert user.first_name == "Ann"
    assert user.is_active is False


@pytest.mark.parametrize("email", ["", None, "   "])
def test_create_user_without_email_raises_value_error(email):
    with pytest.raises(ValueError, match="email"):
        User.objects.create_user(email, PASSWORD)

    assert not User.objects.exists()


def test_create_superuser_sets_staff_and_superuser():
    user = User.objects.create_superuser("Root@Example.com", PASSWORD)

    user.refresh_from_db()
    assert user.email == "root@example.com"
    assert user.is_staff is True
    assert user.is_superuser is True
    assert user.is_active is True
    assert user.check_password(PASSWORD)


@pytest.mark.parametrize("flag", ["is_staff", "is_superuser"])
def test_create_superuser_refuses_a_false_flag(flag):
    with pytest.raises(ValueError, match=flag):
        User.objects.create_superuser("root@example.com", PASSWORD, **{flag: False})

    assert not User.objects.exists()


def test_authenticate_finds_the_user_whatever_the_case_of_the_email():
    user = User.objects.create_user("ann@example.com", PASSWORD)

    assert authenticate(email="ANN@Example.com", password=PASSWORD) == user


def test_createsuperuser_noinput_reads_email_and_password_from_the_environment(monkeypatch):
    monkeypatch.setenv("DJANGO_SUPERUSER_EMAIL", "Admin@Example.com")
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", PASSWORD)

    call_command("createsuperuser", interactive=False, verbosity=0)

    admin = User.objects.get()
    assert admin.email == "admin@example.com"
    assert admin.is_staff is True and admin.is_superuser is True
    assert admin.check_password(PASSWORD)
    assert set(login("admin@example.com", PASSWORD)) == {"access", "refresh"}


def test_createsuperuser_refuses_an_email_taken_in_another_case(monkeypatch):
    UserFactory(email="admin@example.com")
    monkeypatch.setenv("DJANGO_SUPERUSER_EMAIL", "ADMIN@example.com")
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", PASSWORD)

    with pytest.raises(CommandError):
        call_command("createsuperuser", interactive=False, verbosity=0)

    assert User.objects.count() == 1


def test_createsuperuser_refuses_a_lookalike_email_domain(monkeypatch):
    # A zero-width space in the domain: Django's email validator maps it away, the stored value would keep it.
    monkeypatch.setenv("DJANGO_SUPERUSER_EMAIL", "admin@exam\u200bple.com")
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", PASSWORD)

    with pytest.raises(CommandError, match="valid email"):
        call_command("createsuperuser", interactive=False, verbosity=0)

    assert not User.objects.exists()


def test_full_clean_refuses_a_lookalike_email_domain():
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError) as refused:
        User(email="ann@exam\u200bple.com").full_clean(exclude=["password"])
    assert "email" in refused.value.message_dict


def test_createsuperuser_noinput_without_email_fails(monkeypatch):
    monkeypatch.delenv("DJANGO_SUPERUSER_EMAIL", raising=False)
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", PASSWORD)

    with pytest.raises(CommandError):
        call_command("createsuperuser", interactive=False, verbosity=0)

    assert not User.objects.exists()


def test_argon2_is_the_first_password_hasher(settings):
    # The test settings swap in MD5 for speed; put back the real list for this one test.
    settings.PASSWORD_HASHERS = base.PASSWORD_HASHERS
    assert django_settings.PASSWORD_HASHERS[0] == "users.hashers.Argon2PasswordHasher"  # Django's, in kept memory

    user = User.objects.create_user("ann@example.com", PASSWORD)

    user.refresh_from_db()
    assert user.password.startswith("argon2$")
    assert user.check_password(PASSWORD)


def test_login_upgrades_an_older_hash_to_argon2(settings):
    settings.PASSWORD_HASHERS = base.PASSWORD_HASHERS
    user = UserFactory(email="old@example.com")
    User.objects.filter(pk=user.pk).update(password=make_password(PASSWORD, hasher="pbkdf2_sha256"))

    login("old@example.com", PASSWORD)

    user.refresh_from_db()
    assert user.password.startswith("argon2$")
