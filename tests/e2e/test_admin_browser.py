"""The admin in a real browser: Playwright drives Debian's Chromium (no browser download) against a gunicorn.

A staff member logs in, searches for a user and deactivates them with the action, and the API then refuses that
user's token; a non-staff user cannot get in; the admin login is rate-limited per username and per IP. Each step
leaves a screenshot in the folder printed in the summary (``E2E_SCREENSHOT_DIR``, by default under ``var/``).

Chromium missing: skipped on a developer's machine, a failure in CI (``CI`` set).
"""

import os
import shutil
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from django_ratelimit.core import _get_window

from core.exceptions import RATE_LIMITED, TOKEN_NOT_VALID
from tests.e2e import server as e2e
from tests.e2e.server import PASSWORD, Client, unique

pytestmark = [pytest.mark.slow, e2e.needs_stack]

SUITE = "admin-browser"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]


def chromium_path() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("Chromium is not installed (Debian's package `chromium`), and CI needs this test")
        pytest.skip("Chromium is not installed (Debian's package `chromium`)")
    return path


@pytest.fixture(scope="module")
def screenshots() -> Path:
    folder = os.environ.get("E2E_SCREENSHOT_DIR") or str(
        e2e.VAR / "screenshots" / f"admin-{datetime.now(UTC):%Y%m%dT%H%M%S}-{os.getpid()}"
    )
    path = Path(folder)
    path.mkdir(parents=True, exist_ok=True)
    e2e.tally(SUITE).notes.append(f"screenshots in {path}")
    return path


@pytest.fixture(scope="module")
def browser():
    executable = chromium_path()
    if os.environ.get("CI"):
        from playwright.sync_api import sync_playwright
    else:
        sync_playwright = pytest.importorskip("playwright.sync_api").sync_playwright
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS, timeout=30_000)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(scope="module")
def admin_server(stack_env):
    # Behind one trusted proxy, so each browser context can be a client IP of its own (X-Forwarded-For).
    # The admin login limits keep their defaults: 10/min per IP, 5/min per username.
    server = e2e.Gunicorn("admin-browser", {**stack_env, "TRUSTED_PROXY_COUNT": "1"}, workers=2).start()
    yield server
    server.stop()


def count_response(response) -> None:
    counts = e2e.tally(SUITE)
    with counts.lock:
        counts.sent += 1
        counts.answered += 1
        counts.server_errors += response.status >= 500


def count_failure(request) -> None:
    if request.failure == "net::ERR_ABORTED":
        return  # the page moved on (a navigation replaced it): the browser dropped it, not the server
    counts = e2e.tally(SUITE)
    counts.notes.append(f"no answer: {request.method} {request.url} ({request.failure})")
    with counts.lock:
        counts.sent += 1
        counts.no_answer += 1


@pytest.fixture
def page_for(browser, admin_server):
    """Return page(ip) -> a new page of a fresh browser context, seen by the service as client ``ip``."""
    contexts = []

    def make(ip: str):
        context = browser.new_context(base_url=admin_server.base, extra_http_headers={"X-Forwarded-For": ip})
        context.set_default_timeout(20_000)
        context.on("response", count_response)
        context.on("requestfailed", count_failure)
        contexts.append(context)
        return context.new_page()

    yield make
    for context in contexts:
        context.close()


def admin_login(page, email: str, password: str):
    """Fill the admin login form and submit it; return the answer to the POST."""
    page.goto("/admin/login/?next=/admin/")
    page.fill("#id_username", email)
    page.fill("#id_password", password)
    with page.expect_response(lambda r: "/admin/login/" in r.url and r.request.method == "POST") as posted:
        page.click("input[type=submit]")
    page.wait_for_load_state()
    return posted.value


