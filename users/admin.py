"""Django admin for staff: users (activate, deactivate, unlock), sessions, and the read-only security log.

Every change made here goes through the same services as the API, so it records the same security events.
"""

import uuid

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.contrib.auth import admin as auth_admin

from core.pagination import EstimatedCountPaginator
from users import services
from users.forms import UserAdminChangeForm, UserAdminCreationForm
from users.models import LoginLockout, SecurityEvent, Session, User


@admin.register(User)
class UserAdmin(auth_admin.UserAdmin):
    form = UserAdminChangeForm
    add_form = UserAdminCreationForm
    # Usable at a million users: no COUNT(*) of the whole table per page view.
    paginator = EstimatedCountPaginator
    show_full_result_count = False
    list_display = [
        "email",
        "first_name",
        "last_name",
        "is_active",
        "is_staff",
        "email_verified",
        "date_joined",
        "last_login",
    ]
    list_filter = ["is_active", "is_staff", "is_superuser", "email_verified"]
    search_fields = ["email", "first_name", "last_name"]
    ordering = ["-date_joined"]
    readonly_fields = ["id", "date_joined", "last_login"]
    actions = ["activate_users", "deactivate_users", "unlock_users"]
    fieldsets = (
        (None, {"fields": ("id", "email", "password")}),
        ("Personal info", {"fields": ("first_name", "last_name")}),
        ("Status", {"fields": ("is_active", "email_verified")}),
        ("Permissions", {"fields": ("is_staff", "is_superuser", "groups", "user_permissions")}),
        ("Dates", {"fields": ("date_joined", "last_login")}),
    )
    add_fieldsets = (
        (None, {"classes": ("wide",), "fields": ("email", "first_name", "last_name", "password1", "password2")}),
    )

    @admin.action(description="Activate selected users")
    def activate_users(self, request, queryset):
        for user in queryset:
            services.user_set_active(user=user, is_active=True, changed_by=request.user, request=request)
        self.message_user(request, f"Activated {queryset.count()} user(s).", messages.SUCCESS)

    @admin.action(description="Deactivate selected users (ends their sessions)")
    def deactivate_users(self, request, queryset):
        count = 0
        for user in queryset.exclude(pk=request.user.pk):
            services.user_set_active(user=user, is_active=False, changed_by=request.user, request=request)
            count += 1
        self.message_user(request, f"Deactivated {count} user(s).", messages.SUCCESS)

    @admin.action(description="Unlock selected users (lift a lock from failed logins)")
    def unlock_users(self, request, queryset):
        count = sum(services.user_unlock(user=user, unlocked_by=request.user, request=request) for user in queryset)
        self.message_user(request, f"Unlocked {count} user(s).", messages.SUCCESS)

    def save_model(self, request, obj, form, change):
        if not change:
            super().save_model(request, obj, form, change)
            services.user_created_record(user=obj, created_by=request.user, request=request)
            return
        # The fields the API can write go through its service (events, sessions, verification mail); the
        # admin-only ones (is_superuser, email_verified, password hash, groups) are saved as the form says.
        current = User.objects.get(pk=obj.pk)
        data = {field: getattr(obj, field) for field in services.UPDATABLE_FIELDS if field in form.changed_data}
        services.user_update(user=current, data=data, updated_by=request.user, request=request)
        if "email_verified" not in form.changed_data:
            obj.email_verified = current.email_verified
        super().save_model(request, obj, form, change)

    def delete_model(self, request, obj):
        services.user_delete(user=obj, deleted_by=request.user, request=request)

    def delete_queryset(self, request, queryset):
        for user in queryset:
            services.user_delete(user=user, deleted_by=request.user, request=request)

    def user_change_password(self, request, id, form_url=""):
        response = super().user_change_password(request, id, form_url)
        if request.method == "POST" and response.status_code == 302:
            user = self.get_object(request, unquote(id))
            services.password_set_by_staff_record(user=user, changed_by=request.user, request=request)
        return response


@admin.register(Session)
class SessionAdmin(admin.ModelAdmin):
    list_display = ["id", "user", "created_at", "last_used_at", "ip", "ended_at", "end_reason"]
    list_filter = ["end_reason"]
    search_fields = ["user__email", "ip"]
    exclude = ["refresh_hash", "previous_refresh_hash"]
    # Read-only fields are shown even when excluded: leave the refresh token hashes out of both.
    readonly_fields = [f.name for f in Session._meta.fields if not f.name.endswith("refresh_hash")]

    def has_add_permission(self, request):
        return False


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows written by the service only: staff view them, never add, change or delete them by hand."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(SecurityEvent)
class SecurityEventAdmin(ReadOnlyAdmin):
    """The security log, read-only: filter by type and date, search by user (email or id)."""

    list_display = ["created_at", "type", "user_id", "actor_id", "ip", "request_id"]
    list_filter = ["type", "created_at"]
    search_fields = ["=user_id", "=request_id"]
    search_help_text = "A user's email (or part of it), a user id, or a request id."
    date_hierarchy = "created_at"
    ordering = ["-created_at"]
    readonly_fields = [f.name for f in SecurityEvent._meta.fields]

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        try:
            return queryset.filter(user_id=uuid.UUID(term)), False
        except ValueError:
            pass
        user_ids = User.objects.filter(email__icontains=term.lower()).values_list("pk", flat=True)[:1000]
        return queryset.filter(user_id__in=list(user_ids)) | queryset.filter(request_id=term), False


@admin.register(LoginLockout)
class LoginLockoutAdmin(ReadOnlyAdmin):
    """Failed-login counters and locks per submitted email (accounts or not); staff can lift them."""

    list_display = ["email", "failures", "window_started_at", "locked_until", "lock_count"]
    search_fields = ["email"]
    ordering = ["-locked_until"]
    readonly_fields = [f.name for f in LoginLockout._meta.fields]
    actions = ["lift_locks"]

    def has_lift_permission(self, request):
        return request.user.has_perm("users.change_loginlockout")

    @admin.action(description="Lift the selected locks", permissions=["lift"])
    def lift_locks(self, request, queryset):
        emails = list(queryset.values_list("email", flat=True))
        count = sum(
            services.login_lockout_lift(email=email, lifted_by=request.user, request=request) for email in emails
        )
        self.message_user(request, f"Lifted {count} lock(s).", messages.SUCCESS)
