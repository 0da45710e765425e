"""Permission checks on request, view and object."""

from rest_framework.permissions import SAFE_METHODS, BasePermission


class IsStaff(BasePermission):
    """Allow staff members only."""

    message = "Only staff members may do this."

    def has_permission(self, request, view):
        return bool(request.user and request.user.is_authenticated and request.user.is_staff)


class IsRegistrationAllowed(BasePermission):
    """Allow anyone while registration is open (ALLOW_REGISTRATION), staff otherwise."""

    message = "Registration is closed."

    def has_permission(self, request, view):
        from django.conf import settings

        if settings.ALLOW_REGISTRATION:
            return True
        return bool(request.user and request.user.is_authenticated and request.user.is_staff)


class IsSelfOrSuperuserTarget(BasePermission):
    """Let staff change other users, but only a superuser may change or delete a superuser.

    Without this rule a staff member could change a superuser's email and take the account over.
    Visibility (self or staff) is the selector's job; this only guards writes.
    """

    message = "Only a superuser may change a superuser."

    def has_object_permission(self, request, view, obj):
        if request.method in SAFE_METHODS or obj.pk == request.user.pk:
            return True
        return not obj.is_superuser or request.user.is_superuser
