"""The users and auth API: a users viewset and small auth views; each validates, calls a service, answers."""

import uuid

from django.conf import settings
from django.http import HttpResponse
from django.urls import reverse
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import generics, mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from core.ratelimit import Limit, client_ip, enforce_rate_limits
from core.schema import errors
from users import selectors, services, tokens
from users.filters import UserFilter
from users.managers import normalize_email
from users.models import UUID_RE, SecurityEvent, Session, User
from users.permissions import IsRegistrationAllowed, IsSelfOrSuperuserTarget, IsStaff
from users.serializers import (
    DetailSerializer,
    EmailVerifySerializer,
    LogoutAllSerializer,
    LogoutSerializer,
    PasswordChangeSerializer,
    PasswordResetConfirmSerializer,
    PasswordResetRequestSerializer,
    SecurityEventSerializer,
    SessionSerializer,
    TokenObtainSerializer,
    TokenPairSerializer,
    TokenRefreshSerializer,
    UserCreateSerializer,
    UserSerializer,
    UserUpdateSerializer,
)

REGISTRATION_ACCEPTED = "Registration received. Check your mailbox to continue."
RESET_REQUESTED = "If an account uses this email, a password reset link is on its way."
VERIFICATION_RESENT = "If your email is not verified yet, a new verification link is on its way."
# RFC 6749 section 5.1: an answer carrying tokens must not be stored by any cache on the way.
TOKEN_RESPONSE_HEADERS = {"Cache-Control": "no-store", "Pragma": "no-cache"}

ORDERING_PARAMETER = OpenApiParameter(
    "ordering",
    str,
    enum=["email", "-email", "date_joined", "-date_joined", "last_login", "-last_login"],
    description="Sort field, `-` for descending (default `-date_joined`).",
)


