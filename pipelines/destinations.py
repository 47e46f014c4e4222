"""Where a sync loads: dlt destinations chosen by `--destination`."""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import re
import socket
import sys
import threading
import warnings
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any

import dlt
from dlt.common.schema.utils import get_columns_names_with_prop
from dlt.destinations.adapters import bigquery_adapter
from dlt.destinations.impl.duckdb.configuration import DuckDbCredentials
from dlt.destinations.sql_client import SqlClientBase
from dlt.sources import DltSource

from pipelines.locks import held_or_refused
from sources.shared.errors import ConfigError

if TYPE_CHECKING:
    import duckdb

DESTINATIONS = ("duckdb", "postgres", "bigquery")
_LOCK_HOLDER = re.compile(r"held in .*?\((PID \d+)\)")
DEFAULT_DUCKDB_PATH = "costsync.duckdb"
# DuckDB's working memory while loading; a larger merge spills to `<file>.tmp`
# instead, so a sync's peak memory does not grow with the rows per window.
DUCKDB_MEMORY_LIMIT = "80MB"

# How each destination names a stored row: a merge keeps the last staged row per key.
ROW_IDS = {"duckdb": "rowid", "postgres": "ctid"}
_CREDENTIALS_HELP = {
    "postgres": "DESTINATION__POSTGRES__CREDENTIALS=postgresql://user:password@host:5432/database",
    "bigquery": "DESTINATION__BIGQUERY__CREDENTIALS__PROJECT_ID, __PRIVATE_KEY, __CLIENT_EMAIL",
}


def configured_destination() -> str:
    """The destination dlt's configuration names (`destination_type`, env
    DESTINATION_TYPE: duckdb, postgres or bigquery; default duckdb), for runs with no
    command line (Dagster, Airflow)."""
    value: Any = dlt.config.get("destination_type")
    name = str(value or "duckdb")
    if name not in DESTINATIONS:
        raise ConfigError(
            "destination_type", f"must be one of {', '.join(DESTINATIONS)} (got {name!r})"
        )
    return name


class WarehouseBusyError(RuntimeError):
    """Another process holds the warehouse (a DuckDB file) that a sync needs."""


def destination_for(name: str, duckdb_path: str | None) -> tuple[Any, str, str | None]:
    """The dlt destination for `--destination`, where it is in words, and the DuckDB file.

    DuckDB's file: `--duckdb-path`, else dlt's `destination.duckdb.credentials`,
    else costsync.duckdb in the working directory. A path that cannot be a
    DuckDB file raises `ConfigError`.
    """
    if name == "duckdb":
        configured: Any = dlt.secrets.get("destination.duckdb.credentials")
        key = "--duckdb-path" if duckdb_path else "destination.duckdb.credentials"
        path = duckdb_path or (configured if isinstance(configured, str) else DEFAULT_DUCKDB_PATH)
        if "://" not in path:
            path = check_duckdb_path(key, os.path.abspath(path))
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


def check_duckdb_path(key: str, path: str) -> str:
    """`path` must name a DuckDB file (existing or not) in a folder that exists."""
    target = Path(path)
    if target.is_dir():
        raise ConfigError(
            key, f"{path} is a folder; name a file in it, e.g. {target / DEFAULT_DUCKDB_PATH}"
        )
    if not target.parent.is_dir():
        raise ConfigError(key, f"the folder {target.parent} does not exist; create it first")
    if target.exists() and not target.is_file():
        raise ConfigError(key, f"{path} is not a regular file")
    return path


def check_destination(destination: Any) -> None:
    """Resolve the destination's configuration now, so a missing credential is found
    before any API request; raises `ConfigError` naming what to set."""
    credentials = _credentials(destination)
    if credentials is None or not credentials.is_resolved():
        name = destination.destination_name
        how = _CREDENTIALS_HELP.get(name, f"destination.{name}.credentials")
        raise ConfigError(f"destination.{name}.credentials", f"are missing: set {how}")


def _credentials(destination: Any) -> Any:
    """The destination's credentials as configured (None when there are none)."""
    return destination.configuration(None, accept_partial=True).credentials


def row_id_of(destination: str) -> str | None:
    """How `destination` names a stored row (None: it has no such name)."""
    return ROW_IDS.get(destination)


def apply_bigquery_hints(source: DltSource, hints: Mapping[str, Mapping[str, Any]]) -> None:
    """Give the source's resources their BigQuery layout (partition, cluster)."""
    for resource_name, resource_hints in hints.items():
        if resource_name in source.resources:
            bigquery_adapter(source.resources[resource_name], **resource_hints)


