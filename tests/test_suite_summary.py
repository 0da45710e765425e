"""The hostile suites' summary line, as `make test` runs them: in pytest-xdist processes, from the tests directory.

The controller collects nothing, so it never loads tests/hostile/conftest.py; it must still count the tests
and print one line per suite with the requests every worker sent (tests/hostile/report.py).
"""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SELECTED = "test_staff_may_not_end_another_users_session or test_sessions_list_never_shows_another_users_sessions"
# From the tests directory, as `make test` gives it (so the controller loads only tests/conftest.py), with
# everything but the hostile suite's module of these two tests left out, to keep the run short.
HOSTILE = ROOT / "tests" / "hostile"


def _left_out(path: Path) -> bool:
    if path.parent == HOSTILE:
        return path.name.startswith("test_") and "owasp" not in path.name
    return path != HOSTILE and (path.is_dir() or path.name.startswith("test_"))


ARGS = [
    "tests",
    *(
        f"--ignore={path.relative_to(ROOT)}"
        for path in sorted([*(ROOT / "tests").iterdir(), *HOSTILE.iterdir()])
        if _left_out(path)
    ),
]


def test_under_xdist_each_hostile_suite_gets_one_line_with_every_worker_s_tests_and_requests(tmp_path):
    summary = tmp_path / "summary.txt"
    env = {key: value for key, value in os.environ.items() if key not in ("DATABASE_URL", "REDIS_URL")}
    env["E2E_SUMMARY_FILE"] = str(summary)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-n", "2", *ARGS, "-k", SELECTED, "-q"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    lines = summary.read_text().splitlines()
    assert len(lines) == 1, lines  # the controller's line only: no partial line from a worker
    assert lines[0].startswith("hostile owasp api top 10: ")
    assert ", 2 tests, 0 failures, 0 5xx" in lines[0]
    assert int(lines[0].split(": ", 1)[1].split(" requests sent")[0]) >= 2
