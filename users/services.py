"""Every write to users: create, update, activate/deactivate, delete, log in, passwords, verification, lockout.

Each write that changes an account records its SecurityEvent in the same transaction, so an event exists
exactly when the change does.
"""

import ipaddress
import uuid
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import authenticate
from django.contrib.auth.hashers import make_password
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.encoding import force_str
from django.utils.http import urlsafe_base64_decode

from core.exceptions import AuthenticationFailedError, EmailNotVerifiedError
from core.logging import get_request_id
from core.queries import only_row
from users import tasks
from users.mail import mail_enqueue
from users.managers import normalize_email
from users.models import LoginLockout, SecurityEvent, Session, User
from users.tokens import (
    TokenPair,
    email_verification_token,
    password_reset_token,
    session_issue,
    session_revoke,
    session_revoke_all,
)

EMAIL_TAKEN = "A user with this email already exists."
UPDATABLE_FIELDS = ("email", "first_name", "last_name", "is_active", "is_staff")
PROFILE_FIELDS = ("email", "first_name", "last_name")
INVALID_LINK = "This link is invalid or has expired."
Event = SecurityEvent.Type


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


def _actor_id(actor) -> uuid.UUID | None:
    return getattr(actor, "pk", None) if getattr(actor, "is_authenticated", False) else None


def _request_ip(request) -> str | None:
    from core.ratelimit import client_ip  # imports DRF, which the admin's autodiscovery must not load first

    ip = client_ip(request)
    try:
        return str(ipaddress.ip_address(ip)) if ip else None
    except ValueError:
        return None


def security_event_record(
    *, type: str, user_id: uuid.UUID | None, actor=None, request=None, details: dict | None = None
) -> SecurityEvent:
    """Record one security event with the actor, the client IP, user agent and the request id."""
    return SecurityEvent.objects.create(
        type=type,
        user_id=user_id,
        actor_id=_actor_id(actor),
        ip=_request_ip(request) if request is not None else None,
        user_agent=request.META.get("HTTP_USER_AGENT", "")[:512] if request is not None else "",
        request_id=getattr(request, "request_id", None) or get_request_id() or "",
        details=details or {},
    )


def _verification_send(user: User, *, actor, request) -> None:
    security_event_record(type=Event.EMAIL_VERIFICATION_SENT, user_id=user.pk, actor=actor, request=request)
    mail_enqueue(tasks.verification_mail_send, user_id=str(user.pk))


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
    request=None,
) -> User:
    """Create a user with a validated password and mail a verification link after commit.

    Raises ValidationError for a taken email or a weak password.
    """
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
    user_created_record(user=user, created_by=created_by, request=request)
    return user


def user_created_record(*, user: User, created_by=None, request=None) -> None:
    """Record the registration of a user just saved (by the API or the admin) and mail its verification link."""
    actor = created_by if _actor_id(created_by) else user
    security_event_record(type=Event.REGISTERED, user_id=user.pk, actor=actor, request=request)
    _verification_send(user, actor=actor, request=request)


def user_register(
    *, email: str, password: str, first_name: str = "", last_name: str = "", request=None
) -> User | None:
    """Register anonymously without telling whether the email is taken (REGISTRATION_ENUMERATION_PROTECTION).

    A new email gets an account (returned); a taken one gets None, and its owner a notice by mail. Both run
    the password validators and the hasher once. Raises ValidationError for a weak password only.
    """
    email = normalize_email(email)
    _check_password(password, User(email=email, first_name=first_name, last_name=last_name))
    if not User.objects.filter(email=email).exists():
        try:
            return user_create(
                email=email, password=password, first_name=first_name, last_name=last_name, request=request
            )
        except ValidationError as exc:
            if "email" not in getattr(exc, "error_dict", {}):
                raise  # not the race this handles
    make_password(password)  # the hashing work a new account costs
    mail_enqueue(tasks.registration_notice_mail_send, email=email)
    return None


