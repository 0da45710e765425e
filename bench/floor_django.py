"""Floor F1: a bare Django project in one module: one function view returning the fixed user.

No database, no middleware, no apps: what Django itself costs per request (URL resolving, the
request and response objects, the WSGI handler). Serve it like the service:
``gunicorn -c config/gunicorn.py bench.floor_django``.
"""

from django.conf import settings

settings.configure(
    DEBUG=False,
    SECRET_KEY="bench-floor-only-nothing-is-signed-here",
    ALLOWED_HOSTS=["127.0.0.1", "localhost", "testserver"],
    ROOT_URLCONF=__name__,
    MIDDLEWARE=[],
    INSTALLED_APPS=[],
    DATABASES={},
    USE_TZ=True,
)

from django.core.wsgi import get_wsgi_application  # noqa: E402  (needs the settings above)
from django.http import HttpResponse  # noqa: E402
from django.urls import path  # noqa: E402

from bench.floor_wsgi import BODY  # noqa: E402


def user_detail(request, user_id=None):
    return HttpResponse(BODY, content_type="application/json")


urlpatterns = [
    path("api/v1/users/me", user_detail),
    path("api/v1/users/<uuid:user_id>", user_detail),
]

application = get_wsgi_application()
