"""Admin forms for a user whose login is the email."""

from django.contrib.auth import forms as auth_forms

from users.managers import normalize_email
from users.models import User


class UserAdminCreationForm(auth_forms.AdminUserCreationForm):
    class Meta:
        model = User
        fields = ("email", "first_name", "last_name")

    def clean_email(self):
        email = normalize_email(self.cleaned_data["email"])
        if User.objects.filter(email=email).exists():
            raise auth_forms.ValidationError("A user with this email already exists.")
        return email


class UserAdminChangeForm(auth_forms.UserChangeForm):
    class Meta:
        model = User
        fields = "__all__"

    def clean_email(self):
        email = normalize_email(self.cleaned_data["email"])
        if User.objects.filter(email=email).exclude(pk=self.instance.pk).exists():
            raise auth_forms.ValidationError("A user with this email already exists.")
        return email
