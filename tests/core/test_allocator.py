"""core.allocator: a tuned process checks its second password without faulting in Argon2's memory again,
and, where the kernel offers transparent huge pages on request, hashes on 2 MiB pages.

Each case runs in a fresh interpreter: malloc's tuning is process-wide and must not leak into the test session.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import override_settings

from core import allocator

ROOT = Path(__file__).resolve().parents[2]

# Two password checks in one process; prints what keep_hash_memory() kept, each check's minor page faults and
# the process's anonymous memory on huge pages after them.
SCRIPT = """
import json, re, resource
import django
django.setup()
from django.contrib.auth.hashers import check_password, make_password
from core.allocator import keep_hash_memory
encoded = make_password("allocator-test-passphrase")
kept = keep_hash_memory()
faults = []
for _ in range(2):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    assert check_password("allocator-test-passphrase", encoded)
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
with open("/proc/self/smaps_rollup") as rollup:
    huge_kib = int(re.search(r"^AnonHugePages:\\s+(\\d+) kB", rollup.read(), re.M).group(1))
print(json.dumps({"kept": kept, "faults": faults, "huge_kib": huge_kib}))
"""


def run_checks(**env) -> dict:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "ARGON2_"))}
    environ.update(DJANGO_SETTINGS_MODULE="config.settings", **env)  # Argon2 first, as in production
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT], cwd=ROOT, env=environ, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


PAGES_PER_HASH = 100 * 1024 * 1024 // os.sysconf("SC_PAGE_SIZE")  # Django's Argon2: 100 MiB a hash
THP_OFFERED = allocator.huge_pages_offered()
# In ``madvise`` mode only memory that asks gets huge pages; in ``always`` mode, any may.
ONLY_ON_REQUEST = allocator.huge_pages_mode() == "madvise"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc")
def test_a_tuned_process_reuses_the_hash_memory_of_its_previous_check():
    outcome = run_checks()
    assert outcome["kept"] == 100 * 1024 * 1024 + allocator.TRIM_MARGIN
    # Each check of the untuned make_password() above faulted in its 100 MiB; the second tuned one reuses it.
    assert outcome["faults"][1] < PAGES_PER_HASH // 10, outcome


@pytest.mark.skipif(not THP_OFFERED, reason="this kernel gives no transparent huge pages on request")
def test_a_tuned_process_hashes_on_huge_pages_where_the_kernel_offers_them():
    outcome = run_checks()
    # Nearly all of the hash's 100 MiB: the first huge page boundary inside its block is up to 2 MiB in.
    assert outcome["huge_kib"] >= 96 * 1024, outcome
    # A huge page is one fault: the first check faulted its memory in with a few dozen, not 25,600.
    assert outcome["faults"][0] < PAGES_PER_HASH // 10, outcome


@pytest.mark.skipif(not ONLY_ON_REQUEST, reason="the kernel's huge pages are not given on request only")
def test_huge_pages_switched_off_the_hash_runs_on_small_pages():
    outcome = run_checks(ARGON2_HUGE_PAGES="false")
    assert outcome["huge_kib"] == 0, outcome
    assert outcome["faults"][0] > PAGES_PER_HASH * 0.9, outcome
    assert outcome["faults"][1] < PAGES_PER_HASH // 10, outcome  # still kept


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc")
def test_switched_off_every_check_faults_its_memory_in_again():
    outcome = run_checks(ARGON2_KEEP_MEMORY="false")
    assert outcome["kept"] == 0
    assert min(outcome["faults"]) > PAGES_PER_HASH * 0.9, outcome
    if ONLY_ON_REQUEST:
        assert outcome["huge_kib"] == 0, outcome  # huge pages come with keeping the memory, never without


@override_settings(PASSWORD_HASHERS=["django.contrib.auth.hashers.PBKDF2PasswordHasher"])
def test_nothing_is_tuned_when_the_preferred_hasher_is_not_argon2():
    assert allocator.argon2_memory_bytes() == 0
    assert allocator.keep_hash_memory() == 0  # returns before touching malloc


def test_an_app_without_django_settings_is_left_alone():
    # config/gunicorn.py calls it in every worker, whatever the app: the raw WSGI floor configures no Django.
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "ARGON2_"))}
    code = "from core.allocator import keep_hash_memory; print(keep_hash_memory())"
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=environ, capture_output=True, text=True)
    assert (result.returncode, result.stdout.strip()) == (0, "0"), result.stderr[-2000:]
