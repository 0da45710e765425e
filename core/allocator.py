"""The memory Argon2 hashes in: mapped by this process, lent to each hash, one block kept between hashes.

Argon2 with Django's parameters fills 100 MiB per hash. Left to malloc, glibc maps it afresh and unmaps it
for every hash, so every login starts by faulting in 25,600 new zeroed pages: measured here, 49 ms of kernel
time in a hash of 166 ms of CPU (bench/RESULTS.md). users.hashers.Argon2PasswordHasher hands Argon2 the two
allocation callbacks of its context (``allocate_cbk``/``free_cbk``), which lend it a block from here. A block
given back is kept for the next hash (Argon2 has wiped it first), so a process faults its memory in once:
with ``ARGON2_KEEP_MEMORY`` (on by default) one block is kept, the largest up to one hash of the preferred
hasher's parameters; any other is unmapped at once (an older hash made with more memory maps its own each time,
rather than leave a worker holding that much for good).

Exact in every kind of worker: hashes that run at once (``ARGON2_MAX_CONCURRENT`` allows one by default) map one
block each, and one is kept after them. Nothing here depends on the C library's malloc or its tuning.

What it costs: a process that has checked a password keeps one hash's memory (its RSS stays about 100 MiB
higher), which the host must have anyway for as many logins at once as there are workers. A recycled worker
(GUNICORN_MAX_REQUESTS) starts afresh.

On huge pages: Argon2 reads its memory in 1 KiB blocks at addresses it cannot predict, so on 4 KiB pages
nearly every block costs a TLB miss. Where the kernel offers transparent huge pages on request (``madvise``
or ``always`` in /sys/kernel/mm/transparent_hugepage/enabled), a kept block is mapped at a 2 MiB boundary and
marked for 2 MiB pages (``MADV_HUGEPAGE``) before its first use: measured here, a hash costs about 7% less CPU
(bench/RESULTS.md). ``ARGON2_HUGE_PAGES=false`` turns this part off; a block that is not kept never asks.
"""

import logging
import mmap
import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path

from argon2.low_level import ffi, lib

logger = logging.getLogger(__name__)

MIB = 1024 * 1024
# The size of a transparent huge page on x86-64 and arm64 with 4 KiB pages.
HUGE_PAGE = 2 * MIB
THP_ENABLED = Path("/sys/kernel/mm/transparent_hugepage/enabled")


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


@dataclass(eq=False)
class Block:
    """One private anonymous mapping, and the address inside it that Argon2 is lent."""

    region: mmap.mmap
    pointer: object  # the cdata over the region: keeps its buffer exported while the block lives
    address: int
    size: int  # the bytes usable from ``address``

    def close(self) -> None:
        ffi.release(self.pointer)
        self.region.close()


def block_map(size: int, *, huge: bool) -> Block:
    """Map ``size`` bytes, private to this process (a fork copies it, never shares it), on huge pages if asked."""
    extra = HUGE_PAGE if huge else 0  # room to start at a huge page boundary
    region = mmap.mmap(-1, size + extra, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    pointer = ffi.from_buffer(region)
    base = int(ffi.cast("uintptr_t", pointer))
    offset = -base % HUGE_PAGE if huge else 0
    if huge:
        try:
            region.madvise(mmap.MADV_HUGEPAGE, offset, len(region) - offset)
        except OSError as exc:
            logger.warning("huge pages refused (%s): Argon2 runs on small pages", exc)
    return Block(region=region, pointer=pointer, address=base + offset, size=size)


class Blocks:
    """The blocks lent to the hashes running in this process, and the one kept for the next."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._kept: Block | None = None
        self._lent: dict[int, Block] = {}
        self.mapped = 0  # blocks mapped so far: each one's pages were faulted in anew

    def lend(self, size: int) -> int:
        """The address of a block of at least ``size`` bytes for a hash to fill."""
        from django.conf import settings

        with self._lock:
            block, self._kept = (self._kept, None) if self._kept and self._kept.size >= size else (None, self._kept)
        mapped = block is None
        if mapped:
            keep = settings.ARGON2_KEEP_MEMORY
            block = block_map(size, huge=keep and settings.ARGON2_HUGE_PAGES and huge_pages_offered())
        with self._lock:
            self.mapped += mapped
            self._lent[block.address] = block
        return block.address

    def give_back(self, address: int) -> None:
        """Take back the block at ``address`` (wiped by Argon2): keep it for the next hash, or unmap it."""
        from django.conf import settings

        most = kept_at_most() if settings.ARGON2_KEEP_MEMORY else 0
        with self._lock:
            block = self._lent.pop(address)
            if block.size <= most and (self._kept is None or self._kept.size < block.size):
                block, self._kept = self._kept, block
        if block is not None:
            block.close()

    def forget(self) -> None:
        """In a child just forked: no hash of the parent's runs here, and a lock held at the fork stays held."""
        self._lock = threading.Lock()
        self._lent = {}

    @property
    def kept_bytes(self) -> int:
        return self._kept.size if self._kept else 0


def kept_at_most() -> int:
    """The largest block worth keeping: one hash of the preferred hasher, 0 when that hasher is not Argon2."""
    from django.contrib.auth.hashers import Argon2PasswordHasher, get_hasher

    hasher = get_hasher("default")
    return hasher.memory_cost * 1024 if isinstance(hasher, Argon2PasswordHasher) else 0


BLOCKS = Blocks()
os.register_at_fork(after_in_child=BLOCKS.forget)


def _callback_failed(exc_type, exc, traceback) -> None:
    logger.error("Argon2's memory callback failed: the hash fails", exc_info=(exc_type, exc, traceback))


# Argon2's allocation callbacks (argon2.h: allocate_fptr, deallocate_fptr). An exception in the first is logged and
# answers Argon2 with its allocation error (the hash fails, no memory is touched); the second has nothing to answer.
@ffi.callback("int(uint8_t **, size_t)", error=lib.ARGON2_MEMORY_ALLOCATION_ERROR, onerror=_callback_failed)
def allocate(memory, size):
    memory[0] = ffi.cast("uint8_t *", BLOCKS.lend(size))
    return lib.ARGON2_OK


@ffi.callback("void(uint8_t *, size_t)", onerror=_callback_failed)
def deallocate(memory, size):
    BLOCKS.give_back(int(ffi.cast("uintptr_t", memory)))
