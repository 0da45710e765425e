"""Keep the password hasher's working memory in the process between logins (glibc's malloc).

Argon2 with Django's parameters fills 100 MiB per hash. glibc serves any allocation above 32 MiB with a
fresh ``mmap`` and gives it back with ``munmap`` when freed, so every login's hash starts by faulting in
25,600 new zeroed pages: measured here, 49 ms of kernel time in a hash of 166 ms of CPU (bench/RESULTS.md).
With large allocations taken from the heap instead (``M_MMAP_MAX`` 0) and up to the hasher's memory kept
at its top when freed (``M_TRIM_THRESHOLD``), the next hash reuses the pages it already has.

What it costs: a worker that has checked a password keeps that memory (its RSS stays about 100 MiB
higher), which the host must have anyway for as many logins at once as there are workers. Freed memory
beyond the threshold is still given back (a gthread worker that hashed in several threads at once can give
it all back, and its next login faults it in again), and a recycled worker (GUNICORN_MAX_REQUESTS) starts
afresh. A gthread worker also faults it in anew now and then with one login at a time (about one login in
twenty, tests/ops/test_gunicorn.py), most likely when another thread's allocation split the freed block so
the next hash no longer fits in it; a sync worker has not been seen to. Handing Argon2 a buffer of its own
(its context's allocation callbacks) would make it exact.

On huge pages: Argon2 reads its memory in 1 KiB blocks at addresses it cannot predict, so on 4 KiB pages
nearly every block costs a TLB miss. Where the kernel offers transparent huge pages on request (``madvise``
or ``always`` in /sys/kernel/mm/transparent_hugepage/enabled), the heap range the hash will take is marked
for 2 MiB pages before its first use (``MADV_HUGEPAGE``): measured here, a hash cost about 7% less CPU
(bench/RESULTS.md). ``ARGON2_HUGE_PAGES=false`` turns this part off.
Called in each web worker (config/gunicorn.py) and in bench/hash_alone.py, never in other processes;
``ARGON2_KEEP_MEMORY=false`` turns it off. Elsewhere than glibc (musl, macOS) it does nothing.
"""

import ctypes
import logging
import re
from pathlib import Path

logger = logging.getLogger(__name__)

# glibc's malloc.h
M_TRIM_THRESHOLD = -1
M_MMAP_MAX = -4
M_ARENA_MAX = -8

MIB = 1024 * 1024
# Besides the hash's own block, a little more of the heap's top kept for everything else a login frees.
TRIM_MARGIN = 16 * MIB
# sys/mman.h (Linux), and the size of a transparent huge page on x86-64 and arm64 with 4 KiB pages.
MADV_HUGEPAGE = 14
HUGE_PAGE = 2 * MIB
# Marked for huge pages: the hash's block and a little beyond it (other allocations may come first), less
# than the trim threshold's margin so the freed range stays at the heap's top instead of being given back.
HUGE_MARGIN = 4 * MIB
THP_ENABLED = Path("/sys/kernel/mm/transparent_hugepage/enabled")


def argon2_memory_bytes() -> int:
    """The bytes one hash of the preferred password hasher fills, 0 when it is not Argon2."""
    from django.contrib.auth.hashers import Argon2PasswordHasher, get_hasher

    hasher = get_hasher("default")
    return hasher.memory_cost * 1024 if isinstance(hasher, Argon2PasswordHasher) else 0


def keep_hash_memory() -> int:
    """Tune this process's malloc to keep one Argon2 hash's memory; return the bytes kept (0: unchanged)."""
    from django.conf import settings

    # Another app under the same gunicorn settings (the benchmark's floors): no Django settings, or not ours.
    if not settings.configured or not getattr(settings, "ARGON2_KEEP_MEMORY", False):
        return 0
    hash_bytes = argon2_memory_bytes()
    if not hash_bytes:
        return 0
    try:
        libc = _libc()
    except (OSError, AttributeError):  # not glibc
        return 0
    mallopt = libc.mallopt
    keep = hash_bytes + TRIM_MARGIN
    # Threshold first: if heap allocation were switched on alone, freed hashes would be trimmed at once. One
    # arena: a gthread worker hashes in its request threads, and a thread's own arena cannot hold 100 MiB
    # (glibc would map it afresh); Python's small objects do not come from malloc's arenas anyway.
    if not (mallopt(M_TRIM_THRESHOLD, keep) and mallopt(M_MMAP_MAX, 0) and mallopt(M_ARENA_MAX, 1)):
        logger.warning("malloc tuning refused: each hash maps its memory afresh")
        return 0
    if getattr(settings, "ARGON2_HUGE_PAGES", False) and huge_pages_offered():
        advise_huge_pages(libc, hash_bytes + HUGE_MARGIN)
    return keep


def _libc():
    """The C library this process runs on, with the prototypes used here (raises AttributeError without mallopt)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mallopt.argtypes, libc.mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    libc.malloc.argtypes, libc.malloc.restype = [ctypes.c_size_t], ctypes.c_void_p
    libc.free.argtypes, libc.free.restype = [ctypes.c_void_p], None
    libc.madvise.argtypes, libc.madvise.restype = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int], ctypes.c_int
    return libc


def huge_pages_mode() -> str | None:
    """The kernel's transparent huge page mode (``always``, ``madvise``, ``never``), None where it has none."""
    try:
        mode = re.search(r"\[(\w+)\]", THP_ENABLED.read_text())
    except OSError:  # not Linux, or no THP in this kernel
        return None
    return mode.group(1) if mode else None


def huge_pages_offered() -> bool:
    """Whether the kernel gives transparent huge pages to memory that asks for them."""
    return huge_pages_mode() in ("always", "madvise")


def advise_huge_pages(libc, size: int) -> bool:
    """Mark the next ``size`` bytes malloc will hand out for huge pages; return whether the kernel took it.

    Run after the tuning above: the block comes from the heap's top, and freed it stays there (under the trim
    threshold), so the hash's first allocation takes the same range and faults it in as 2 MiB pages.
    """
    block = libc.malloc(size)
    if not block:
        return False
    try:
        start = -(-block // HUGE_PAGE) * HUGE_PAGE  # the whole huge pages inside the block
        end = (block + size) // HUGE_PAGE * HUGE_PAGE
        if end <= start or libc.madvise(start, end - start, MADV_HUGEPAGE) != 0:
            logger.warning("huge pages refused (errno %s): Argon2 runs on small pages", ctypes.get_errno())
            return False
        return True
    finally:
        libc.free(block)
