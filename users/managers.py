"""UserManager: create users with a normalised email and a hashed password."""

from django.contrib.auth.base_user import BaseUserManager
from django.core.exceptions import ValidationError


def normalize_email(email: str) -> str:
    """Return the stored form of an email: stripped and lower-cased (unique ignoring case)."""
    return (email or "").strip().lower()


def email_domain_is_canonical(email: str) -> bool:
    """Return True when the email's domain is in its canonical IDNA form.

    Django's validator checks the domain after IDNA mapping, which drops invisible characters: without this,
    ``other@example.com`` followed by a zero-width space registers as a second, identical-looking account.
    """
    domain = email.rpartition("@")[2]
    try:
        return domain.encode("idna").decode("idna") == domain
    except UnicodeError:
        return False


def validate_email_domain_canonical(value: str) -> None:
    """Field validator of User.email: refuse a lookalike domain wherever a user is validated.

    The API and the admin forms check it already; on the field it also covers ``createsuperuser`` and
    ``full_clean()`` anywhere (the shell, management commands).
    """
    if not email_domain_is_canonical(normalize_email(value)):
        raise ValidationError("Enter a valid email address.", code="invalid")


class UserManager(BaseUserManager):
    use_in_migrations = True

    def get_by_natural_key(self, username):
        return self.get(email=normalize_email(username))

    def _create_user(self, email, password, **extra_fields):
        email = normalize_email(email)
        if not email:
            raise ValueError("The email must be set")
        user = self.model(email=email, **extra_fields)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_user(self, email, password=None, **extra_fields):
        extra_fields.setdefault("is_staff", False)
        extra_fields.setdefault("is_superuser", False)
        return self._create_user(email, password, **extra_fields)

    def create_superuser(self, email, password=None, **extra_fields):
        extra_fields.setdefault("is_staff", True)
        extra_fields.setdefault("is_superuser", True)
        if extra_fields.get("is_staff") is not True:
            raise ValueError("Superuser must have is_staff=True.")
        if extra_fields.get("is_superuser") is not True:
            raise ValueError("Superuser must have is_superuser=True.")
        return self._create_user(email, password, **extra_fields)
