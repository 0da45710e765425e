"""Filters of the staff user list: flags and a search over email and names."""

import django_filters
from django.db.models import Q

from users.models import User


class UserFilter(django_filters.FilterSet):
    is_active = django_filters.BooleanFilter()
    is_staff = django_filters.BooleanFilter()
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
