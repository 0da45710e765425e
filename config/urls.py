"""Root URLs: /api/v1/, the schema and its docs, the admin, and JSON error handlers."""

from django.conf import settings
from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from users.urls import auth_urlpatterns, users_urlpatterns

urlpatterns = [
    # Two namespaces side by side, not nested in a third include: one resolver level less on every request.
    path("api/v1/", include(users_urlpatterns)),
    path("api/v1/auth/", include(auth_urlpatterns)),
    path("admin/", admin.site.urls),
]
if settings.API_DOCS_PUBLIC:
    urlpatterns += [
        path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
        path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
        path(
            "api/redoc/",
            SpectacularRedocView.as_view(url_name="schema", template_name="core/redoc.html"),
            name="redoc",
        ),
    ]

handler400 = "core.views.json_400"
handler403 = "core.views.json_403"
handler404 = "core.views.json_404"
handler500 = "core.views.json_500"
