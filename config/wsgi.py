"""WSGI entry point: ``gunicorn config.wsgi`` serves correctly with or without config/gunicorn.py."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

application = get_wsgi_application()

from core import db, wire_errors  # noqa: E402  (after the settings are set up)

db.mark_web_process()  # its database sessions bound statements and lock waits (core/db.py)
wire_errors.install()  # under gunicorn: its HTTP parser's refusals answered in the envelope too