def test_staff_deactivates_a_user_in_the_admin_and_the_api_refuses_their_token(
    admin_server, stack_env, page_for, screenshots
):
    api = Client(admin_server, SUITE)
    staff_email, member = unique("browser-staff"), unique("browser-member")
    e2e.create_staff(stack_env, staff_email)
    assert api.register(member, first_name="Deactivate", last_name="Me").status == 201
    tokens = api.login(member)
    assert api("GET", "/api/v1/users/me", token=tokens["access"]).status == 200
    page = page_for("10.20.0.1")

    admin_login(page, staff_email, PASSWORD)
    assert page.url.endswith("/admin/"), page.url
    assert page.locator("#site-name").is_visible()
    page.screenshot(path=screenshots / "01-staff-logged-in.png", full_page=True)

    page.click("a[href='/admin/users/user/']")
    page.fill("#searchbar", member)
    page.press("#searchbar", "Enter")
    page.wait_for_load_state()
    rows = page.locator("#result_list tbody tr")
    assert rows.count() == 1 and member in rows.first.inner_text()
    page.screenshot(path=screenshots / "02-user-found.png", full_page=True)

    rows.first.locator("input.action-select").check()
    page.select_option("select[name=action]", "deactivate_users")
    page.click("button[name=index]")
    page.wait_for_load_state()
    assert "Deactivated 1 user(s)." in page.locator(".messagelist").inner_text()
    page.screenshot(path=screenshots / "03-user-deactivated.png", full_page=True)

    refused = api("GET", "/api/v1/users/me", token=tokens["access"])
    assert refused.status == 401 and refused.code == TOKEN_NOT_VALID, refused.body
    assert api("POST", "/api/v1/auth/token/refresh", body={"refresh": tokens["refresh"]}).status == 401
    rows = e2e.sql(stack_env["DATABASE_URL"], "SELECT is_active FROM users_user WHERE email = %s", (member,))
    assert rows == [(False,)]


def test_a_user_who_is_not_staff_cannot_get_into_the_admin(admin_server, page_for, screenshots):
    member = unique("browser-nonstaff")
    assert Client(admin_server, SUITE).register(member).status == 201
    page = page_for("10.20.0.2")

    answer = admin_login(page, member, PASSWORD)
    assert answer.status == 200 and "/admin/login/" in page.url
    assert "staff account" in page.locator(".errornote").inner_text()
    page.screenshot(path=screenshots / "04-non-staff-refused.png", full_page=True)
    page.goto("/admin/users/user/")
    assert "/admin/login/" in page.url  # still sent to the login form


def first_refusal(page, usernames: list[str]) -> tuple[int, object]:
    """Submit a wrong password for each username in turn; return the index and answer of the first 429."""
    for index, username in enumerate(usernames):
        answer = admin_login(page, username, "wrong-password-x1")
        if answer.status == 429:
            return index, answer
        assert answer.status == 200 and page.locator(".errornote").is_visible()
    raise AssertionError(f"no 429 after {len(usernames)} admin logins")


def _username_with_window_left(label: str, *, seconds: int) -> str:
    """A fresh username whose per-minute limit window (staggered per value by django-ratelimit) has at least
    ``seconds`` to run: its refusal and the check from another IP then fall in the same window."""
    while True:
        username = unique(label)
        if _get_window(username, 60) - time.time() >= seconds:
            return username


def test_the_admin_login_is_rate_limited_per_username_and_per_ip(admin_server, page_for, screenshots):
    # Per username (5/min), whatever the IP: the 6th attempt is refused (the 11th at worst, across a window turn).
    started = time.monotonic()
    target = _username_with_window_left("browser-brute", seconds=30)
    page = page_for("10.20.0.3")
    index, answer = first_refusal(page, [target] * 11)
    assert index == 5 or (index <= 10 and time.monotonic() - started < 60), index
    body = answer.json()
    assert body["code"] == RATE_LIMITED and int(answer.headers["retry-after"]) >= 1
    page.screenshot(path=screenshots / "05-username-rate-limited.png", full_page=True)
    elsewhere = page_for("10.20.0.4")
    assert admin_login(elsewhere, target, "wrong-password-x1").status == 429

    # Per IP (10/min): one client trying a different username each time is refused at the 11th.
    started = time.monotonic()
    page = page_for("10.20.0.5")
    index, answer = first_refusal(page, [unique(f"browser-spray{i}") for i in range(21)])
    assert index == 10 or (index <= 20 and time.monotonic() - started < 60), index
    assert answer.json()["code"] == RATE_LIMITED
    page.screenshot(path=screenshots / "06-ip-rate-limited.png", full_page=True)
