"""`costsync status`: per pipeline, the last successful sync, positions and row counts."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import dlt
from dlt.common.pipeline import get_dlt_pipelines_dir
from dlt.destinations.exceptions import DatabaseUndefinedRelation, DestinationConnectionError

from pipelines.console import describe_verification, unreconciled_days
from pipelines.destinations import destination_for
from pipelines.runner import last_run, last_verification, positions
from sources.registry import VENDORS
from sources.shared.vendor import VendorSpec


def command_status(args: argparse.Namespace) -> int:
    """Print what each vendor's pipelines (one per workspace, when it has workspaces)
    have loaded; exit 0 even when none has run."""
    pipelines_dir = args.pipelines_dir or get_dlt_pipelines_dir()
    for vendor in VENDORS.values():
        workspaces: list[str | None] = [*vendor.workspaces()] or [None]
        for workspace in workspaces:
            name = vendor.pipeline_name(workspace)
            print("\n".join(describe_pipeline(vendor, name, pipelines_dir, args.duckdb_path)))
    return 0


def describe_pipeline(
    vendor: VendorSpec, name: str, pipelines_dir: str, duckdb_path: str | None
) -> list[str]:
    """Lines describing `vendor`'s pipeline `name` in `pipelines_dir`."""
    if not Path(pipelines_dir, name).is_dir():
        return [f"{name}: never synced (no pipeline in {pipelines_dir})"]
    record = last_run(dlt.attach(name, pipelines_dir=pipelines_dir))
    if record is None:
        return [f"{name}: no successful sync yet (pipeline in {pipelines_dir})"]
    pipeline = _attach(name, pipelines_dir, record, duckdb_path)
    lines = [
        f"{name}: last successful sync {record['finished_at']} → {record.get('where')},"
        f" dataset {record['dataset_name']} ({record['requests']} requests, {record['seconds']} s)"
    ]
    counts: dict[str, int | None] | None = None
    try:
        counts = row_counts(pipeline, vendor.resources)
    except DestinationConnectionError as error:
        held = "lock" in str(error).lower()
        reason = "the warehouse is open in another process" if held else "no connection"
        lines.append(f"  row counts unavailable: {reason}")
    width = max(len(name) for name in vendor.resources)
    for name in vendor.resources:
        position = vendor.describe_state(name, positions(pipeline).get(name, {}))
        count = counts.get(name) if counts is not None else None
        shown = f"{'?' if counts is None else 'no table':>11}" if count is None else f"{count:>11,}"
        lines.append(f"  {name:<{width}} {shown} rows  {position}".rstrip())
    report = last_verification(pipeline)
    if report.get("at"):
        lines.append(f"  last verification {report['at']}:")
    lines += describe_verification(report, unreconciled_days(positions(pipeline)))
    return lines


def row_counts(pipeline: dlt.Pipeline, tables: tuple[str, ...]) -> dict[str, int | None]:
    """Rows per table in the warehouse; None for a table that does not exist."""
    counts: dict[str, int | None] = {}
    with pipeline.sql_client() as client:
        for table in tables:
            name = client.make_qualified_table_name(table)
            try:
                found = client.execute_sql(f"SELECT COUNT(*) FROM {name}")
                counts[table] = found[0][0] if found else None
            except DatabaseUndefinedRelation:
                counts[table] = None
    return counts


def _attach(
    name: str, pipelines_dir: str, record: dict[str, Any], duckdb_path: str | None
) -> dlt.Pipeline:
    destination_name = record["destination"]
    path = duckdb_path or record.get("duckdb_path")
    destination, _, _ = destination_for(destination_name, path)
    return dlt.attach(
        name,
        pipelines_dir=pipelines_dir,
        destination=destination,
        dataset_name=record["dataset_name"],
    )
