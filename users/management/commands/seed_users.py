"""Insert N realistic users fast, for benchmarks and for trying the staff list at scale.

PostgreSQL: one ``COPY ... FROM STDIN`` through psycopg 3, written in batches, then ``ANALYZE``
(a million rows in well under two minutes on two cores). Other back ends: ``bulk_create``.
Every row shares one password hash, computed once (Argon2 costs tens of ms a call). Emails carry a
run prefix, so a second run adds rows instead of colliding with the first.

Rows are written without the ORM's ``save``: no signals fire, which is right for rows that are
new (there is nothing cached about them to invalidate). The ``--staff-email`` account is saved
through the ORM, so its cache entries are refreshed like any other write.
"""

import random
import time
import uuid
from datetime import date, datetime, timedelta
from decimal import Decimal

import orjson
from django.contrib.auth.hashers import make_password
from django.core.management.base import BaseCommand, CommandError
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from users.managers import normalize_email
from users.models import User

FIRST_NAMES = (
    "Aaliyah Aarav Abigail Adam Adrian Aisha Alejandro Alexander Alice Amara Amelia Ana Andrea Andrew Ann Anna "
    "Annabelle Anne Annika Anton Aria Arjun Astrid Ava Benjamin Bianca Carlos Caroline Charlotte Chen Chloe "
    "Daniel David Diana Diego Dmitri Elena Elias Elif Eliza Emily Emma Ethan Eva Fatima Felix Freya Gabriel "
    "Grace Hannah Hana Harper Hiroshi Ibrahim Ines Isabella Ivan Jack Jakob James Jana Joanna Johan John "
    "Jonas Jose Joshua Julia Kai Karim Kenji Laila Lars Leah Leon Liam Lina Lucas Lucia Luka Maria Mariana "
    "Mateo Maya Mei Mia Mikhail Mohammed Nadia Noah Nora Oliver Olivia Omar Pablo Priya Rafael Rosa Ryan Sara "
    "Sebastian Sofia Susanne Tariq Theo Valentina Wei Yara Yusuf Zara Zoe"
).split()
LAST_NAMES = (
    "Abbott Adams Ahmed Alvarez Andersen Anderson Bailey Baker Bennett Brown Campbell Carter Chen Clarke "
    "Cohen Collins Cooper Costa Cruz Davies Dubois Edwards Evans Fernandez Fischer Fleming Garcia Gonzalez "
    "Gray Hall Hannan Hansen Harris Hernandez Hill Hoffmann Hughes Ivanova Jackson Jensen Johansson Johnson "
    "Jones Kaur Kelly Khan Kim Klein Kowalski Larsen Lee Lewis Li Lopez Martin Martinez Meyer Miller Moore "
    "Morgan Murphy Nakamura Nguyen Novak O'Brien Okafor Olsen Patel Perez Petrov Phillips Rossi Russo Santos "
    "Schmidt Schneider Shannon Silva Singh Smith Sousa Suzuki Tanaka Taylor Thomas Thompson Turner Walker "
    "Wang Weber Williams Wilson Wright Yamamoto Young Zhang"
).split()
DOMAINS = (
    "example.com example.org example.net mail.example.com corp.example.org example.co.uk example.de example.fr "
    "uni.example.edu example.io"
).split()
EMAIL_SHAPES = ("{f}.{l}", "{f}{l}", "{f}_{l}", "{fi}{l}", "{f}{li}", "{l}.{f}")

HISTORY_DAYS = 5 * 365
NEVER_LOGGED_IN = 0.2
INACTIVE = 0.03
UNVERIFIED = 0.15
STAFF = 0.001
GENERATED = frozenset(
    ("id", "email", "first_name", "last_name", "password", "is_active", "is_staff", "is_superuser")
    + ("email_verified", "date_joined", "last_login")
)
COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def run_prefix() -> str:
    """Return a short tag unique to this run (base 36 of the current time in ms): emails never collide."""
    value, digits = int(time.time() * 1000), "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while value:
        value, rest = divmod(value, 36)
        out = digits[rest] + out
    return out


