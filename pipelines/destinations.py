"""Where a sync loads: dlt destinations chosen by `--destination`."""

from __future__ import annotations

import fcntl
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import dlt
from dlt.destinations.adapters import bigquery_adapter
from dlt.destinations.impl.duckdb.configuration import DuckDbCredentials
from dlt.sources import DltSource

from sources.shared.errors import ConfigError

DESTINATIONS = ("duckdb", "postgres", "bigquery")
DEFAULT_DUCKDB_PATH = "costsync.duckdb"
# DuckDB's working memory while loading; a larger merge spills to `<file>.tmp`
# instead, so a sync's peak memory does not grow with the rows per window.
DUCKDB_MEMORY_LIMIT = "80MB"

# BigQuery layout: partitions and clusters that match how the tables are queried.
BIGQUERY_HINTS: dict[str, dict[str, Any]] = {
    "line_items": {"partition": "usage_date", "cluster": ["provider_type", "project_id"]},
    "daily_rollups": {"partition": "date"},
    "anomalies": {"partition": "detected_date"},
    "spending_breakdown": {"cluster": ["provider_id"]},
}
_CREDENTIALS_HELP = {
    "postgres": "DESTINATION__POSTGRES__CREDENTIALS=postgresql://user:password@host:5432/database",
    "bigquery": "DESTINATION__BIGQUERY__CREDENTIALS__PROJECT_ID, __PRIVATE_KEY, __CLIENT_EMAIL",
}


def destination_for(name: str, duckdb_path: str | None) -> tuple[Any, str, str | None]:
    """The dlt destination for `--destination`, where it is in words, and the DuckDB file.

    DuckDB's file: `--duckdb-path`, else dlt's `destination.duckdb.credentials`,
    else costsync.duckdb in the working directory.
    """
    if name == "duckdb":
        configured = dlt.secrets.get("destination.duckdb.credentials")
        path = duckdb_path or (configured if isinstance(configured, str) else DEFAULT_DUCKDB_PATH)
        if "://" not in path:
            path = os.path.abspath(path)
        credentials = DuckDbCredentials(path, global_config={"memory_limit": DUCKDB_MEMORY_LIMIT})
        return dlt.destinations.duckdb(credentials=credentials), f"duckdb {path}", path
    if name == "postgres":
        # No UNIQUE constraints: after a crash dlt may run a job the warehouse had
        # already committed once more, and a constraint on `_dlt_pipeline_state`'s
        # row ids would fail that run for good. Merges keep the tables unique.
        return dlt.destinations.postgres(create_indexes=False), "postgres", None
    return dlt.destinations.bigquery(), "bigquery", None


def check_destination(destination: Any) -> None:
    """Resolve the destination's configuration now, so a missing credential is found
    before any API request; raises `ConfigError` naming what to set."""
    credentials = destination.configuration(None, accept_partial=True).credentials
    if credentials is None or not credentials.is_resolved():
        name = destination.destination_name
        how = _CREDENTIALS_HELP.get(name, f"destination.{name}.credentials")
        raise ConfigError(f"destination.{name}.credentials", f"are missing: set {how}")


def for_destination(name: str, make_source: Callable[..., DltSource]) -> Callable[..., DltSource]:
    """`make_source` with the destination's table hints applied (BigQuery partitions)."""
    if name != "bigquery":
        return make_source

    def make_bigquery_source() -> DltSource:
        source = make_source()
        for resource_name, hints in BIGQUERY_HINTS.items():
            if resource_name in source.resources:
                bigquery_adapter(source.resources[resource_name], **hints)
        return source

    return make_bigquery_source


@contextmanager
def duckdb_writer_lock(path: str | None) -> Iterator[None]:
    """Wait for other costsync syncs writing the same DuckDB file (DuckDB has one writer).

    Syncs of different pipelines into one file take turns instead of failing;
    a no-op for other destinations (`path` None).
    """
    if path is None or "://" in path:
        yield
        return
    with open(f"{path}.costsync-lock", "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(f"costsync: waiting for another sync writing {path}", file=sys.stderr)
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
