"""Reads with rules: which users a caller may see."""

import uuid

from django.db.models import QuerySet

from users.auth_state import user_body_get
from users.models import SecurityEvent, User


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


def user_body_for(*, requested_by, user_id) -> bytes:
    """Return the JSON body of a user ``requested_by`` may see, from the shared cache when warm.

    Raise User.DoesNotExist (a 404) for an id the caller may not see or that does not exist.
    """
    try:
        user_id = uuid.UUID(str(user_id))
    except ValueError:
        raise User.DoesNotExist() from None
    if user_id == requested_by.pk and getattr(requested_by, "body", None):
        return requested_by.body
    if not requested_by.is_staff:
        raise User.DoesNotExist()
    body = user_body_get(user_id)
    if body is None:
        raise User.DoesNotExist()
    return body


def security_event_list(*, requested_by, user_id: uuid.UUID) -> QuerySet[SecurityEvent]:
    """Return the security events of ``user_id``: staff see anyone's (deleted users' too), others their own.

    Raise User.DoesNotExist (a 404) for another user's id when ``requested_by`` is not staff.
    """
    if not requested_by.is_staff and user_id != requested_by.pk:
        raise User.DoesNotExist()
    return SecurityEvent.objects.filter(user_id=user_id)
