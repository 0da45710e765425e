"""PostgreSQL sessions: bounded in web processes, and dropped once they find their server read-only.

No statement and no lock wait of a web process outlasts a request.

A query stuck behind a row locked elsewhere (a long admin transaction, a shell left open) would otherwise hold
its worker until gunicorn kills it at its timeout, and the client would get a reset connection. Each new
connection of a web process (``config/wsgi.py`` marks it, with or without the gunicorn config) sets
``statement_timeout`` and ``lock_timeout`` for its session; PostgreSQL then cancels the statement, Django raises
OperationalError, and the envelope answers 503 ``service_unavailable``. Management commands (migrations on a big
table, ``seed_users``) and the mail worker are not web processes and run unbounded.

Behind PgBouncer in transaction pooling (DATABASE_TRANSACTION_POOLING) a session setting would outlive the
transaction on a server connection other clients share, so nothing is set; bound statements in PgBouncer's
own ``query_timeout`` or in the database role's defaults instead.

A connection whose statement is refused because its server is read-only (a primary demoted to a standby by a
failover, while the name in DATABASE_URL already leads to the new primary) is closed at the end of that request,
where Django closes old connections. Kept, it would go on refusing every write until it reached
DATABASE_CONN_MAX_AGE (600 s); the next request connects afresh instead. With ``?target_session_attrs=read-write``
in DATABASE_URL, libpq also refuses to connect to a server that is still read-only.
"""

import time

from django.conf import settings
from django.db import DatabaseError
from django.db.backends.signals import connection_created
from django.dispatch import receiver

__all__ = ["READ_ONLY_SQLSTATES", "drop_when_read_only", "mark_web_process", "read_only_refusal"]

# A statement refused because the server, or its transaction, is read-only: a standby after a failover.
READ_ONLY_SQLSTATES = frozenset({"25006"})  # read_only_sql_transaction

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


def read_only_refusal(exc: BaseException) -> bool:
    """Whether ``exc`` (Django's wrapper of a driver error) is PostgreSQL refusing a write on a read-only server."""
    return isinstance(exc, DatabaseError) and getattr(exc.__cause__, "sqlstate", None) in READ_ONLY_SQLSTATES


def drop_when_read_only(execute, sql, params, many, context):
    """An execute wrapper: a connection refused a write as read-only closes where Django next closes old ones."""
    try:
        return execute(sql, params, many, context)
    except DatabaseError as exc:
        if read_only_refusal(exc):
            context["connection"].close_at = time.monotonic()  # obsolete now: close_if_unusable_or_obsolete()
        raise


@receiver(connection_created, dispatch_uid="core.db.watch_read_only")
def watch_read_only(sender, connection, **kwargs):
    # The wrapper list belongs to Django's per-thread connection object, which outlives each database session.
    # First in the list: connection.execute_wrapper() blocks pop the last one when they end.
    if connection.vendor == "postgresql" and drop_when_read_only not in connection.execute_wrappers:
        connection.execute_wrappers.insert(0, drop_when_read_only)
