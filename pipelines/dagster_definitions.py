"""costsync on Dagster: one dlt asset group per vendor and workspace, synced as costsync syncs.

    dagster dev -f pipelines/dagster_definitions.py
    dagster asset materialize -f pipelines/dagster_definitions.py --select '*'

Each vendor's pipeline (`stackspend`), or with workspaces configured each workspace's
(`stackspend_acme`), is one dagster-dlt multi-asset: its tables are the assets
(`stackspend_acme/line_items`) and its group is named after the pipeline, so no two
assets share a pipeline. Materializing a group runs `pipelines.runner.sync` on it: one
load per date window, verification, the pipeline and dataset locks, one DuckDB
connection, costsync's merges. (dagster-dlt's own `DagsterDltResource.run` would load
everything in one bare `pipeline.run`, after dropping the local state that resumes an
interrupted sync.)

The definitions read only which workspaces are configured and dlt's `destination_type`
(env `DESTINATION_TYPE`: duckdb, the default, postgres or bigquery). Keys, URLs, dates
and destination credentials are read when a group materializes, from dlt's usual configuration, as
`costsync sync` reads them: what is missing or wrong fails that group with one line
naming the key to set, and the others still load.
"""

# No `from __future__ import annotations`: Dagster reads the asset function's
# `context` annotation at definition time and needs the class, not its name.
import importlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import dlt
from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    AssetSelection,
    AssetSpec,
    Definitions,
    Failure,
    MaterializeResult,
    ScheduleDefinition,
    define_asset_job,
)
from dagster_dlt import DagsterDltTranslator, dlt_assets
from dagster_dlt.translator import DltResourceTranslatorData
from dlt.sources import DltResource, DltSource

from pipelines import runner
from pipelines.assembly import prepare
from pipelines.console import (
    describe_verification,
    summary,
    unreconciled_days,
)
from pipelines.destinations import configured_destination
from pipelines.sync_command import run_one
from sources.registry import VENDORS
from sources.shared.errors import ConfigError
from sources.shared.vendor import VendorSpec

JOB_NAME = "costsync"
SCHEDULE_NAME = "costsync_daily"
DAILY_AT_0600_UTC = "0 6 * * *"


@dataclass
class CostsyncTranslator(DagsterDltTranslator):
    """Asset keys `<pipeline>/<table>` in the group `<pipeline>`; the tables are loaded
    from the vendor's API, which is no Dagster asset, so they have no upstream assets."""

    pipeline_name: str

    def get_asset_spec(self, data: DltResourceTranslatorData) -> AssetSpec:
        """The table's asset: dagster-dlt's spec (description, kinds) under costsync's key."""
        table = data.resource.name
        return (
            super()
            .get_asset_spec(data)
            .replace_attributes(
                key=AssetKey([self.pipeline_name, table]), deps=[], group_name=self.pipeline_name
            )
            .merge_attributes(metadata={"dagster/table_name": f"{self.pipeline_name}.{table}"})
        )


def build_definitions() -> Definitions:
    """Every vendor's and workspace's asset group, a job of them all and its daily schedule."""
    destination = destination_name()
    assets = [
        sync_assets(vendor, workspace, destination)
        for vendor in VENDORS.values()
        for workspace in workspaces_of(vendor)
    ]
    job = define_asset_job(
        JOB_NAME, selection=AssetSelection.all(), description="Sync every vendor and workspace."
    )
    schedule = ScheduleDefinition(
        name=SCHEDULE_NAME, job=job, cron_schedule=DAILY_AT_0600_UTC, execution_timezone="UTC"
    )
    return Definitions(assets=assets, jobs=[job], schedules=[schedule])


def workspaces_of(vendor: VendorSpec) -> list[str | None]:
    """The vendor's configured workspaces, or [None]: its own pipeline."""
    return [*vendor.workspaces()] or [None]


def destination_name() -> str:
    """The destination every group loads: dlt's `destination_type` (default duckdb)."""
    return configured_destination()


def sync_assets(vendor: VendorSpec, workspace: str | None, destination: str) -> AssetsDefinition:
    """The asset group of one pipeline: `vendor`'s own, or its `workspace`'s."""
    name = vendor.pipeline_name(workspace)

    @dlt_assets(
        dlt_source=declared_source(vendor),
        dlt_pipeline=dlt.pipeline(pipeline_name=name, destination=destination, dataset_name=name),
        name=name,
        dagster_dlt_translator=CostsyncTranslator(pipeline_name=name),
    )
    def sync(context: AssetExecutionContext) -> Iterator[MaterializeResult[None]]:
        yield from materialize(context, vendor, workspace, destination)

    return sync


def declared_source(vendor: VendorSpec) -> DltSource:
    """A source holding the vendor's resources as its module declares them, for the asset
    specs. Calling the source function would resolve its configuration (a missing key
    would fail every definition); the materialization calls it."""
    module = importlib.import_module(vendor.source.__module__)
    declared = {r.name: r for r in vars(module).values() if isinstance(r, DltResource)}
    resources = [declared[name] for name in vendor.resources]
    return DltSource(dlt.Schema(vendor.name), vendor.name, resources)


def materialize(
    context: AssetExecutionContext, vendor: VendorSpec, workspace: str | None, destination: str
) -> Iterator[MaterializeResult[None]]:
    """Sync the selected tables of the pipeline, as `costsync sync` does, and report each."""
    keys = {key.path[-1]: key for key in context.selected_asset_keys}
    resources = [name for name in vendor.resources if name in keys] if context.is_subset else None
    try:
        prepared = prepare(vendor.name, destination, workspace=workspace)
    except ConfigError as error:
        raise Failure(description=f"{vendor.pipeline_name(workspace)}: {error}") from None
    outcome = run_one(prepared, resources, check=True)
    if outcome.result is None:
        raise Failure(description=f"{vendor.pipeline_name(workspace)}: {outcome.error}")
    result = outcome.result
    context.log.info(summary(result, prepared.where, vendor))
    for table, rows in result.rows.items():
        yield MaterializeResult(
            asset_key=keys[table], metadata=metadata(result, vendor, table, rows)
        )


def metadata(
    result: runner.SyncResult, vendor: VendorSpec, table: str, rows: int
) -> dict[str, Any]:
    """What the sync did for `table`, and the whole sync's requests and verification."""
    unreconciled = unreconciled_days(result.positions)
    verification = describe_verification(result.verification, unreconciled)
    return {
        "rows_loaded": rows,
        "position": vendor.describe_state(table, result.positions.get(table, {})) or "none",
        "requests": result.requests,
        "retries": result.retries,
        "rate_limited": result.rate_limited,
        "loads": result.loads,
        "seconds": round(result.seconds, 3),
        "dataset_name": result.dataset_name,
        "destination": result.destination,
        "verification": "\n".join(line.strip() for line in verification) or "none",
        "dagster/table_name": f"{result.dataset_name}.{table}",
    }


defs = build_definitions()
