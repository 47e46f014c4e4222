"""The CLI keeps memory flat: Arrow on the system allocator."""

from __future__ import annotations

import pyarrow as pa

from pipelines import memory


def test_keep_small_moves_arrow_to_the_system_allocator() -> None:
    previous = pa.default_memory_pool()
    try:
        memory.keep_small()
        assert pa.default_memory_pool().backend_name == "system"
    finally:
        pa.set_memory_pool(previous)
