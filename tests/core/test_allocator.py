"""core.allocator: the memory lent to Argon2 is kept between hashes, one block per process, on huge pages where
the kernel offers them on request; switched off, every hash maps and faults its memory in anew.

The whole-hash cases run in a fresh interpreter with the service's hasher (100 MiB a hash), so that page faults
and huge pages are this process's alone.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from argon2.low_level import ffi

from core import allocator

ROOT = Path(__file__).resolve().parents[2]

# Password checks in one process, the first in four threads at once (as a gthread worker may run them), then
# three one after the other; prints each later check's minor page faults, the blocks mapped and kept, and the
# process's anonymous memory on huge pages after them.
SCRIPT = """
import json, re, resource, threading
import django
django.setup()
from django.contrib.auth.hashers import check_password, make_password
from core.allocator import BLOCKS
encoded = make_password("allocator-test-passphrase")
at_once = [threading.Thread(target=check_password, args=("allocator-test-passphrase", encoded)) for _ in range(4)]
for thread in at_once:
    thread.start()
for thread in at_once:
    thread.join()
faults = []
for _ in range(3):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    assert check_password("allocator-test-passphrase", encoded)
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
with open("/proc/self/smaps_rollup") as rollup:
    huge_kib = int(re.search(r"^AnonHugePages:\\s+(\\d+) kB", rollup.read(), re.M).group(1))
