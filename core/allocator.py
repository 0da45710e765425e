"""Keep the password hasher's working memory in the process between logins (glibc's malloc).

Argon2 with Django's parameters fills 100 MiB per hash. glibc serves any allocation above 32 MiB with a
fresh ``mmap`` and gives it back with ``munmap`` when freed, so every login's hash starts by faulting in
25,600 new zeroed pages: measured here, 49 ms of kernel time in a hash of 166 ms of CPU (bench/RESULTS.md).
With large allocations taken from the heap instead (``M_MMAP_MAX`` 0) and up to the hasher's memory kept
at its top when freed (``M_TRIM_THRESHOLD``), the next hash reuses the pages it already has.

What it costs: a worker that has checked a password keeps that memory (its RSS stays about 100 MiB
higher), which the host must have anyway for as many logins at once as there are workers. Freed memory
beyond the threshold is still given back (a gthread worker that hashed in several threads at once shrinks
back to one hash's worth, and its next login may fault it in again), and a recycled worker
(GUNICORN_MAX_REQUESTS) starts afresh.
Called in each web worker (config/gunicorn.py) and in bench/hash_alone.py, never in other processes;
``ARGON2_KEEP_MEMORY=false`` turns it off. Elsewhere than glibc (musl, macOS) it does nothing.
"""

import ctypes
import logging

logger = logging.getLogger(__name__)

# glibc's malloc.h
M_TRIM_THRESHOLD = -1
M_MMAP_MAX = -4
M_ARENA_MAX = -8

MIB = 1024 * 1024
# Besides the hash's own block, a little more of the heap's top kept for everything else a login frees.
TRIM_MARGIN = 16 * MIB


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
        mallopt = ctypes.CDLL(None).mallopt  # the C library this process runs on
    except (OSError, AttributeError):
        return 0
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    keep = hash_bytes + TRIM_MARGIN
    # Threshold first: if heap allocation were switched on alone, freed hashes would be trimmed at once. One
    # arena: a gthread worker hashes in its request threads, and a thread's own arena cannot hold 100 MiB
    # (glibc would map it afresh); Python's small objects do not come from malloc's arenas anyway.
    if not (mallopt(M_TRIM_THRESHOLD, keep) and mallopt(M_MMAP_MAX, 0) and mallopt(M_ARENA_MAX, 1)):
        logger.warning("malloc tuning refused: each hash maps its memory afresh")
        return 0
    return keep
