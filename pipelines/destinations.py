"""Where a sync loads: dlt destinations chosen by `--destination`."""

from __future__ import annotations

import fcntl
import logging
import os
import sys
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import dlt
import duckdb
from dlt.common.schema.utils import get_columns_names_with_prop
from dlt.destinations.adapters import bigquery_adapter
from dlt.destinations.impl.duckdb.configuration import DuckDbCredentials
from dlt.destinations.sql_client import SqlClientBase
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
# How each destination names a stored row: a merge keeps the last staged row per key.
ROW_IDS = {"duckdb": "rowid", "postgres": "ctid"}
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
    # dlt reads its state back in a query of a few rows, through the REST API when the
    # BigQuery Storage API client is not installed; google-cloud-bigquery warns about that.
    warnings.filterwarnings("ignore", "Cannot create BigQuery Storage client", UserWarning)
    return dlt.destinations.bigquery(), "bigquery", None


def check_destination(destination: Any) -> None:
    """Resolve the destination's configuration now, so a missing credential is found
    before any API request; raises `ConfigError` naming what to set."""
    credentials = destination.configuration(None, accept_partial=True).credentials
    if credentials is None or not credentials.is_resolved():
        name = destination.destination_name
        how = _CREDENTIALS_HELP.get(name, f"destination.{name}.credentials")
        raise ConfigError(f"destination.{name}.credentials", f"are missing: set {how}")


def for_destination(
    pipeline: dlt.Pipeline, make_source: Callable[..., DltSource]
) -> Callable[..., DltSource]:
    """`make_source` with the hints of `pipeline`'s destination applied: BigQuery
    partitions, and the merge that keeps one staged row per key by row id."""
    name = pipeline.destination.destination_name
    row_id = ROW_IDS.get(name)
    client = pipeline.sql_client() if row_id else None

    def make_destination_source() -> DltSource:
        source = make_source()
        if name == "bigquery":
            for resource_name, hints in BIGQUERY_HINTS.items():
                if resource_name in source.resources:
                    bigquery_adapter(source.resources[resource_name], **hints)
        if row_id and client:
            keep_one_staged_row(source, row_id, client)
        return source

    return make_destination_source


def keep_bigquery_clustering(pipeline: dlt.Pipeline) -> None:
    """Give `pipeline`'s BigQuery tables the clustering `BIGQUERY_HINTS` promise.

    dlt clusters a table only in the CREATE TABLE that makes it, so a table made
    before (by an older costsync, or by hand) would keep whatever it has.
    BigQuery changes a table's clustering in place (data written from then on is
    clustered by the new fields): a table that reports other fields is updated.
    A no-op for other destinations and for tables not loaded yet; a refusal is
    logged (the data is loaded either way: clustering only speeds queries up).
    """
    if pipeline.destination.destination_name != "bigquery":
        return
    from google.api_core.exceptions import GoogleAPICallError, NotFound

    with pipeline.sql_client() as client:
        bigquery = client.native_connection
        for name, hints in BIGQUERY_HINTS.items():
            fields = hints.get("cluster")
            if not fields or name not in pipeline.default_schema.tables:
                continue
            try:
                table = bigquery.get_table(client.make_qualified_table_name(name, quote=False))
            except NotFound:
                continue
            if table.clustering_fields == fields:
                continue
            table.clustering_fields = fields
            try:
                bigquery.update_table(table, ["clustering_fields"])
            except GoogleAPICallError as error:
                logging.warning(
                    "%s is not clustered by %s: BigQuery refused (%s)",
                    table.table_id,
                    ", ".join(fields),
                    error.message,
                )


def keep_one_staged_row(source: DltSource, row_id: str, client: SqlClientBase[Any]) -> None:
    """Merge each primary-keyed delete-insert resource's load keeping, per key, its
    last staged row, found by `row_id` with a GROUP BY. Rows are staged in the order
    the API served them, so a key served twice in one load keeps its later copy.

    dlt's own de-duplication numbers every staged row with ROW_NUMBER() over the
    key, a sort of the whole load; marking the load `deduplicated` and filtering
    it by row id does the same work at a hash aggregate's cost.
    """
    for resource in source.resources.values():
        disposition = resource.write_disposition
        table = resource.compute_table_schema()
        keys = get_columns_names_with_prop(table, "primary_key", include_incomplete=True)
        if not keys or not isinstance(disposition, dict):
            continue
        if disposition.get("strategy") != "delete-insert" or disposition.get("source_filter"):
            continue
        with client.with_staging_dataset():
            staging_table = client.make_qualified_table_name(table["name"])
        group_by = ", ".join(map(client.escape_column_name, keys))
        last_rows = f"{row_id} IN (SELECT max({row_id}) FROM {staging_table} GROUP BY {group_by})"
        resource.apply_hints(
            write_disposition={**disposition, "deduplicated": True, "source_filter": last_rows}
        )


@contextmanager
def duckdb_session(path: str | None) -> Iterator[Any]:
    """Hold the DuckDB file at `path` for a sync: its writer lock, then one connection.

    Yields the destination that loads through that connection, or None for
    other destinations (`path` None). dlt would otherwise open the file for
    each step of each load, about fifteen times a load at tens of ms each.
    The connection closes (and checkpoints) when the sync ends.
    """
    if path is None or "://" in path:
        yield None
        return
    with duckdb_writer_lock(path):
        connection = duckdb.connect(path, config={"memory_limit": DUCKDB_MEMORY_LIMIT})
        try:
            yield dlt.destinations.duckdb(credentials=connection)
        finally:
            connection.close()


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
