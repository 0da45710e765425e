"""Every write to users: create, update, activate/deactivate, delete, log in, change password."""

import uuid

from django.contrib.auth import authenticate
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from core.exceptions import AuthenticationFailedError
from users.managers import normalize_email
from users.models import Session, User
from users.tokens import TokenPair, session_issue, session_revoke_all

EMAIL_TAKEN = "A user with this email already exists."
UPDATABLE_FIELDS = ("email", "first_name", "last_name", "is_active", "is_staff")


def _check_password(password: str, user: User) -> None:
    try:
        validate_password(password, user=user)
    except ValidationError as exc:
        raise ValidationError({"password": exc.messages}) from None


def _check_email_free(email: str, *, exclude_pk: uuid.UUID | None = None) -> None:
    taken = User.objects.filter(email=email)
    if exclude_pk is not None:
        taken = taken.exclude(pk=exclude_pk)
    if taken.exists():
        raise ValidationError({"email": [EMAIL_TAKEN]})


def _save(user: User, **kwargs) -> None:
    """Save, turning a lost race on the unique email into the same 400 as the pre-check."""
    try:
        with transaction.atomic():
            user.save(**kwargs)
    except IntegrityError:
        if User.objects.filter(email=user.email).exclude(pk=user.pk).exists():
            raise ValidationError({"email": [EMAIL_TAKEN]}) from None
        raise


@transaction.atomic
def user_create(
    *,
    email: str,
    password: str,
    first_name: str = "",
    last_name: str = "",
    is_active: bool = True,
    is_staff: bool = False,
    created_by=None,
) -> User:
    """Create a user with a validated password; raise ValidationError for a taken email or weak password."""
    user = User(
        email=normalize_email(email),
        first_name=first_name,
        last_name=last_name,
        is_active=is_active,
        is_staff=is_staff,
    )
    _check_email_free(user.email)
    _check_password(password, user)
    user.set_password(password)
    user.full_clean(exclude=["password"], validate_constraints=False)
    _save(user, force_insert=True)
    return user


@transaction.atomic
def user_update(*, user: User, data: dict, updated_by=None) -> User:
    """Apply ``data`` (writable fields only) to ``user``; a new email clears ``email_verified``.

    Deactivation ends every session of the user. Raises ValidationError for a taken email.
    """
    changed = []
    for field in UPDATABLE_FIELDS:
        if field not in data:
            continue
        value = normalize_email(data[field]) if field == "email" else data[field]
        if getattr(user, field) != value:
            setattr(user, field, value)
            changed.append(field)
    if not changed:
        return user
    if "email" in changed:
        _check_email_free(user.email, exclude_pk=user.pk)
        user.email_verified = False
        changed.append("email_verified")
    user.full_clean(exclude=["password"], validate_constraints=False)
    _save(user, update_fields=changed)
    if "is_active" in changed and not user.is_active:
        session_revoke_all(user_id=user.pk, reason=Session.EndReason.DEACTIVATED)
    return user


def user_set_active(*, user: User, is_active: bool, changed_by=None) -> User:
    """Activate or deactivate ``user`` (deactivation ends every session)."""
    return user_update(user=user, data={"is_active": is_active}, updated_by=changed_by)


@transaction.atomic
def user_delete(*, user: User, deleted_by=None) -> None:
    """Delete ``user`` and, with it, every session (their tokens stop working at once)."""
    user.delete()


def user_login(*, request, email: str, password: str, ip: str | None, user_agent: str) -> TokenPair:
    """Authenticate through Django's backends and open a session; raise AuthenticationFailedError.

    Unknown email, wrong password and inactive account give the same error, and Django's
    ModelBackend runs the hasher for an unknown email too, so neither answer nor time tells them apart.
    """
    user = authenticate(request, email=normalize_email(email), password=password)
    if user is None:
        raise AuthenticationFailedError()
    return session_issue(user=user, ip=ip, user_agent=user_agent)


@transaction.atomic
def password_change(
    *, user: User, current_password: str, new_password: str, keep_session_id: uuid.UUID | None
) -> None:
    """Set a new password after checking the current one; end every other session of the user.

    Raises ValidationError on ``current_password`` (wrong) or ``new_password`` (too weak).
    """
    if not user.check_password(current_password):
        raise ValidationError({"current_password": ["The current password is not correct."]})
    try:
        validate_password(new_password, user=user)
    except ValidationError as exc:
        raise ValidationError({"new_password": exc.messages}) from None
    user.set_password(new_password)
    user.save(update_fields=["password"])
    session_revoke_all(user_id=user.pk, reason=Session.EndReason.PASSWORD_CHANGED, keep_session_id=keep_session_id)
