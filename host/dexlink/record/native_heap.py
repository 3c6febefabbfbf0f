"""Large buffers straight from the system, so a long recording's memory stays flat.

glibc's malloc gives a block of 128 KiB or more a mapping of its own, returned to the
system when the block is freed; but the first time it frees such a block it raises that
threshold to the block's size (up to 32 MiB). From then on a recording's megabyte-sized
buffers (camera frames, encoded images, MCAP chunks), made and freed hundreds of times a
second on a dozen threads, come from the threads' heaps instead, where they fragment and
the freed room stays resident: the host grew by tens of MB an hour in the soak
(bench/soak.py) while the Python objects it held (tracemalloc) stayed flat. Setting the
threshold turns the raising off; and once an episode is written, what its buffers left
free inside the heaps goes back to the system too (malloc_trim). Where malloc is not
glibc's nothing is changed.
"""
from __future__ import annotations

import ctypes
import platform

M_MMAP_THRESHOLD = -3  # glibc's malloc.h
LARGE_BLOCK = 128 * 1024  # glibc's own starting threshold, now held

_held: int | None = None


def _glibc():
    return ctypes.CDLL(None) if platform.libc_ver()[0] == "glibc" else None


def hold_mmap_threshold(size: int = LARGE_BLOCK) -> bool:
    """Serve blocks of `size` bytes or more from mappings of their own, for good (the
    whole process; done once). False where malloc is not glibc's."""
    global _held
    if _held == size:
        return True
    libc = _glibc()
    if libc is None or not libc.mallopt(M_MMAP_THRESHOLD, size):
        return False
    _held = size
    return True


def give_back() -> None:
    """Return the heaps' free pages to the system (after an episode: its queues and
    chunks are gone, and what they used would otherwise stay resident)."""
    libc = _glibc()
    if libc is not None:
        libc.malloc_trim(0)
