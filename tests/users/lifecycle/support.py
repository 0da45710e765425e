"""Helpers of the lifecycle tests: read account mail from the test outbox and follow its links; look up events."""

import re
from urllib.parse import parse_qs, urlsplit

from django.conf import settings
from django.core import mail

from users.models import SecurityEvent

LINK_RE = re.compile(r"https?://[^\s\"'<>]+")


def messages_to(address: str, subject_contains: str = "") -> list:
    return [m for m in mail.outbox if address in m.to and subject_contains.lower() in m.subject.lower()]


def link_in(message, path: str) -> dict:
    """Return the uid and token of the ``{FRONTEND_URL}/{path}`` link, checking both parts carry the same one."""
    html = next(body for body, mimetype in message.alternatives if mimetype == "text/html")
    plain_links = [u for u in LINK_RE.findall(message.body) if urlsplit(u).path == f"/{path}"]
    html_links = [u.replace("&amp;", "&") for u in LINK_RE.findall(html) if urlsplit(u).path == f"/{path}"]
    assert plain_links, message.body
    assert set(html_links) == set(plain_links[:1]), (html_links, plain_links)
    url = plain_links[0]
    assert url.startswith(f"{settings.FRONTEND_URL}/{path}?")
    query = parse_qs(urlsplit(url).query)
    return {"uid": query["uid"][0], "token": query["token"][0]}


def events(user_id=None, type=None) -> list[SecurityEvent]:
    """Return the recorded security events, oldest first, of ``user_id`` and ``type`` when given."""
    queryset = SecurityEvent.objects.all()
    if user_id is not None:
        queryset = queryset.filter(user_id=user_id)
    if type is not None:
        queryset = queryset.filter(type=type)
    return list(queryset.order_by("created_at"))