class UserRows:
    """Generate the column values of N users, reproducibly for a given seed."""

    def __init__(self, *, prefix: str, password_hash: str, seed: int, now: datetime):
        self.prefix = prefix
        self.password_hash = password_hash
        self.rng = random.Random(seed)  # noqa: S311  (fake data, not secrets)
        self.now = now

    def __call__(self, index: int) -> dict:
        rng = self.rng
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        local = rng.choice(EMAIL_SHAPES).format(f=first, l=last, fi=first[0], li=last[0]).replace("'", "")
        joined = self.now - timedelta(seconds=rng.random() * HISTORY_DAYS * 86400)
        if rng.random() < NEVER_LOGGED_IN:
            last_login = None
        else:
            last_login = joined + (self.now - joined) * rng.random()
        return {
            "id": uuid.UUID(int=rng.getrandbits(128), version=4),
            "email": f"{local}.{self.prefix}{index}@{rng.choice(DOMAINS)}".lower(),
            "first_name": first,
            "last_name": last,
            "password": self.password_hash,
            "is_active": rng.random() >= INACTIVE,
            "is_staff": rng.random() < STAFF,
            "is_superuser": False,
            "email_verified": rng.random() >= UNVERIFIED,
            "date_joined": joined,
            "last_login": last_login,
        }


def copy_text(value) -> str:
    """Return ``value`` in PostgreSQL's COPY text format."""
    if value is None:
        return "\\N"
    if value is True or value is False:
        return "t" if value else "f"
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, int | float | Decimal | uuid.UUID):
        return str(value)
    if isinstance(value, str):
        return value.translate(COPY_ESCAPES)
    if isinstance(value, dict | list):
        return orjson.dumps(value).decode().translate(COPY_ESCAPES)
    raise TypeError(f"no COPY text form for {type(value).__name__}")


