"""Test-only URLconf: the service's routes plus a plain view that fails, for the error line of the access log."""

from django.urls import path

from config.urls import handler400, handler403, handler404, handler500
from config.urls import urlpatterns as service_urlpatterns

__all__ = ["handler400", "handler403", "handler404", "handler500", "urlpatterns"]


def failing_view(request, item_id):
    """A plain Django view that fails unexpectedly."""
    raise ZeroDivisionError(f"item {item_id} failed")


urlpatterns = [path("ops-test/items/<int:item_id>/fail", failing_view), *service_urlpatterns]
