"""Django admin for staff: users with email login, search, filters, activate/deactivate actions."""

from django.contrib import admin, messages
from django.contrib.auth import admin as auth_admin

from users import services
from users.forms import UserAdminChangeForm, UserAdminCreationForm
from users.models import Session, User


@admin.register(User)
class UserAdmin(auth_admin.UserAdmin):
    form = UserAdminChangeForm
    add_form = UserAdminCreationForm
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
    actions = ["activate_users", "deactivate_users"]
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
            services.user_set_active(user=user, is_active=True, changed_by=request.user)
        self.message_user(request, f"Activated {queryset.count()} user(s).", messages.SUCCESS)

    @admin.action(description="Deactivate selected users (ends their sessions)")
    def deactivate_users(self, request, queryset):
        count = 0
        for user in queryset.exclude(pk=request.user.pk):
            services.user_set_active(user=user, is_active=False, changed_by=request.user)
            count += 1
        self.message_user(request, f"Deactivated {count} user(s).", messages.SUCCESS)

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        if change and "is_active" in form.changed_data and not obj.is_active:
            from users.tokens import session_revoke_all

            session_revoke_all(user_id=obj.pk, reason=Session.EndReason.DEACTIVATED)


@admin.register(Session)
class SessionAdmin(admin.ModelAdmin):
    list_display = ["id", "user", "created_at", "last_used_at", "ip", "ended_at", "end_reason"]
    list_filter = ["end_reason"]
    search_fields = ["user__email", "ip"]
    readonly_fields = [f.name for f in Session._meta.fields]
    exclude = ["refresh_hash", "previous_refresh_hash"]

    def has_add_permission(self, request):
        return False
