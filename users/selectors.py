"""Reads with rules: which users a caller may see."""

import uuid

from django.db.models import QuerySet

from users.models import User


def user_list(*, requested_by) -> QuerySet[User]:
    """Return the users ``requested_by`` may list: everyone for staff, nobody otherwise."""
    if requested_by.is_staff:
        return User.objects.all()
    return User.objects.none()


def user_visible_to(*, requested_by) -> QuerySet[User]:
    """Return the users ``requested_by`` may read or change: everyone for staff, themselves otherwise."""
    if requested_by.is_staff:
        return User.objects.all()
    return User.objects.filter(pk=requested_by.pk)


def user_get_for(*, requested_by, user_id: uuid.UUID) -> User:
    """Return one user ``requested_by`` may see; raise User.DoesNotExist (a 404) for any other id."""
    return user_visible_to(requested_by=requested_by).get(pk=user_id)