print(json.dumps({"faults": faults, "mapped": BLOCKS.mapped, "kept": BLOCKS.kept_bytes, "huge_kib": huge_kib}))
"""


def run_checks(**env) -> dict:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "ARGON2_"))}
    environ.update(DJANGO_SETTINGS_MODULE="config.settings", **env)  # the service's hasher first, as in production
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT], cwd=ROOT, env=environ, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


HASH_BYTES = 100 * 1024 * 1024  # Django's Argon2 parameters
PAGES_PER_HASH = HASH_BYTES // os.sysconf("SC_PAGE_SIZE")
THP_OFFERED = allocator.huge_pages_offered()
# In ``madvise`` mode only memory that asks gets huge pages; in ``always`` mode, any may.
ONLY_ON_REQUEST = allocator.huge_pages_mode() == "madvise"
linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="page faults from getrusage, on Linux")


@linux_only
def test_each_check_after_the_first_reuses_the_kept_memory_even_after_checks_at_once():
    outcome = run_checks()
    # One hash at a time (ARGON2_MAX_CONCURRENT): the four checks at once take make_password's block in turn.
    assert (outcome["mapped"], outcome["kept"]) == (1, HASH_BYTES), outcome
    assert max(outcome["faults"]) < PAGES_PER_HASH // 10, outcome


@linux_only
def test_hashes_allowed_at_once_each_map_a_block_and_one_is_kept():
    outcome = run_checks(ARGON2_MAX_CONCURRENT="4")
    # make_password's hash mapped one block, the four checks at once three more (one was kept): one stays.
    assert (outcome["mapped"], outcome["kept"]) == (4, HASH_BYTES), outcome
    assert max(outcome["faults"]) < PAGES_PER_HASH // 10, outcome


@pytest.mark.skipif(not THP_OFFERED, reason="this kernel gives no transparent huge pages on request")
def test_the_kept_memory_is_on_huge_pages_where_the_kernel_offers_them():
    outcome = run_checks()
    assert outcome["huge_kib"] >= HASH_BYTES // 1024, outcome  # the block starts at a huge page boundary


@pytest.mark.skipif(not ONLY_ON_REQUEST, reason="the kernel's huge pages are not given on request only")
def test_huge_pages_switched_off_the_hash_runs_on_small_pages_still_kept():
    outcome = run_checks(ARGON2_HUGE_PAGES="false")
    assert outcome["huge_kib"] == 0, outcome
    assert max(outcome["faults"]) < PAGES_PER_HASH // 10, outcome


@linux_only
def test_switched_off_every_check_faults_its_memory_in_again():
    outcome = run_checks(ARGON2_KEEP_MEMORY="false")
    assert (outcome["mapped"], outcome["kept"]) == (8, 0), outcome  # every hash of the eight maps its own
    assert min(outcome["faults"]) > PAGES_PER_HASH * 0.9, outcome
    if ONLY_ON_REQUEST:
        assert outcome["huge_kib"] == 0, outcome  # huge pages come with keeping the memory, never without


@pytest.mark.usefixtures("argon2_preferred")
def test_blocks_lent_at_once_are_distinct_and_one_is_kept_the_largest():
    blocks = allocator.Blocks()
    first, second = blocks.lend(64 * 1024), blocks.lend(128 * 1024)
    assert first != second and blocks.mapped == 2

    blocks.give_back(second)
    blocks.give_back(first)

    assert blocks.kept_bytes == 128 * 1024
    assert blocks.lend(100 * 1024) == second and blocks.mapped == 2  # the kept block serves a smaller hash
    assert blocks.lend(100 * 1024) != second and blocks.mapped == 3


@pytest.mark.usefixtures("argon2_preferred")
def test_a_hash_larger_than_the_kept_block_maps_its_own_and_that_one_is_kept():
    blocks = allocator.Blocks()
    blocks.give_back(blocks.lend(64 * 1024))

    larger = blocks.lend(256 * 1024)
    blocks.give_back(larger)

    assert (blocks.mapped, blocks.kept_bytes) == (2, 256 * 1024)
    assert blocks.lend(256 * 1024) == larger


@pytest.mark.usefixtures("argon2_preferred")
def test_a_block_larger_than_a_hash_of_the_preferred_parameters_is_never_kept():
    # An older hash made with more memory than the service's parameters maps its own block each time, rather
    # than leave the worker holding that much for good.
    blocks = allocator.Blocks()
    blocks.give_back(blocks.lend(64 * 1024))
    blocks.give_back(blocks.lend(HASH_BYTES + 4096))

    assert (blocks.mapped, blocks.kept_bytes) == (2, 64 * 1024)


def test_nothing_is_kept_when_the_preferred_hasher_is_not_argon2(settings):
    settings.PASSWORD_HASHERS = [
        "django.contrib.auth.hashers.PBKDF2PasswordHasher",
        "users.hashers.Argon2PasswordHasher",
    ]
    settings.ARGON2_KEEP_MEMORY = True
    blocks = allocator.Blocks()
    blocks.give_back(blocks.lend(64 * 1024))

    assert blocks.kept_bytes == 0


def test_switched_off_a_block_given_back_is_unmapped(settings):
    settings.ARGON2_KEEP_MEMORY = False
    blocks = allocator.Blocks()
    blocks.give_back(blocks.lend(64 * 1024))
    blocks.give_back(blocks.lend(64 * 1024))

    assert (blocks.mapped, blocks.kept_bytes) == (2, 0)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork")
def test_a_block_is_private_to_its_process_after_a_fork():
    # A worker forked from a process holding a block must never write into its parent's (or a sibling's) hash.
    block = allocator.block_map(4096, huge=False)
    memory = ffi.cast("uint8_t *", block.address)
    memory[0] = 1
    pid = os.fork()
    if pid == 0:  # the child writes its own copy and leaves at once
        memory[0] = 2
        os._exit(0 if memory[0] == 2 else 1)
    _, status = os.waitpid(pid, 0)
    try:
        assert os.waitstatus_to_exitcode(status) == 0
        assert memory[0] == 1
    finally:
        block.close()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork")
def test_a_forked_child_forgets_the_blocks_its_parent_had_lent(settings):
    settings.ARGON2_KEEP_MEMORY = False
    lent = allocator.BLOCKS.lend(4096)  # as if a thread of this process were hashing at the fork
    pid = os.fork()
    if pid == 0:
        try:
            allocator.BLOCKS.give_back(lent)
        except KeyError:  # no hash of the child holds it
            os._exit(0)
        os._exit(1)
    _, status = os.waitpid(pid, 0)
    allocator.BLOCKS.give_back(lent)
    assert os.waitstatus_to_exitcode(status) == 0
