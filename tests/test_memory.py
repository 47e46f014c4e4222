"""The CLI keeps memory flat: Arrow on the system allocator, DuckDB loads bounded."""

from __future__ import annotations

from pathlib import Path

import dlt
import pyarrow as pa

from pipelines import destinations, memory


def test_keep_small_moves_arrow_to_the_system_allocator() -> None:
    previous = pa.default_memory_pool()
    try:
        memory.keep_small()
        assert pa.default_memory_pool().backend_name == "system"
    finally:
        pa.set_memory_pool(previous)


def test_duckdb_loads_run_with_a_bounded_working_memory(tmp_path: Path) -> None:
    destination, _, path = destinations.destination_for("duckdb", str(tmp_path / "m.duckdb"))
    pipeline = dlt.pipeline("memory_check", destination=destination, pipelines_dir=str(tmp_path))
    with pipeline.sql_client() as client:
        limit = client.execute_sql("SELECT current_setting('memory_limit')")[0][0]
    assert path == str(tmp_path / "m.duckdb")
    assert limit == "76.2 MiB"  # 80 MB
