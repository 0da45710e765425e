"""Routes of the users API (``users:``) and the auth API (``auth:``), included by config/urls.py under /api/v1/.

The trailing slash is optional everywhere.
"""

from django.urls import URLPattern, re_path
from rest_framework.routers import SimpleRouter

from users import views
from users.hot_path import cached_read
from users.models import UUID_RE

router = SimpleRouter()
# Both /users and /users/ answer, with no redirect (a redirected POST loses its body).
router.trailing_slash = "/?"
router.register("users", views.UserViewSet, basename="user")
# The two cached reads get the plain-view fast path for GET (users.hot_path); same routes, names and schema.
HOT_ROUTES = frozenset({"user-me", "user-detail"})
user_routes = [
    URLPattern(route.pattern, cached_read(route.callback), route.default_args, route.name)
    if route.name in HOT_ROUTES
    else route
    for route in router.urls
]

users_urlpatterns = (
    [
        *user_routes,  # first: the hot reads are matched before anything else
        re_path(r"^users/me/events/?$", views.SecurityEventListView.as_view(), name="user-me-events"),
        re_path(
            rf"^users/(?P<user_id>{UUID_RE})/events/?$", views.SecurityEventListView.as_view(), name="user-events"
        ),
    ],
    "users",
)

auth_urlpatterns = (
    [
        re_path(r"^token/?$", views.TokenObtainView.as_view(), name="token-obtain"),
        re_path(r"^token/refresh/?$", views.TokenRefreshView.as_view(), name="token-refresh"),
        re_path(r"^logout/?$", views.LogoutView.as_view(), name="logout"),
        re_path(r"^logout-all/?$", views.LogoutAllView.as_view(), name="logout-all"),
        re_path(r"^sessions/?$", views.SessionListView.as_view(), name="session-list"),
        re_path(rf"^sessions/(?P<session_id>{UUID_RE})/?$", views.SessionDetailView.as_view(), name="session-detail"),
        re_path(r"^password/change/?$", views.PasswordChangeView.as_view(), name="password-change"),
        re_path(r"^password/reset/?$", views.PasswordResetRequestView.as_view(), name="password-reset"),
        re_path(
            r"^password/reset/confirm/?$", views.PasswordResetConfirmView.as_view(), name="password-reset-confirm"
        ),
        re_path(r"^email/verify/?$", views.EmailVerifyView.as_view(), name="email-verify"),
        re_path(r"^email/verify/resend/?$", views.EmailVerifyResendView.as_view(), name="email-verify-resend"),
    ],
    "auth",
)
