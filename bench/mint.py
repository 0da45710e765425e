"""Open sessions for many seeded users at once and print their access tokens (run in the service's environment).

``python bench/mint.py --staff-email E --users N`` writes JSON to stdout:
``{"staff": [token, id, email], "users": [[token, id, email], ...]}``.

The cold-cache benchmark needs thousands of distinct sessions; logging each one in through the API
would cost an Argon2 hash apiece. So the Session rows are bulk-inserted with the fields
``users.tokens.session_issue`` gives them, and their access tokens are built by the same function
it uses. Nothing is written to the cache: the sessions start cold, as after a flush.
"""

import argparse
import os
import sys
from datetime import timedelta
from pathlib import Path

import django
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django.setup()

from django.conf import settings  # noqa: E402
from django.db import transaction  # noqa: E402
from django.utils import timezone  # noqa: E402

from users import tokens  # noqa: E402
from users.models import Session, User  # noqa: E402


def mint(users: list[User]) -> list[list[str]]:
    issued = timezone.now().replace(microsecond=0)
    sessions = [
        Session(
            user=user,
            user_agent="bench",
            created_at=issued,
            last_used_at=issued,
            refresh_issued_at=issued,
            expires_at=issued + timedelta(seconds=settings.JWT_REFRESH_TTL),
            refresh_hash="-",  # never refreshed: no refresh token exists for these sessions
        )
        for user in users
    ]
    with transaction.atomic():
        Session.objects.bulk_create(sessions, batch_size=5000)
    return [[tokens._access_token(session), str(session.user_id), session.user.email] for session in sessions]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--staff-email", required=True)
    parser.add_argument("--users", type=int, default=0, help="How many distinct regular users to open sessions for.")
    args = parser.parse_args()
    staff = User.objects.get(email=args.staff_email)
    regular = list(
        User.objects.filter(is_active=True, is_staff=False).only("id", "email").order_by("pk")[: args.users]
    )
    if len(regular) < args.users:
        raise SystemExit(f"only {len(regular)} active regular users, {args.users} needed: seed more")
    minted = mint([staff, *regular])
    sys.stdout.buffer.write(orjson.dumps({"staff": minted[0], "users": minted[1:]}))


if __name__ == "__main__":
    main()
