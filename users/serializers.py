"""Request and response shapes of the users and auth API, with field-level write rules."""

from rest_framework import serializers

from users.managers import email_domain_is_canonical, normalize_email
from users.models import SecurityEvent, User

PERMISSION_LIMITED = {
    "is_active": "Only staff members may change is_active, and not on their own account.",
    "is_staff": "Only superusers may change is_staff.",
}


class StrictCharField(serializers.CharField):
    """A CharField that refuses numbers and other non-strings instead of coercing them."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictEmailField(serializers.EmailField):
    """An email, stripped and lower-cased; a domain not in its canonical IDNA form is refused."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        email = normalize_email(super().to_internal_value(data))
        if not email_domain_is_canonical(email):
            self.fail("invalid")
        return email


class StrictBooleanField(serializers.BooleanField):
    """A BooleanField that takes only JSON true and false."""

    def to_internal_value(self, data):
        if data is not True and data is not False:
            self.fail("invalid", input=data)
        return data


class UserSerializer(serializers.ModelSerializer):
    """A user as every reader sees it."""

    class Meta:
        model = User
        fields = [
            "id",
            "email",
            "first_name",
            "last_name",
            "is_active",
            "is_staff",
            "email_verified",
            "date_joined",
            "last_login",
        ]
        read_only_fields = fields


class _UserWriteSerializer(serializers.Serializer):
    """Shared write fields; read-only and unknown fields are ignored, limited ones checked."""

    email = StrictEmailField(max_length=254)
    first_name = StrictCharField(max_length=150, required=False, allow_blank=True)
    last_name = StrictCharField(max_length=150, required=False, allow_blank=True)
    is_active = StrictBooleanField(required=False)
    is_staff = StrictBooleanField(required=False)

    def _current(self, field: str) -> bool:
        if self.instance is not None:
            return getattr(self.instance, field)
        return User._meta.get_field(field).default

    def validate_is_active(self, value):
        requester = self.context["request"].user
        if value != self._current("is_active"):
            is_self = self.instance is not None and self.instance.pk == requester.pk
            if not requester.is_staff or is_self:
                raise serializers.ValidationError(PERMISSION_LIMITED["is_active"])
        return value

    def validate_is_staff(self, value):
        if value != self._current("is_staff") and not self.context["request"].user.is_superuser:
            raise serializers.ValidationError(PERMISSION_LIMITED["is_staff"])
        return value


class UserCreateSerializer(_UserWriteSerializer):
    password = StrictCharField(
        write_only=True, max_length=4096, trim_whitespace=False, style={"input_type": "password"}
    )


class UserUpdateSerializer(_UserWriteSerializer):
    """Full (PUT) or partial (PATCH) update; a password here is refused: use the password endpoints."""

    def validate(self, attrs):
        if isinstance(self.initial_data, dict) and "password" in self.initial_data:
            raise serializers.ValidationError(
                {"password": ["Change the password through /api/v1/auth/password/change."]}
            )
        return attrs


class TokenObtainSerializer(serializers.Serializer):
    email = StrictCharField(max_length=254)
    password = StrictCharField(max_length=4096, trim_whitespace=False, style={"input_type": "password"})


class TokenPairSerializer(serializers.Serializer):
    access = serializers.CharField(read_only=True)
    refresh = serializers.CharField(read_only=True)


class TokenRefreshSerializer(serializers.Serializer):
    refresh = StrictCharField(max_length=4096)


class LogoutSerializer(serializers.Serializer):
    refresh = StrictCharField(max_length=4096, required=False)


class LogoutAllSerializer(serializers.Serializer):
    keep_current = StrictBooleanField(required=False, default=False)


class SessionSerializer(serializers.Serializer):
    id = serializers.UUIDField(read_only=True)
    created_at = serializers.DateTimeField(read_only=True)
    last_used_at = serializers.DateTimeField(read_only=True)
    ip = serializers.IPAddressField(read_only=True, allow_null=True)
    user_agent = serializers.CharField(read_only=True)
    current = serializers.SerializerMethodField()

    def get_current(self, obj) -> bool:
        return obj.pk == self.context["request"].user.session_id


class PasswordChangeSerializer(serializers.Serializer):
    current_password = StrictCharField(max_length=4096, trim_whitespace=False, style={"input_type": "password"})
    new_password = StrictCharField(max_length=4096, trim_whitespace=False, style={"input_type": "password"})


class DetailSerializer(serializers.Serializer):
    """A 202 answer: what happens next, the same whatever the input revealed."""

    detail = serializers.CharField(read_only=True)


class PasswordResetRequestSerializer(serializers.Serializer):
    email = StrictEmailField(max_length=254)


class PasswordResetConfirmSerializer(serializers.Serializer):
    uid = StrictCharField(max_length=64)
    token = StrictCharField(max_length=128)
    new_password = StrictCharField(max_length=4096, trim_whitespace=False, style={"input_type": "password"})


class EmailVerifySerializer(serializers.Serializer):
    uid = StrictCharField(max_length=64)
    token = StrictCharField(max_length=128)


class SecurityEventSerializer(serializers.ModelSerializer):
    """One entry of a user's security log."""

    class Meta:
        model = SecurityEvent
        fields = ["id", "type", "created_at", "actor_id", "ip", "user_agent", "request_id", "details"]
        read_only_fields = fields