@transaction.atomic
def user_update(*, user: User, data: dict, updated_by=None, request=None) -> User:
    """Apply ``data`` (writable fields only) to ``user``; a new email clears ``email_verified`` and is mailed a link.

    Deactivation ends every session of the user. Records profile, activation and staff events.
    Raises ValidationError for a taken email.
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
    _changes_record(user, changed, actor=updated_by, request=request)
    return user


def _changes_record(user: User, changed: list[str], *, actor, request) -> None:
    profile = [field for field in PROFILE_FIELDS if field in changed]
    if profile:
        security_event_record(
            type=Event.PROFILE_CHANGED, user_id=user.pk, actor=actor, request=request, details={"fields": profile}
        )
    if "is_active" in changed:
        kind = Event.ACTIVATED if user.is_active else Event.DEACTIVATED
        security_event_record(type=kind, user_id=user.pk, actor=actor, request=request)
    if "is_staff" in changed:
        kind = Event.STAFF_GRANTED if user.is_staff else Event.STAFF_REMOVED
        security_event_record(type=kind, user_id=user.pk, actor=actor, request=request)
    if "email" in changed:
        _verification_send(user, actor=actor, request=request)


def user_set_active(*, user: User, is_active: bool, changed_by=None, request=None) -> User:
    """Activate or deactivate ``user`` (deactivation ends every session)."""
    return user_update(user=user, data={"is_active": is_active}, updated_by=changed_by, request=request)


@transaction.atomic
def user_delete(*, user: User, deleted_by=None, request=None) -> None:
    """Delete ``user`` and, with it, every session (their tokens stop working at once); its events stay."""
    security_event_record(
        type=Event.DELETED, user_id=user.pk, actor=deleted_by, request=request, details={"email": user.email}
    )
    user.delete()


def user_login(*, request, email: str, password: str, ip: str | None, user_agent: str) -> TokenPair:
    """Authenticate through Django's backends and open a session.

    Raises AuthenticationFailedError, one answer for an unknown email, a wrong password, an inactive
    account and a locked one; Django's ModelBackend runs the hasher for an unknown email too, and a
    locked account is still checked, so neither answer nor time tells them apart. The failure is counted
    per submitted email (known or not) and the LOCKOUT_THRESHOLD-th one locks it. With
    REQUIRE_EMAIL_VERIFICATION, the right password on an unverified account raises EmailNotVerifiedError.
    """
    email = normalize_email(email)
    # One read tells both whether the email is locked and whether a success has failures to clear.
    lockout = only_row(LoginLockout.objects.filter(email=email).values("locked_until"))
    locked = lockout is not None and lockout["locked_until"] is not None and lockout["locked_until"] > timezone.now()
    user = authenticate(request, email=email, password=password)
    if user is None or locked:
        login_failure_record(email=email, request=request, locked=locked)
        raise AuthenticationFailedError()
    if settings.REQUIRE_EMAIL_VERIFICATION and not user.email_verified:
        security_event_record(
            type=Event.LOGIN_FAILED, user_id=user.pk, request=request, details={"reason": "email_not_verified"}
        )
        raise EmailNotVerifiedError()
    with transaction.atomic():
        if lockout is not None:  # a failure racing this read is left counted, as if it came after the success
            LoginLockout.objects.filter(email=email).delete()
        pair = session_issue(user=user, ip=ip, user_agent=user_agent)
        security_event_record(
            type=Event.LOGIN_SUCCEEDED,
            user_id=user.pk,
            actor=user,
            request=request,
            details={"session_id": str(pair.session_id)},
        )
    return pair


@transaction.atomic
def login_failure_record(*, email: str, request=None, locked: bool = False) -> None:
    """Record a failed login for ``email`` and count it; lock the email at LOCKOUT_THRESHOLD failures.

    A lock lasts LOCKOUT_DURATION, doubled for each earlier lock (at most LOCKOUT_MAX_DURATION) and mails the
    owner once. It stops new logins only: the account's open sessions go on, or anyone who knows an email could
    sign its owner out of every device with ten wrong passwords. Attempts while locked are recorded but not counted.
    """
    user_id = User.objects.filter(email=email).values_list("pk", flat=True).first()
    details = {"reason": "locked"} if locked else {}
    if user_id is None:
        details["email"] = email[:254]
    security_event_record(type=Event.LOGIN_FAILED, user_id=user_id, request=request, details=details)
    if locked:
        return
    now = timezone.now()
    lockout, _ = LoginLockout.objects.select_for_update().get_or_create(email=email)
    window = timedelta(seconds=settings.LOCKOUT_WINDOW)
    if lockout.window_started_at is None or now - lockout.window_started_at > window:
        lockout.failures, lockout.window_started_at = 0, now
    lockout.failures += 1
    if lockout.failures >= settings.LOCKOUT_THRESHOLD:
        seconds = min(settings.LOCKOUT_DURATION * 2**lockout.lock_count, settings.LOCKOUT_MAX_DURATION)
        lockout.locked_until = now + timedelta(seconds=seconds)
        lockout.lock_count += 1
        lockout.failures, lockout.window_started_at = 0, None
        if user_id is not None:
            security_event_record(type=Event.LOCKED, user_id=user_id, request=request, details={"seconds": seconds})
            mail_enqueue(tasks.lockout_mail_send, user_id=str(user_id), minutes=max(1, seconds // 60))
    lockout.save()


def user_unlock(*, user: User, unlocked_by=None, request=None) -> bool:
    """Lift the login lock of ``user`` and forget its failed logins; return whether it was locked."""
    return login_lockout_lift(email=user.email, lifted_by=unlocked_by, request=request)


@transaction.atomic
def login_lockout_lift(*, email: str, lifted_by=None, request=None) -> bool:
    """Lift the login lock of ``email`` (an account's or not) and forget its failures; return whether it was locked.

    Records an ``unlocked`` event on the account of that email, if there is one.
    """
    lockout = LoginLockout.objects.select_for_update().filter(email=normalize_email(email)).first()
    if lockout is None:
        return False
    was_locked = lockout.is_locked
    lockout.delete()
    user_id = User.objects.filter(email=lockout.email).values_list("pk", flat=True).first()
    if was_locked and user_id is not None:
        security_event_record(type=Event.UNLOCKED, user_id=user_id, actor=lifted_by, request=request)
    return was_locked


def user_logout(*, user, session_id: uuid.UUID, request=None) -> None:
    """End the session ``session_id`` of ``user``; raise Session.DoesNotExist when it is not open."""
    with transaction.atomic():
        session_revoke(user_id=user.pk, session_id=session_id, reason=Session.EndReason.LOGOUT)
        security_event_record(
            type=Event.LOGOUT, user_id=user.pk, actor=user, request=request, details={"session_id": str(session_id)}
        )


def user_session_revoke(*, user, session_id: uuid.UUID, request=None) -> None:
    """End one open session of ``user`` from the sessions API; raise Session.DoesNotExist when it has none such.

    Recorded as a logout of that session, with ``via: "sessions"`` (and ``current`` when it was the caller's own).
    """
    with transaction.atomic():
        session_revoke(user_id=user.pk, session_id=session_id, reason=Session.EndReason.REVOKED)
        security_event_record(
            type=Event.LOGOUT,
            user_id=user.pk,
            actor=user,
            request=request,
            details={
                "session_id": str(session_id),
                "via": "sessions",
                "current": session_id == getattr(user, "session_id", None),
            },
        )


@transaction.atomic
def user_logout_all(*, user, keep_session_id: uuid.UUID | None = None, request=None) -> int:
    """End every session of ``user`` but ``keep_session_id``; return how many ended."""
    ended = session_revoke_all(user_id=user.pk, reason=Session.EndReason.LOGOUT_ALL, keep_session_id=keep_session_id)
    security_event_record(
        type=Event.LOGOUT_ALL,
        user_id=user.pk,
        actor=user,
        request=request,
        details={"sessions_ended": ended, "kept_current": keep_session_id is not None},
    )
    return ended


@transaction.atomic
def password_change(
    *,
    user: User,
    current_password: str,
    new_password: str,
    keep_session_id: uuid.UUID | None,
    request=None,
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
    security_event_record(type=Event.PASSWORD_CHANGED, user_id=user.pk, actor=user, request=request)


@transaction.atomic
def password_set_by_staff_record(*, user: User, changed_by, request=None) -> None:
    """After a staff member set ``user``'s password (admin), end every session of the user and record it."""
    session_revoke_all(user_id=user.pk, reason=Session.EndReason.PASSWORD_CHANGED)
    security_event_record(type=Event.PASSWORD_CHANGED, user_id=user.pk, actor=changed_by, request=request)


def password_reset_request(*, email: str, request=None) -> None:
    """Mail a one-time reset link to the active account of ``email``, if there is one.

    Known and unknown emails do the same work here (a lookup, one run of the password hasher, one event,
    one queued task: the task finds the account and builds the link), so the answer and its time tell
    nothing. Never raises for an unknown email.
    """
    email = normalize_email(email)
    user_id = User.objects.filter(email=email, is_active=True).values_list("pk", flat=True).first()
    # A fixed floor of hashing work, the same for every email, so the lookup's outcome does not show in time.
    # Hashed outside the transaction: a write transaction (SQLite's IMMEDIATE mode) must not wait on the hasher.
    make_password(email)
    details = {} if user_id is not None else {"email": email[:254]}
    with transaction.atomic():
        security_event_record(type=Event.PASSWORD_RESET_REQUESTED, user_id=user_id, request=request, details=details)
        mail_enqueue(tasks.password_reset_mail_send, email=email)


def _user_from_uid(uid: str) -> User | None:
    try:
        pk = uuid.UUID(force_str(urlsafe_base64_decode(uid)))
    except (TypeError, ValueError, OverflowError):
        return None
    return User.objects.select_for_update().filter(pk=pk, is_active=True).first()


@transaction.atomic
def password_reset_confirm(*, uid: str, token: str, new_password: str, request=None) -> User:
    """Set the password of the reset link's user, end all of its sessions and lift a login lock.

    The token is spent by the new password (its hash is part of it). Raises ValidationError on ``token``
    (bad, used or expired) or ``new_password`` (too weak).
    """
    user = _user_from_uid(uid)
    if user is None or not password_reset_token.check_token(user, token):
        raise ValidationError({"token": [INVALID_LINK]})
    try:
        validate_password(new_password, user=user)
    except ValidationError as exc:
        raise ValidationError({"new_password": exc.messages}) from None
    user.set_password(new_password)
    user.save(update_fields=["password"])
    session_revoke_all(user_id=user.pk, reason=Session.EndReason.PASSWORD_RESET)
    LoginLockout.objects.filter(email=user.email).delete()
    security_event_record(type=Event.PASSWORD_RESET_COMPLETED, user_id=user.pk, actor=user, request=request)
    return user


@transaction.atomic
def email_verify_confirm(*, uid: str, token: str, request=None) -> User:
    """Mark the link's user's email verified; raise ValidationError on ``token`` when bad, used or expired."""
    user = _user_from_uid(uid)
    if user is None or user.email_verified or not email_verification_token.check_token(user, token):
        raise ValidationError({"token": [INVALID_LINK]})
    user.email_verified = True
    user.save(update_fields=["email_verified"])
    security_event_record(type=Event.EMAIL_VERIFIED, user_id=user.pk, actor=user, request=request)
    return user


@transaction.atomic
def email_verification_resend(*, user: User, request=None) -> None:
    """Mail ``user`` a new verification link, unless the email is already verified."""
    if not user.email_verified:
        _verification_send(user, actor=user, request=request)
