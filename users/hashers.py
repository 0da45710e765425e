"""Django's Argon2 password hasher, hashing in memory this process keeps, in as many threads as it is told.

Same algorithm name, parameters and encoded form as ``django.contrib.auth.hashers.Argon2PasswordHasher``: a hash
made by either verifies with the other, and ``must_update`` upgrades old ones as Django's does. What differs is
how a hash is computed, through argon2-cffi's binding of ``argon2_ctx`` (the reference implementation's full
context, which its ``hash_secret`` does not expose):

- Argon2's memory is lent by ``core.allocator`` through the context's allocation callbacks, kept between hashes
  instead of mapped and faulted in afresh by malloc for each one.
- Its lanes (``parallelism``, part of the hash) are computed in ``ARGON2_THREADS`` threads (1 by default; 0 for
  one per lane, as argon2-cffi does). The hash does not depend on the number of threads. One thread per hash
  suits a server whose workers already keep the cores busy with one request each: a login then starts no
  threads, and never waits on the slowest of eight lanes while the other worker has CPU to spare.
- At most ``ARGON2_MAX_CONCURRENT`` hashes (1 by default) run at once in one process; the others wait their
  turn. A gthread worker whose threads all log in at once would otherwise map 100 MiB for each of them: with
  the default, a process holds one hash's memory whatever its threads do, and a flood of logins cannot take an
  instance past ``WEB_CONCURRENCY`` hashes' worth. The cores are busy with the other workers' hashes anyway.
"""

import base64
import binascii
import hmac
import os
import threading
import time

import argon2
from argon2.low_level import ffi, lib
from django.conf import settings
from django.contrib.auth import hashers

from core import allocator
from core.metrics import record_password_hash

# Argon2's answers that say nothing of the hash or the password: this process could not run it now.
RESOURCE_ERRORS = frozenset({lib.ARGON2_MEMORY_ALLOCATION_ERROR, lib.ARGON2_THREAD_FAIL})


class HashUnavailableError(RuntimeError):
    """Argon2 could not get the memory or threads to run: no answer on the password (the caller sees a 500)."""


# The hashes this process may run at once (the module's docstring); made anew in a forked child, where a hash a
# parent's thread was running at the fork will never give its turn back.
running = threading.BoundedSemaphore(settings.ARGON2_MAX_CONCURRENT)


def _running_reset() -> None:
    global running
    running = threading.BoundedSemaphore(settings.ARGON2_MAX_CONCURRENT)


os.register_at_fork(after_in_child=_running_reset)


def hash_raw(password: bytes, salt: bytes, params: argon2.Parameters) -> bytes:
    """Argon2's raw hash of ``password`` with ``salt`` and ``params`` (type, version, costs, lanes, length).

    Raises argon2.exceptions.HashingError when Argon2 refuses the parameters, and HashUnavailableError when it
    could not get its memory or threads: a login must fail as an error then, never as a wrong password that
    counts towards a lock.
    """
    out = ffi.new("uint8_t[]", params.hash_len)
    password_buffer = ffi.new("uint8_t[]", password)
    salt_buffer = ffi.new("uint8_t[]", salt)
    threads = settings.ARGON2_THREADS or params.parallelism
    context = ffi.new(
        "argon2_context *",
        {
            "out": out,
            "outlen": params.hash_len,
            "pwd": password_buffer,
            "pwdlen": len(password),
            "salt": salt_buffer,
            "saltlen": len(salt),
            "secret": ffi.NULL,
            "secretlen": 0,
            "ad": ffi.NULL,
            "adlen": 0,
            "t_cost": params.time_cost,
            "m_cost": params.memory_cost,
            "lanes": params.parallelism,
            "threads": min(threads, params.parallelism),
            "version": params.version,
            "allocate_cbk": allocator.allocate,
            "free_cbk": allocator.deallocate,
            "flags": lib.ARGON2_DEFAULT_FLAGS,
        },
    )
    asked = time.perf_counter()
    with running:
        started = time.perf_counter()
        result = argon2.low_level.core(context, params.type.value)
    record_password_hash(waited=started - asked, hashed=time.perf_counter() - started)
    if result in RESOURCE_ERRORS:
        raise HashUnavailableError(argon2.low_level.error_to_str(result))
    if result != lib.ARGON2_OK:
        raise argon2.exceptions.HashingError(argon2.low_level.error_to_str(result))
    return bytes(ffi.buffer(out, params.hash_len))


def _b64encode(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii").rstrip("=")  # Argon2's encoding: standard, unpadded


def _b64decode(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)


class Argon2PasswordHasher(hashers.Argon2PasswordHasher):
    """Django's Argon2 hasher, computed in kept memory and ARGON2_THREADS threads (see the module)."""

    def encode(self, password, salt):
        params = self.params()
        raw = hash_raw(password.encode(), salt.encode(), params)
        variety = f"argon2{params.type.name.lower()}"
        costs = f"m={params.memory_cost},t={params.time_cost},p={params.parallelism}"
        return f"{self.algorithm}${variety}$v={params.version}${costs}${_b64encode(salt.encode())}${_b64encode(raw)}"

    def verify(self, password, encoded):
        algorithm, rest = encoded.split("$", 1)
        assert algorithm == self.algorithm
        try:
            params = argon2.extract_parameters("$" + rest)
            *_, salt, expected = rest.split("$")
            salt, expected = _b64decode(salt), _b64decode(expected)
        except (argon2.exceptions.InvalidHashError, binascii.Error, ValueError):
            return False  # a stored value that is not an Argon2 hash matches no password
        params.hash_len = len(expected)
        try:
            computed = hash_raw(password.encode(), salt, params)
        except argon2.exceptions.HashingError:
            return False  # parameters Argon2 refuses (a salt or hash too short): as argon2-cffi answers
        # HashUnavailableError goes on up: Django's hasher would answer False (a wrong password) instead.
        return hmac.compare_digest(computed, expected)
