"""Test-only URLconf: the service's routes plus views that raise on demand (500, 503 and handler tests)."""

from django.http import JsonResponse
from django.urls import path
from django_ratelimit.decorators import ratelimit
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from config.urls import handler400, handler403, handler404, handler500
from config.urls import urlpatterns as service_urlpatterns
from users.models import User

__all__ = ["handler400", "handler403", "handler404", "handler500", "urlpatterns"]


class RaiseView(APIView):
    """A DRF view that raises ``exception`` (set by the test) before answering."""

    permission_classes = [AllowAny]
    exception: BaseException | None = None

    def get(self, request):
        if self.exception is not None:
            raise self.exception
        return Response({"ok": True})


def plain_raise(request):
    """A plain Django view (no DRF) that fails unexpectedly."""
    raise RuntimeError("plain view failed: password=hunter2 at db-host-7")


def plain_count(request):
    """A plain Django view that needs the database."""
    return JsonResponse({"users": User.objects.count()})


@ratelimit(key="ip", rate="1/m", block=True)
def plain_limited(request):
    """A plain Django view behind django-ratelimit's decorator (as an admin login limit would be)."""
    return JsonResponse({"ok": True})


class DrfCountView(APIView):
    """A DRF view that needs the database."""

    permission_classes = [AllowAny]

    def get(self, request):
        return Response({"users": User.objects.count()})


urlpatterns = [
    path("test/raise", RaiseView.as_view()),
    path("test/plain-raise", plain_raise),
    path("test/plain-count", plain_count),
    path("test/drf-count", DrfCountView.as_view()),
    path("test/plain-limited", plain_limited),
    *service_urlpatterns,
]
