"""User (email login, UUID key), Session (one per login), SecurityEvent (audit log) and LoginLockout."""

import uuid

from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.models import PermissionsMixin
from django.db import models
from django.db.models import F
from django.db.models.functions import Lower
from django.utils import timezone

from core.pagination import nullable_sort_key
from users.managers import UserManager, normalize_email, validate_email_domain_canonical


def last_login_sort_key():
    return nullable_sort_key("last_login")


# A UUID in a URL, with or without hyphens.
UUID_RE = "[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}"


class User(AbstractBaseUser, PermissionsMixin):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    email = models.EmailField(
        "email address", max_length=254, unique=True, validators=[validate_email_domain_canonical]
    )
    first_name = models.CharField(max_length=150, blank=True)
    last_name = models.CharField(max_length=150, blank=True)
    is_active = models.BooleanField(default=True)
    is_staff = models.BooleanField(default=False)
    email_verified = models.BooleanField(default=False)
    date_joined = models.DateTimeField(default=timezone.now)

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []

    class Meta:
        verbose_name = "user"
        verbose_name_plural = "users"
        constraints = [
            models.UniqueConstraint(Lower("email"), name="users_user_email_ci_unique"),
            models.CheckConstraint(condition=models.Q(email=Lower("email")), name="users_user_email_lowercase"),
        ]
        indexes = [
            models.Index(fields=["date_joined", "id"], name="users_user_joined_idx"),
            # The list orders by last_login with nulls as the epoch (core.pagination): index that very expression.
            models.Index(last_login_sort_key(), F("id"), name="users_user_last_login_key_idx"),
            models.Index(fields=["is_active", "is_staff"], name="users_user_flags_idx"),
        ]

    def __str__(self):
        return self.email

    def clean(self):
        super().clean()
        self.email = normalize_email(self.email)

    def get_full_name(self):
        return f"{self.first_name} {self.last_name}".strip()

    def get_short_name(self):
        return self.first_name


class Session(models.Model):
    """One login: the refresh token chain of one device. Ended sessions refuse every token they issued."""

    class EndReason(models.TextChoices):
        LOGOUT = "logout"
        LOGOUT_ALL = "logout_all"
        REVOKED = "revoked"
        PASSWORD_CHANGED = "password_changed"
        REUSE_DETECTED = "reuse_detected"
        DEACTIVATED = "deactivated"
        PASSWORD_RESET = "password_reset"
        LOCKED = "locked"  # sessions ended by a login lock before locks stopped ending them: kept for their rows

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="sessions")
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(default=timezone.now)
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=512, blank=True)
    # SHA-256 of the current refresh token and of the one it replaced (for the concurrent-refresh grace window).
    refresh_hash = models.CharField(max_length=64)
    previous_refresh_hash = models.CharField(max_length=64, blank=True)
    generation = models.PositiveIntegerField(default=0)
    refresh_issued_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)
    end_reason = models.CharField(max_length=32, choices=EndReason.choices, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["user", "ended_at"], name="users_session_user_open_idx"),
            models.Index(fields=["expires_at"], name="users_session_expires_idx"),
        ]

    def __str__(self):
        return f"session {self.id} of {self.user_id}"

    @property
    def is_open(self) -> bool:
        return self.ended_at is None and self.expires_at > timezone.now()


class SecurityEvent(models.Model):
    """One thing that happened to an account; append-only, and kept after its user is deleted.

    ``user_id`` and ``actor_id`` are plain UUIDs, not foreign keys, so deleting a user neither cascades
    nor blanks its history. ``details`` holds small facts (field names, an end reason), never secrets.
    """

    class Type(models.TextChoices):
        REGISTERED = "registered"
        LOGIN_SUCCEEDED = "login_succeeded"
        LOGIN_FAILED = "login_failed"
        LOGOUT = "logout"
        LOGOUT_ALL = "logout_all"
        TOKEN_REUSE_DETECTED = "token_reuse_detected"
        PASSWORD_CHANGED = "password_changed"
        PASSWORD_RESET_REQUESTED = "password_reset_requested"
        PASSWORD_RESET_COMPLETED = "password_reset_completed"
        EMAIL_VERIFICATION_SENT = "email_verification_sent"
        EMAIL_VERIFIED = "email_verified"
        PROFILE_CHANGED = "profile_changed"
        ACTIVATED = "activated"
        DEACTIVATED = "deactivated"
        STAFF_GRANTED = "staff_granted"
        STAFF_REMOVED = "staff_removed"
        DELETED = "deleted"
        LOCKED = "locked"
        UNLOCKED = "unlocked"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    type = models.CharField(max_length=32, choices=Type.choices)
    user_id = models.UUIDField(null=True, blank=True)
    actor_id = models.UUIDField(null=True, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=512, blank=True)
    request_id = models.CharField(max_length=128, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    details = models.JSONField(default=dict, blank=True)

    class Meta:
        indexes = [
            # The events API pages one user's events newest first.
            models.Index(fields=["user_id", "created_at", "id"], name="users_secevent_user_idx"),
            models.Index(fields=["created_at"], name="users_secevent_created_idx"),
            models.Index(fields=["type", "created_at"], name="users_secevent_type_idx"),
        ]

    def __str__(self):
        return f"{self.type} of {self.user_id or '-'} at {self.created_at:%Y-%m-%d %H:%M:%S}"


class LoginLockout(models.Model):
    """Failed logins counted per submitted email, known or not, and the lock they lead to."""

    email = models.CharField(max_length=254, unique=True)
    failures = models.PositiveIntegerField(default=0)
    window_started_at = models.DateTimeField(null=True, blank=True)
    locked_until = models.DateTimeField(null=True, blank=True)
    # Locks so far: each one lasts twice as long as the one before.
    lock_count = models.PositiveIntegerField(default=0)

    class Meta:
        indexes = [models.Index(fields=["locked_until"], name="users_lockout_until_idx")]

    def __str__(self):
        return f"lockout of {self.email}"

    @property
    def is_locked(self) -> bool:
        return self.locked_until is not None and self.locked_until > timezone.now()


class StateCacheEpoch(models.Model):
    """The generation of the shared cache's auth state, bumped when an invalidation could not reach the cache.

    One row. Every auth-state key carries it (users.auth_state), so entries left in a cache that a
    failed invalidation could not reach are never read again once processes see the new generation.
    """

    SINGLETON = 1

    id = models.PositiveSmallIntegerField(primary_key=True, default=SINGLETON)
    value = models.PositiveBigIntegerField(default=0)
    bumped_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "state cache generation"

    def __str__(self):
        return f"generation {self.value}"
