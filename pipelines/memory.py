"""Keep the sync process's memory flat.

Arrow's default allocator (mimalloc) and glibc's per-thread malloc arenas both
hold on to memory a sync has finished with; over a long backfill that shows
up as resident memory that never goes down. The system allocator with two
arenas returns it.
"""

from __future__ import annotations

import ctypes
import ctypes.util

import pyarrow as pa

_M_ARENA_MAX = -8  # glibc's mallopt parameter number


def keep_small() -> None:
    """Use the system allocator for Arrow buffers and cap glibc's malloc arenas at two."""
    pa.set_memory_pool(pa.system_memory_pool())
    name = ctypes.util.find_library("c")
    if name:
        libc = ctypes.CDLL(name)
        if hasattr(libc, "mallopt"):
            libc.mallopt(_M_ARENA_MAX, 2)
