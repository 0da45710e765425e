"""Filters of the staff user list: flags and a search over email and names."""

import django_filters
from django import forms
from django.db.models import Q

from users.models import User


class StrictNullBooleanField(forms.NullBooleanField):
    """Take true/false (or True/False, 1/0); refuse anything else instead of reading it as "no filter"."""

    # NullBooleanSelect (the default widget) maps every unknown value to None before to_python sees it.
    widget = forms.TextInput

    def to_python(self, value):
        if value in (None, ""):
            return None
        result = super().to_python(value)
        if result is None:
            raise forms.ValidationError("Must be true or false.", code="invalid")
        return result


class StrictBooleanFilter(django_filters.BooleanFilter):
    field_class = StrictNullBooleanField


class UserFilter(django_filters.FilterSet):
    is_active = StrictBooleanFilter()
    is_staff = StrictBooleanFilter()
    search = django_filters.CharFilter(
        method="filter_search", max_length=254, help_text="Case-insensitive match in email, first or last name."
    )

    class Meta:
        model = User
        fields = ["is_active", "is_staff"]

    def filter_search(self, queryset, name, value):
        value = value.strip()
        if not value:
            return queryset
        return queryset.filter(
            Q(email__icontains=value) | Q(first_name__icontains=value) | Q(last_name__icontains=value)
        )
