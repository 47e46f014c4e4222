"""The CLI keeps memory flat: Arrow on the system allocator, DuckDB loads bounded
and run through one connection."""

from __future__ import annotations

from pathlib import Path

import dlt
import duckdb
import pyarrow as pa
import pytest

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


def test_a_sync_loads_through_one_duckdb_connection_with_the_same_cap(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = str(tmp_path / "s.duckdb")
    with destinations.duckdb_session(path) as destination:
        opened = []
        connect = duckdb.connect
        monkeypatch.setattr(duckdb, "connect", lambda *a, **k: opened.append(a) or connect(*a, **k))
        pipeline = dlt.pipeline(
            "session_check", destination=destination, pipelines_dir=str(tmp_path)
        )
        for row in range(3):
            pipeline.run([{"id": row}], table_name="t")
        with pipeline.sql_client() as client:
            limit = client.execute_sql("SELECT current_setting('memory_limit')")[0][0]
        assert opened == []  # three loads, and dlt never opened the file itself
        assert limit == "76.2 MiB"
        monkeypatch.undo()
    with duckdb.connect(path, read_only=True) as db:  # closed and checkpointed: readable
        assert db.execute("SELECT COUNT(*) FROM session_check_dataset.t").fetchone() == (3,)


def test_other_destinations_have_no_duckdb_session() -> None:
    with destinations.duckdb_session(None) as destination:
        assert destination is None
