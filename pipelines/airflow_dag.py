"""The Airflow DAG `costsync`: every vendor, and every workspace of each, synced daily.

Put this file in Airflow's dags folder (or a file there that imports `dag` from
`pipelines.airflow_dag`), in an Airflow environment with `costsync[airflow]` installed.

One task group per pipeline: dlt's `PipelineTasksGroup`, named after the pipeline it
syncs — `stackspend` and `levelfour`, or with workspaces configured
(`[sources.stackspend] workspaces = ["acme", "globex"]`) `stackspend_acme` and
`stackspend_globex` instead of `stackspend`. No two groups share a pipeline, so no two
runs race on one pipeline's state. Parsing the file reads the workspaces from dlt's
configuration and nothing else: no request is sent and no key is read; a missing or
refused key fails its own group's task when it runs.

Each group holds one task, `sync`, which runs costsync's own sync (`runner.sync`, through
`sync_command.run_one`, as `costsync sync` does)
rather than the helper's `add_run`. `add_run` makes a task of one `pipeline.run(data)`
on the pipeline's own destination and has no place to hold anything around that run,
while a costsync sync is more than one run: it holds the dataset's lock (one sync per
dataset at a time, whatever host it runs on) and, for DuckDB, one connection to the
file for all its loads; it loads one date window per load, so a backfill that dies
resumes at the window it was reading; it checks every value before the first request
and records what its verification found. From the group the task keeps what makes it
dlt's: the project folder is the dags folder (`<dags_folder>/.dlt/config.toml` and
`secrets.toml` are read, environment variables first), and each parse gets a fresh
working folder, removed after the run (`wipe_local_data`), so every run restores its
pipeline's state from its own dataset in the warehouse.

A failure fails only its group's task, with costsync's one-line message: a
configuration error or a key the API refuses (revoked, missing a scope) is final and
not retried; what another try may not meet (the API kept failing, the dataset busy
with another sync) is retried twice, ten minutes apart.

The warehouse is dlt's `destination_type` (env `DESTINATION_TYPE`: duckdb, the
default, postgres or bigquery) with its usual credentials; DuckDB's file is
`DESTINATION__DUCKDB__CREDENTIALS`, best an absolute path.
"""

from __future__ import annotations

import functools
import logging
import os
import shutil
from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.configuration import conf
from airflow.providers.standard.operators.python import PythonOperator
from airflow.sdk import DAG
from airflow.sdk.exceptions import AirflowFailException
from dlt.common.configuration.container import Container
from dlt.common.configuration.specs.pluggable_run_context import PluggableRunContext
from dlt.common.known_env import DLT_DATA_DIR, DLT_PROJECT_DIR
from dlt.helpers.airflow_helper import PipelineTasksGroup

from pipelines.assembly import prepare
from pipelines.console import summary
from pipelines.destinations import configured_destination
from pipelines.sync_command import run_one
from sources.registry import VENDORS
from sources.shared.errors import ConfigError
from sources.shared.progress import Listener, SyncProgress

DAG_ID = "costsync"
DEFAULT_ARGS: dict[str, Any] = {"retries": 2, "retry_delay": timedelta(minutes=10)}

log = logging.getLogger("costsync.airflow")


class SyncFailedError(RuntimeError):
    """A sync failed for a reason another try may not meet: Airflow retries it."""


def build_dag() -> DAG:
    """The DAG `costsync`: daily, no catch-up, one run at a time, one task group per
    vendor and workspace."""
    read_dlt_config_from_dags_folder()
    with DAG(
        DAG_ID,
        schedule="@daily",
        start_date=datetime(2025, 1, 1, tzinfo=UTC),
        catchup=False,
        max_active_runs=1,
        default_args=DEFAULT_ARGS,
        tags=["costsync", "dlt"],
        doc_md=__doc__,
    ) as costsync:
        for vendor in VENDORS.values():
            workspaces: list[str | None] = [*vendor.workspaces()] or [None]
            for workspace in workspaces:
                sync_group(vendor.name, workspace)
    return costsync


def read_dlt_config_from_dags_folder() -> None:
    """Make the dags folder dlt's project folder, as `PipelineTasksGroup` does for its
    runs, so that the workspaces come from the same `.dlt/` as the syncs' values."""
    os.environ[DLT_PROJECT_DIR] = conf.get("core", "dags_folder")
    if PluggableRunContext in Container():
        Container()[PluggableRunContext].reload_providers()


def sync_group(vendor: str, workspace: str | None) -> PipelineTasksGroup:
    """The task group of one pipeline (`<vendor>` or `<vendor>_<workspace>`): its task
    `sync` runs costsync's sync in the fresh working folder the group made."""
    name = VENDORS[vendor].pipeline_name(workspace)
    group = PipelineTasksGroup(name, wipe_local_data=True, tooltip=f"costsync sync {name}")
    pipelines_dir = os.path.join(os.environ[DLT_DATA_DIR], "pipelines")
    task = functools.partial(sync, vendor, workspace, pipelines_dir, group.wipe_local_data)
    with group:
        PythonOperator(task_id="sync", python_callable=task)
    return group


def sync(
    vendor: str, workspace: str | None, pipelines_dir: str, wipe_local_data: bool = True
) -> dict[str, int]:
    """Task: costsync's sync of the vendor's pipeline or one workspace's, into dlt's
    `destination_type` (default duckdb); returns the rows loaded per table.

    Raises:
        AirflowFailException: bad configuration or a refused key (one line; no retry).
        SyncFailedError: a failure another try may not meet (one line; retried).
    """
    try:
        prepared = prepare(
            vendor, configured_destination(), pipelines_dir=pipelines_dir, workspace=workspace
        )
    except ConfigError as error:
        raise AirflowFailException(" ".join(str(error).split())) from None
    try:
        progress = SyncProgress(listeners=[_log_windows()])
        outcome = run_one(prepared, progress=progress, check=True)
    finally:
        if wipe_local_data:
            shutil.rmtree(prepared.pipeline.working_dir, ignore_errors=True)
    if outcome.result is None:
        raise (AirflowFailException if outcome.final else SyncFailedError)(outcome.error)
    log.info(summary(outcome.result, prepared.where, prepared.vendor))
    return outcome.result.rows


def _log_windows() -> Listener:
    """A progress listener logging each window committed, so the task log shows a
    backfill advance."""
    logged = [0]

    def listen(progress: SyncProgress) -> None:
        done, planned = progress.windows
        if done > logged[0]:
            logged[0] = done
            rows = sum(progress.rows.values())
            log.info(
                "%d/%d windows, %d rows, %d requests", done, planned, rows, progress.stats.requests
            )

    return listen


dag = build_dag()