class Command(BaseCommand):
    help = "Insert N fake users fast (COPY on PostgreSQL, bulk_create elsewhere), sharing one password hash."

    def add_arguments(self, parser):
        parser.add_argument("count", type=int, help="How many users to insert.")
        parser.add_argument("--batch", type=int, default=10_000, help="Rows per COPY write or bulk_create batch.")
        parser.add_argument("--prefix", default="", help="Email tag of this run (default: derived from the time).")
        parser.add_argument("--seed", type=int, default=None, help="Random seed, for reproducible rows.")
        parser.add_argument(
            "--password",
            default=None,
            help="Password of every seeded row and of --staff-email (default: unusable, nobody can log in).",
        )
        parser.add_argument("--staff-email", default=None, help="Also create (or update) this staff account.")

    def handle(self, *args, count, batch, prefix, seed, password, staff_email, **options):
        self.verbosity = options["verbosity"]
        if count < 0 or batch < 1:
            raise CommandError("count must be >= 0 and --batch >= 1")
        if staff_email and not password:
            raise CommandError("--staff-email needs --password")
        started = time.perf_counter()
        password_hash = make_password(password)  # None gives an unusable password
        prefix = (prefix or run_prefix()).lower()
        rows = UserRows(
            prefix=prefix,
            password_hash=password_hash,
            seed=seed if seed is not None else random.SystemRandom().getrandbits(64),
            now=timezone.now(),
        )
        try:
            if connection.vendor == "postgresql":
                self._copy(rows, count, batch)
            else:
                self._bulk_create(rows, count, batch)
        except IntegrityError as exc:
            raise CommandError(f"rows collide with existing ones (reuse of --prefix {prefix!r}?): {exc}") from None
        if staff_email:
            self._staff(staff_email, password_hash)
        elapsed = time.perf_counter() - started
        self.stdout.write(f"Seeded {count} users in {elapsed:.1f}s (email tag {prefix!r}).")

    def _copy(self, rows: UserRows, count: int, batch: int) -> None:
        fields = User._meta.concrete_fields
        # Columns this command does not generate (added by later migrations) get their model default.
        fixed = {f.attname: copy_text(f.get_default()) for f in fields if f.attname not in GENERATED}
        names = ", ".join(connection.ops.quote_name(f.column) for f in fields)
        table = connection.ops.quote_name(User._meta.db_table)
        order = [f.attname for f in fields]
        started = time.perf_counter()
        # psycopg's own copy() bypasses Django's error wrapping: put it back, so a collision is an IntegrityError.
        with transaction.atomic(), connection.wrap_database_errors, connection.cursor() as cursor:
            grows = User.objects.all()[:count].count() < count  # more new rows than old ones
            rebuild = self._drop_secondary_indexes(cursor, table) if grows else []
            with cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
                for start in range(0, count, batch):
                    lines = []
                    for index in range(start, min(start + batch, count)):
                        row = rows(index)
                        lines.append(
                            "\t".join(fixed[name] if name in fixed else copy_text(row[name]) for name in order)
                        )
                    copy.write("\n".join(lines) + "\n")
                    self._progress(start + len(lines), count)
            if rebuild:
                self._progress_note(f"rows in {time.perf_counter() - started:.1f}s; rebuilding {len(rebuild)} indexes")
                cursor.execute("SET LOCAL maintenance_work_mem = '256MB'")
                for statement in rebuild:
                    cursor.execute(statement)
            # Fresh statistics, or the planner sizes a million-row table from its empty state.
            cursor.execute(f"ANALYZE {table}")

    def _drop_secondary_indexes(self, cursor, table: str) -> list[str]:
        """Drop the table's indexes but its primary key; return the statements that rebuild them.

        Building an index once over all rows is several times faster than growing it row by row
        (PostgreSQL's "Populating a Database" advice), so this pays when the table gains more rows
        than it has. The table stays locked until the transaction commits; the unique indexes are
        rebuilt before it does, so a duplicate still fails the whole run.
        """
        cursor.execute(
            """
            SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid), c.conname, pg_get_constraintdef(c.oid)
            FROM pg_index i
            LEFT JOIN pg_constraint c ON c.conindid = i.indexrelid AND c.conrelid = i.indrelid AND c.contype = 'u'
            WHERE i.indrelid = %s::regclass AND NOT i.indisprimary
            """,
            [table],
        )
        rebuild = []
        for index, index_def, constraint, constraint_def in cursor.fetchall():
            if constraint:
                name = connection.ops.quote_name(constraint)
                cursor.execute(f"ALTER TABLE {table} DROP CONSTRAINT {name}")
                rebuild.append(f"ALTER TABLE {table} ADD CONSTRAINT {name} {constraint_def}")
            else:
                cursor.execute(f"DROP INDEX {index}")
                rebuild.append(index_def)
        return rebuild

    def _bulk_create(self, rows: UserRows, count: int, batch: int) -> None:
        with transaction.atomic():
            for start in range(0, count, batch):
                users = [User(**rows(index)) for index in range(start, min(start + batch, count))]
                User.objects.bulk_create(users, batch_size=batch)
                self._progress(start + len(users), count)

    def _staff(self, email: str, password_hash: str) -> None:
        email = normalize_email(email)
        user = User.objects.filter(email=email).first() or User(
            email=email, first_name="Bench", last_name="Staff", date_joined=timezone.now()
        )
        user.is_staff = True
        user.is_active = True
        user.email_verified = True
        user.password = password_hash
        user.full_clean(exclude=["password"], validate_unique=False)
        user.save()  # through the ORM: its cached state, if any, is refreshed
        self.stdout.write(f"Staff account {email} is ready.")

    def _progress(self, done: int, count: int) -> None:
        self._progress_note(f"{done}/{count}")

    def _progress_note(self, note: str) -> None:
        if self.verbosity >= 2:
            self.stdout.write(f"  {note}")
