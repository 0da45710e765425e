"""Bounds on the PostgreSQL sessions of web processes: no statement and no lock wait outlasts a request.

A query stuck behind a row locked elsewhere (a long admin transaction, a shell left open) would otherwise hold
its worker until gunicorn kills it at its timeout, and the client would get a reset connection. Each new
connection of a web process (``config/wsgi.py`` marks it, with or without the gunicorn config) sets
``statement_timeout`` and ``lock_timeout`` for its session; PostgreSQL then cancels the statement, Django raises
OperationalError, and the envelope answers 503 ``service_unavailable``. Management commands (migrations on a big
table, ``seed_users``) and the mail worker are not web processes and run unbounded.

Behind PgBouncer in transaction pooling (DATABASE_TRANSACTION_POOLING) a session setting would outlive the
transaction on a server connection other clients share, so nothing is set; bound statements in PgBouncer's
own ``query_timeout`` or in the database role's defaults instead.
"""

from django.conf import settings
from django.db.backends.signals import connection_created
from django.dispatch import receiver

__all__ = ["mark_web_process"]

_web_process = False


def mark_web_process() -> None:
    """Bound the database sessions this process opens from now on (called once by config/wsgi.py)."""
    global _web_process
    _web_process = True


@receiver(connection_created, dispatch_uid="core.db.bound_web_sessions")
def bound_web_sessions(sender, connection, **kwargs):
    if not _web_process or connection.vendor != "postgresql" or settings.DATABASE_TRANSACTION_POOLING:
        return
    bounds = {"statement_timeout": settings.DATABASE_STATEMENT_TIMEOUT, "lock_timeout": settings.DATABASE_LOCK_TIMEOUT}
    with connection.cursor() as cursor:
        # Milliseconds; 0 leaves that bound off. One round trip per connection, and connections persist.
        cursor.execute(
            "SELECT set_config('statement_timeout', %s, false), set_config('lock_timeout', %s, false)",
            [str(int(seconds * 1000)) for seconds in bounds.values()],
        )