@extend_schema_view(
    list=extend_schema(
        summary="List users (staff)",
        parameters=[ORDERING_PARAMETER],
        responses={200: UserSerializer(many=True), **errors(403)},
    ),
    create=extend_schema(
        summary="Register a user (or create one, as staff)",
        description=(
            "Sends a verification email. With REGISTRATION_ENUMERATION_PROTECTION, anonymous registration answers "
            "202 with the same body for a new and a taken email (the owner of a taken one is mailed a notice)."
        ),
        request=UserCreateSerializer,
        # Anyone may register while ALLOW_REGISTRATION is on: the token is optional (staff creating a user send one).
        auth=[{"jwtAuth": []}, {}],
        parameters=[
            OpenApiParameter(
                "Location",
                str,
                location=OpenApiParameter.HEADER,
                response=[201],
                description="The URL of the created user.",
            )
        ],
        responses={
            201: UserSerializer,
            202: OpenApiResponse(DetailSerializer, description="REGISTRATION_ENUMERATION_PROTECTION is on"),
            **errors(403),
        },
    ),
    retrieve=extend_schema(summary="Read a user (self or staff)", responses={200: UserSerializer}),
    update=extend_schema(
        summary="Replace a user's writable fields",
        request=UserUpdateSerializer,
        responses={200: UserSerializer, **errors(403)},
    ),
    partial_update=extend_schema(
        summary="Update some of a user's fields",
        request=UserUpdateSerializer,
        responses={200: UserSerializer, **errors(403)},
    ),
    destroy=extend_schema(summary="Delete a user (self or staff)", responses={204: None, **errors(403)}),
)
class UserViewSet(
    mixins.ListModelMixin,
    mixins.CreateModelMixin,
    mixins.RetrieveModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    lookup_value_regex = UUID_RE
    filterset_class = UserFilter
    ordering_fields = {"email": "text", "date_joined": "datetime", "last_login": "nullable_datetime"}
    default_ordering = "-date_joined"
    queryset = User.objects.none()  # for the schema; get_queryset applies visibility

    def get_permissions(self):
        if self.action == "list":
            return [IsStaff()]
        if self.action == "create":
            return [IsRegistrationAllowed()]
        return [IsAuthenticated(), IsSelfOrSuperuserTarget()]

    def get_queryset(self):
        if self.action == "list":
            return selectors.user_list(requested_by=self.request.user)
        return selectors.user_visible_to(requested_by=self.request.user)

    def get_serializer_class(self):
        if self.action == "create":
            return UserCreateSerializer
        if self.action in ("update", "partial_update", "me") and self.request.method in ("PUT", "PATCH"):
            return UserUpdateSerializer
        return UserSerializer

    def create(self, request, *args, **kwargs):
        if not request.user.is_authenticated:
            enforce_rate_limits(Limit("register-ip", client_ip(request), settings.RATELIMIT_REGISTER_IP))
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        if not request.user.is_authenticated and settings.REGISTRATION_ENUMERATION_PROTECTION:
            fields = {k: v for k, v in serializer.validated_data.items() if k not in ("is_active", "is_staff")}
            services.user_register(**fields, request=request)
            return Response({"detail": REGISTRATION_ACCEPTED}, status=status.HTTP_202_ACCEPTED)
        created_by = request.user if request.user.is_authenticated else None
        user = services.user_create(**serializer.validated_data, created_by=created_by, request=request)
        location = reverse("users:user-detail", kwargs={"pk": user.pk})
        return Response(UserSerializer(user).data, status=status.HTTP_201_CREATED, headers={"Location": location})

    def retrieve(self, request, *args, **kwargs):
        # The cached body is the same for every caller allowed to see this user (self or staff).
        body = selectors.user_body_for(requested_by=request.user, user_id=self.kwargs[self.lookup_field])
        return HttpResponse(body, content_type="application/json")

    def get_object(self):
        # /users/me carries no id: it is the caller's own (DRF's OPTIONS metadata asks for the object too).
        self.kwargs.setdefault(self.lookup_field, str(self.request.user.pk))
        return super().get_object()

    def update(self, request, *args, **kwargs):
        partial = kwargs.pop("partial", False)
        user = self.get_object()
        serializer = self.get_serializer(user, data=request.data, partial=partial)
        serializer.is_valid(raise_exception=True)
        user = services.user_update(
            user=user, data=serializer.validated_data, updated_by=request.user, request=request
        )
        return Response(UserSerializer(user).data)

    def perform_destroy(self, instance):
        services.user_delete(user=instance, deleted_by=self.request.user, request=self.request)

    @extend_schema(methods=["GET"], summary="Read the caller", responses={200: UserSerializer})
    @extend_schema(
        methods=["PUT"],
        summary="Replace the caller's writable fields",
        request=UserUpdateSerializer,
        responses={200: UserSerializer},
    )
    @extend_schema(
        methods=["PATCH"],
        summary="Update some of the caller's fields",
        request=UserUpdateSerializer,
        responses={200: UserSerializer},
    )
    @extend_schema(methods=["DELETE"], summary="Delete the caller's account", responses={204: None})
    @action(detail=False, methods=["get", "put", "patch", "delete"], url_path="me", url_name="me")
    def me(self, request):
        self.kwargs[self.lookup_field] = str(request.user.pk)
        if request.method in ("GET", "HEAD"):  # DRF routes HEAD to the GET handler: never to the update below
            return self.retrieve(request)
        if request.method == "DELETE":
            return self.destroy(request)
        return self.update(request, partial=request.method == "PATCH")


class TokenObtainView(APIView):
    """Log in: email and password for a token pair, opening a session."""

    permission_classes = [AllowAny]
    authentication_classes = []

    @extend_schema(
        summary="Log in",
        request=TokenObtainSerializer,
        responses={
            200: TokenPairSerializer,
            **errors(
                401,
                e401="authentication_failed: one answer for a wrong email, a wrong password and an inactive account",
            ),
            **errors(403, e403="email_not_verified"),
        },
    )
    def post(self, request):
        serializer = TokenObtainSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        ip = client_ip(request)
        email = normalize_email(serializer.validated_data["email"])  # the stored form: one limit per account
        enforce_rate_limits(
            Limit("login-ip", ip, settings.RATELIMIT_LOGIN_IP),
            Limit("login-email", email, settings.RATELIMIT_LOGIN_EMAIL),
        )
        pair = services.user_login(
            request=request,
            email=email,
            password=serializer.validated_data["password"],
            ip=ip or None,
            user_agent=request.META.get("HTTP_USER_AGENT", ""),
        )
        return Response({"access": pair.access, "refresh": pair.refresh}, headers=TOKEN_RESPONSE_HEADERS)


class TokenRefreshView(APIView):
    """Rotate a refresh token: the old one is spent, a new pair of the same session returned."""

    permission_classes = [AllowAny]
    authentication_classes = []

    @extend_schema(
        summary="Refresh the token pair",
        request=TokenRefreshSerializer,
        responses={200: TokenPairSerializer, **errors(401, e401="token_not_valid")},
    )
    def post(self, request):
        serializer = TokenRefreshSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        pair = tokens.session_rotate(refresh=serializer.validated_data["refresh"])
        return Response({"access": pair.access, "refresh": pair.refresh}, headers=TOKEN_RESPONSE_HEADERS)


class LogoutView(APIView):
    """End the session of the access token used."""

    @extend_schema(summary="Log out (end this session)", request=LogoutSerializer, responses={204: None})
    def post(self, request):
        LogoutSerializer(data=request.data).is_valid(raise_exception=True)
        try:
            services.user_logout(user=request.user, session_id=request.user.session_id, request=request)
        except Session.DoesNotExist:
            pass  # Ended concurrently: the outcome the caller asked for.
        return Response(status=status.HTTP_204_NO_CONTENT)


class LogoutAllView(APIView):
    """End every session of the caller, or every other one with keep_current."""

    @extend_schema(summary="Log out everywhere", request=LogoutAllSerializer, responses={204: None})
    def post(self, request):
        serializer = LogoutAllSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        keep = request.user.session_id if serializer.validated_data["keep_current"] else None
        services.user_logout_all(user=request.user, keep_session_id=keep, request=request)
        return Response(status=status.HTTP_204_NO_CONTENT)


class SessionListView(APIView):
    """The caller's open sessions, newest first."""

    @extend_schema(summary="List my sessions", responses={200: SessionSerializer(many=True)})
    def get(self, request):
        sessions = tokens.session_list(user_id=request.user.pk)
        return Response(SessionSerializer(sessions, many=True, context={"request": request}).data)


class SessionDetailView(APIView):
    """End one of the caller's sessions (the current one too, like logout)."""

    @extend_schema(summary="End one of my sessions", responses={204: None, **errors(404)})
    def delete(self, request, session_id):
        services.user_session_revoke(user=request.user, session_id=uuid.UUID(session_id), request=request)
        return Response(status=status.HTTP_204_NO_CONTENT)


class PasswordChangeView(APIView):
    """Change the caller's password; every other session ends, this one keeps working."""

    @extend_schema(
        summary="Change my password",
        request=PasswordChangeSerializer,
        responses={204: OpenApiResponse(description="Changed; other sessions ended.")},
    )
    def post(self, request):
        serializer = PasswordChangeSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user = User.objects.get(pk=request.user.pk)
        services.password_change(
            user=user, keep_session_id=request.user.session_id, request=request, **serializer.validated_data
        )
        return Response(status=status.HTTP_204_NO_CONTENT)


class PasswordResetRequestView(APIView):
    """Ask for a password reset link; the same 202 whether or not the email has an account."""

    permission_classes = [AllowAny]
    authentication_classes = []

    @extend_schema(
        summary="Request a password reset link",
        description="Answers 202 with the same body, in comparable time, whether or not the email exists.",
        request=PasswordResetRequestSerializer,
        responses={
            202: DetailSerializer,
            **errors(400, e400="validation_error: details.email when it is not an email address"),
            **errors(429, e429="rate_limited (RATELIMIT_RESET_IP per IP, RATELIMIT_RESET_EMAIL per email)"),
        },
    )
    def post(self, request):
        serializer = PasswordResetRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        email = serializer.validated_data["email"]
        enforce_rate_limits(
            Limit("reset-ip", client_ip(request), settings.RATELIMIT_RESET_IP),
            Limit("reset-email", email, settings.RATELIMIT_RESET_EMAIL),
        )
        services.password_reset_request(email=email, request=request)
        return Response({"detail": RESET_REQUESTED}, status=status.HTTP_202_ACCEPTED)


class PasswordResetConfirmView(APIView):
    """Set a new password with the uid and token of a reset link; every session of the user ends."""

    permission_classes = [AllowAny]
    authentication_classes = []

    @extend_schema(
        summary="Set a new password from a reset link",
        description="The token is single-use and expires (PASSWORD_RESET_TIMEOUT); a bad one is 400 (details.token).",
        request=PasswordResetConfirmSerializer,
        responses={
            204: OpenApiResponse(description="Password set; every session ended."),
            **errors(
                400,
                e400="validation_error: details.token (bad, used or expired link) or details.new_password (too weak)",
            ),
        },
    )
    def post(self, request):
        serializer = PasswordResetConfirmSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        services.password_reset_confirm(**serializer.validated_data, request=request)
        return Response(status=status.HTTP_204_NO_CONTENT)


class EmailVerifyView(APIView):
    """Verify an email address with the uid and token of a verification link."""

    permission_classes = [AllowAny]
    authentication_classes = []

    @extend_schema(
        summary="Verify my email address",
        description="The token is single-use and expires; a bad, used or expired one is 400 (details.token).",
        request=EmailVerifySerializer,
        responses={
            204: OpenApiResponse(description="The email is verified."),
            **errors(400, e400="validation_error: details.token for a bad, used or expired link"),
        },
    )
    def post(self, request):
        serializer = EmailVerifySerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        services.email_verify_confirm(**serializer.validated_data, request=request)
        return Response(status=status.HTTP_204_NO_CONTENT)


class EmailVerifyResendView(APIView):
    """Mail the caller a new verification link (rate-limited per user)."""

    @extend_schema(
        summary="Resend my verification email",
        request=None,
        responses={
            202: DetailSerializer,
            **errors(401),
            **errors(429, e429="rate_limited (RATELIMIT_VERIFY_RESEND per user)"),
        },
    )
    def post(self, request):
        enforce_rate_limits(Limit("verify-resend", str(request.user.pk), settings.RATELIMIT_VERIFY_RESEND))
        services.email_verification_resend(user=User.objects.get(pk=request.user.pk), request=request)
        return Response({"detail": VERIFICATION_RESENT}, status=status.HTTP_202_ACCEPTED)


@extend_schema(
    summary="List a user's security events, newest first (self or staff)",
    parameters=[
        OpenApiParameter("ordering", str, enum=["-created_at", "created_at"], description="Default `-created_at`.")
    ],
    responses={
        200: SecurityEventSerializer(many=True),
        **errors(401),
        **errors(404, e404="not_found: another user's events, for a caller who is not staff"),
    },
)
class SecurityEventListView(mixins.ListModelMixin, generics.GenericAPIView):
    """A cursor page of one user's security events: the caller's own (``me``), or anyone's for staff."""

    serializer_class = SecurityEventSerializer
    queryset = SecurityEvent.objects.none()  # for the schema; get_queryset applies visibility
    ordering_fields = {"created_at": "datetime"}
    default_ordering = "-created_at"

    def get_queryset(self):
        user_id = self.kwargs.get("user_id") or self.request.user.pk
        return selectors.security_event_list(requested_by=self.request.user, user_id=uuid.UUID(str(user_id)))

    def get(self, request, *args, **kwargs):
        return self.list(request, *args, **kwargs)
