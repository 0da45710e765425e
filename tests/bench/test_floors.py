"""The floors answer the service's user body, byte for byte, so the benchmark compares like with like."""

import os
import subprocess
import sys
import time
import urllib.request
from datetime import datetime
from pathlib import Path
from wsgiref.util import setup_testing_defaults

import orjson
import pytest

from bench import floor_wsgi
from tests.ops.server import free_port
from users.models import User

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]

FLOOR_DJANGO = """
import sys
from wsgiref.util import setup_testing_defaults
import orjson
from bench.floor_django import application
out = []
for path in sys.argv[1:]:
    environ = {"PATH_INFO": path, "HTTP_HOST": "127.0.0.1"}
    setup_testing_defaults(environ)
    seen = {}
    body = b"".join(application(environ, lambda status, headers: seen.update(status=status, headers=dict(headers))))
    out.append({"status": seen["status"], "type": seen["headers"]["Content-Type"], "body": body.decode()})
sys.stdout.write(orjson.dumps(out).decode())
"""


def call_wsgi(application, path: str) -> tuple[str, dict, bytes]:
    environ = {"PATH_INFO": path}
    setup_testing_defaults(environ)
    seen = {}
    body = b"".join(application(environ, lambda status, headers: seen.update(status=status, headers=dict(headers))))
    return seen["status"], seen["headers"], body


def test_raw_wsgi_floor_returns_the_fixed_user():
    status, headers, body = call_wsgi(floor_wsgi.application, "/api/v1/users/me")

    assert status == "200 OK"
    assert headers["Content-Type"] == "application/json"
    assert int(headers["Content-Length"]) == len(body)
    assert body == floor_wsgi.BODY


def test_bare_django_floor_returns_the_fixed_user():
    # Its own interpreter: the floor configures Django's settings itself, which this process already has.
    paths = ["/api/v1/users/me", f"/api/v1/users/{floor_wsgi.USER['id']}"]
    result = subprocess.run(
        [sys.executable, "-c", FLOOR_DJANGO, *paths], cwd=ROOT, capture_output=True, check=True, timeout=60
    )

    for answer in orjson.loads(result.stdout):
        assert answer["status"] == "200 OK"
        assert answer["type"] == "application/json"
        assert answer["body"].encode() == floor_wsgi.BODY


def test_service_renders_the_floor_user_to_the_same_bytes(staff_user, auth_client):
    fixed = floor_wsgi.USER
    User.objects.create(
        id=fixed["id"],
        email=fixed["email"],
        first_name=fixed["first_name"],
        last_name=fixed["last_name"],
        is_active=fixed["is_active"],
        is_staff=fixed["is_staff"],
        email_verified=fixed["email_verified"],
        date_joined=datetime.fromisoformat(fixed["date_joined"]),
        last_login=datetime.fromisoformat(fixed["last_login"]),
    )

    response = auth_client(staff_user).get(f"/api/v1/users/{fixed['id']}")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response.content == floor_wsgi.BODY


@pytest.mark.slow
@pytest.mark.parametrize("app", ["bench.floor_wsgi:application", "bench.floor_django:application"])
def test_each_floor_boots_and_answers_under_the_service_s_gunicorn_settings(app, tmp_path):
    # The benchmark serves the floors with config/gunicorn.py: its hooks must not assume the service's Django.
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "GUNICORN", "PROM"))}
    env.update(GUNICORN_BIND=f"127.0.0.1:{port}", WEB_CONCURRENCY="1", PROMETHEUS_MULTIPROC_DIR=str(tmp_path))
    command = [sys.executable, "-m", "gunicorn", "-c", "config/gunicorn.py", app]
    with open(tmp_path / "gunicorn.err", "wb") as err:
        server = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=err)
    try:
        deadline, answer = time.monotonic() + 20, None
        while answer is None and time.monotonic() < deadline and server.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/users/me", timeout=2) as response:  # noqa: S310
                    answer = response.status, response.read()
            except OSError:
                time.sleep(0.1)
        assert answer == (200, floor_wsgi.BODY), (tmp_path / "gunicorn.err").read_text()[-3000:]
    finally:
        server.terminate()
        server.wait(timeout=15)