def keep_bigquery_clustering(
    pipeline: dlt.Pipeline, hints: Mapping[str, Mapping[str, Any]]
) -> None:
    """Give `pipeline`'s BigQuery tables the clustering their `hints` promise.

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
        for name, table_hints in hints.items():
            fields = table_hints.get("cluster")
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
            staging_table = client.make_qualified_table_name(resource.name)
        group_by = ", ".join(map(client.escape_column_name, keys))
        last_rows = f"{row_id} IN (SELECT max({row_id}) FROM {staging_table} GROUP BY {group_by})"
        merge: Any = {**disposition, "deduplicated": True, "source_filter": last_rows}
        resource.apply_hints(write_disposition=merge)


class DatasetBusyError(RuntimeError):
    """Another sync is loading the same destination dataset."""


@contextmanager
def destination_session(pipeline: dlt.Pipeline, duckdb_path: str | None) -> Iterator[Any]:
    """Everything a sync holds while it loads `pipeline`'s dataset: the dataset's lock
    (one sync per dataset, whatever pipelines folder or host it runs from), then for
    DuckDB the file's writer lock and one connection. Yields the destination to load
    through (None: the pipeline's own).

    Raises:
        DatasetBusyError: another sync holds the dataset; nothing was done.
    """
    name = pipeline.destination.destination_name
    with (
        dataset_lock(pipeline, duckdb_path),
        duckdb_session(duckdb_path if name == "duckdb" else None) as destination,
    ):
        yield destination


def dataset_lock(pipeline: dlt.Pipeline, duckdb_path: str | None) -> AbstractContextManager[None]:
    """The lock that keeps a second sync off `pipeline`'s dataset: a lock file beside a
    DuckDB file, a Postgres advisory lock; BigQuery has none (see the README)."""
    name = pipeline.destination.destination_name
    if name == "duckdb" and duckdb_path and "://" not in duckdb_path:
        path = Path(f"{duckdb_path}.{pipeline.dataset_name}.costsync-lock")
        return held_or_refused(path, _holder(pipeline), lambda holder: _busy(pipeline, holder))
    if name == "postgres":
        return _postgres_lock(pipeline)
    return nullcontext()


@contextmanager
def _postgres_lock(pipeline: dlt.Pipeline) -> Iterator[None]:
    """A session advisory lock keyed on the dataset, on a connection of its own that
    names the sync (application_name), held until the sync ends."""
    import psycopg2

    credentials: Any = _credentials(pipeline.destination)
    key = int.from_bytes(
        hashlib.sha256(f"costsync:{pipeline.dataset_name}".encode()).digest()[:8],
        "big",
        signed=True,
    )
    connection = psycopg2.connect(
        credentials.to_native_representation(),
        application_name=_holder(pipeline)[:63],
        connect_timeout=30,
    )
    connection.autocommit = True
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_lock(%s)", (key,))
            if not cursor.fetchone()[0]:
                cursor.execute(_HOLDER_SQL, (key >> 32, key & 0xFFFFFFFF))
                found = cursor.fetchone()
                raise _busy(pipeline, found[0] if found else "")
        yield
    finally:
        connection.close()  # ends the session, and so the lock


# Who holds an advisory lock on a bigint key: its high and low 32 bits, as pg_locks shows them.
_HOLDER_SQL = """
SELECT a.application_name || ' since ' || to_char(a.backend_start, 'YYYY-MM-DD HH24:MI:SS TZ')
FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
  AND l.classid::bigint = (%s::bigint & 4294967295) AND l.objid::bigint = %s
"""


def _holder(pipeline: dlt.Pipeline) -> str:
    return f"costsync {pipeline.pipeline_name} pid {os.getpid()} on {socket.gethostname()}"


def _busy(pipeline: dlt.Pipeline, holder: str) -> DatasetBusyError:
    return DatasetBusyError(
        f"another sync is loading dataset {pipeline.dataset_name!r}"
        f" ({holder or 'another process'}); nothing was done"
    )


@contextmanager
def duckdb_session(path: str | None) -> Iterator[Any]:
    """Hold the DuckDB file at `path` for a sync: its writer lock, then one connection.

    Yields the destination that loads through that connection, or None for
    other destinations (`path` None). dlt would otherwise open the file for
    each step of each load, about fifteen times a load at tens of ms each.
    Syncs side by side in one process (workspaces) share the file: each gets a
    cursor of its own on one database. The last to end closes it (a checkpoint).
    """
    if path is None or "://" in path:
        yield None
        return
    with _shared_duckdb(path) as database:
        cursor = database.cursor()
        try:
            yield dlt.destinations.duckdb(credentials=cursor)
        finally:
            cursor.close()


class _SharedFile:
    """A DuckDB file this process writes: its lock, its database, how many syncs use it."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.users = 0
        self.writer: AbstractContextManager[None] | None = None
        self.database: duckdb.DuckDBPyConnection | None = None


_files: dict[str, _SharedFile] = {}
_files_lock = threading.Lock()


@contextmanager
def _shared_duckdb(path: str) -> Iterator[duckdb.DuckDBPyConnection]:
    with _files_lock:
        shared = _files.setdefault(path, _SharedFile())
    with shared.lock:
        if shared.users == 0:
            shared.writer = duckdb_writer_lock(path)
            shared.writer.__enter__()
            try:
                shared.database = connect_duckdb(path)
            except BaseException:
                shared.writer.__exit__(None, None, None)
                raise
        shared.users += 1
    try:
        assert shared.database is not None
        yield shared.database
    finally:
        with shared.lock:
            shared.users -= 1
            if shared.users == 0 and shared.database is not None and shared.writer is not None:
                shared.database.close()
                shared.writer.__exit__(None, None, None)
                shared.database = None


def connect_duckdb(path: str, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """A connection to the DuckDB file at `path`, or `WarehouseBusyError` when another
    process holds it (DuckDB allows one writing process)."""
    import duckdb  # here, not at the top: a sync into Postgres never loads DuckDB

    config: dict[str, Any] = {"memory_limit": DUCKDB_MEMORY_LIMIT} if not read_only else {}
    try:
        return duckdb.connect(path, read_only=read_only, config=config)
    except duckdb.IOException as error:
        if "lock" not in str(error).lower():
            raise
        holder = _LOCK_HOLDER.search(str(error))
        who = f" ({holder.group(1)})" if holder else ""
        raise WarehouseBusyError(
            f"the DuckDB file {path} is open in another process{who}; close it there"
            " (or wait for it to finish) and run again; nothing was done"
        ) from None


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
