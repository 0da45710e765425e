"""Run Django code in a fresh process, with settings read from a given environment."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def manage_shell(code: str, env: dict[str, str], *, check: bool) -> subprocess.CompletedProcess:
    """``manage.py shell -c code`` under ``env``; raises on a non-zero exit when ``check``."""
    return subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", code],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=check,
    )
