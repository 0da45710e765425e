"""Admin forms for a user whose login is the email."""

from django.contrib.auth import forms as auth_forms

from users.managers import email_domain_is_canonical, normalize_email
from users.models import User


def clean_user_email(email: str, *, exclude_pk=None) -> str:
    """Return the stored form of an email typed in the admin; refuse a lookalike domain or a taken address."""
    email = normalize_email(email)
    if not email_domain_is_canonical(email):
        raise auth_forms.ValidationError("Enter a valid email address.")
    taken = User.objects.filter(email=email)
    if exclude_pk is not None:
        taken = taken.exclude(pk=exclude_pk)
    if taken.exists():
        raise auth_forms.ValidationError("A user with this email already exists.")
    return email


class UserAdminCreationForm(auth_forms.AdminUserCreationForm):
    class Meta:
        model = User
        fields = ("email", "first_name", "last_name")

    def clean_email(self):
        return clean_user_email(self.cleaned_data["email"])


class UserAdminChangeForm(auth_forms.UserChangeForm):
    class Meta:
        model = User
        fields = "__all__"

    def clean_email(self):
        return clean_user_email(self.cleaned_data["email"], exclude_pk=self.instance.pk)
