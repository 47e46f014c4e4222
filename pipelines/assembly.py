"""The one place that turns "vendor + destination" into a ready dlt pipeline and source.

Everything that makes a costsync load right for its warehouse lives behind
`prepare`: the merge that keeps one staged row per key (DuckDB, Postgres), the
BigQuery partitions and clusters, one DuckDB connection for a whole sync, the
lock that keeps a second sync off the dataset. The CLI, the demo, the pipeline
scripts and the orchestrators all start here:

    prepared = prepare("stackspend", "duckdb", duckdb_path="costs.duckdb")
    with prepared.session() as destination:
        prepared.pipeline.run(prepared.source(), destination=destination)

(`pipelines.runner.sync(prepared, ...)` does the same one window per load.)
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import dlt
from dlt.sources import DltSource

from pipelines.destinations import (
    apply_bigquery_hints,
    check_destination,
    destination_for,
    destination_session,
    keep_bigquery_clustering,
    keep_one_staged_row,
    row_id_of,
)
from sources.registry import VENDORS
from sources.shared.errors import ConfigError
from sources.shared.vendor import VendorSpec


@dataclass
class Prepared:
    """A vendor's dlt pipeline on one destination, and how to make its sources.

    Attributes:
        vendor: the vendor's record.
        workspace: the vendor's workspace this pipeline syncs, if any.
        pipeline: the dlt pipeline (`<vendor>` or `<vendor>_<workspace>`; its dataset
            too, by default).
        where: the destination in words, e.g. "duckdb /srv/costs.duckdb".
        duckdb_path: the DuckDB file, for DuckDB.
        arguments: source arguments every `source()` call gets (dates, keys, URLs...).
    """

    vendor: VendorSpec
    workspace: str | None
    pipeline: dlt.Pipeline
    where: str
    duckdb_path: str | None = None
    arguments: dict[str, Any] = field(default_factory=dict)

    def source(self, **arguments: Any) -> DltSource:
        """The vendor's source with this destination's hints applied. Its configuration
        comes from the pipeline's own section first (`[<pipeline>.sources.<vendor>]`,
        a workspace's), then from `[sources.<vendor>]`."""
        self.pipeline.activate()
        source = self.vendor.source(**{**self.arguments, **arguments})
        destination = self.pipeline.destination.destination_name
        if destination == "bigquery":
            apply_bigquery_hints(source, self.vendor.bigquery_hints)
        row_id = row_id_of(destination)
        if row_id is not None:
            keep_one_staged_row(source, row_id, self.pipeline.sql_client())
        return source

    @contextmanager
    def session(self) -> Iterator[Any]:
        """Hold the dataset (and a DuckDB file's connection) for a sync's loads; yields
        the destination to load through (None: the pipeline's own). On leaving it,
        BigQuery tables get the promised clustering."""
        with destination_session(self.pipeline, self.duckdb_path) as destination:
            yield destination
        keep_bigquery_clustering(self.pipeline, self.vendor.bigquery_hints)

    @property
    def location(self) -> dict[str, str]:
        """Where the sync loads, as `costsync status` finds it again."""
        return {
            "where": self.where,
            **({"duckdb_path": self.duckdb_path} if self.duckdb_path else {}),
        }


def prepare(
    vendor: str,
    destination: str = "duckdb",
    dataset: str | None = None,
    pipelines_dir: str | None = None,
    duckdb_path: str | None = None,
    workspace: str | None = None,
    **arguments: Any,
) -> Prepared:
    """The pipeline of `vendor` (or of its `workspace`) on `destination` (duckdb,
    postgres, bigquery), checked.

    `arguments` go to every source made (e.g. `start_date`, `api_key`); the rest
    comes from dlt's configuration. Raises `ConfigError` for a workspace that is not
    configured, a DuckDB path that cannot be a file, or missing destination credentials.
    """
    spec = VENDORS[vendor]
    if workspace is not None and workspace not in spec.workspaces():
        configured = ", ".join(spec.workspaces()) or "none"
        raise ConfigError(
            f"{spec.section}.workspaces",
            f"lists no workspace {workspace!r} (configured: {configured}); add it there",
        )
    dlt_destination, where, path = destination_for(destination, duckdb_path)
    check_destination(dlt_destination)
    name = spec.pipeline_name(workspace)
    where_state: dict[str, Any] = {"pipelines_dir": pipelines_dir} if pipelines_dir else {}
    pipeline = dlt.pipeline(
        pipeline_name=name, destination=dlt_destination, dataset_name=dataset or name, **where_state
    )
    return Prepared(spec, workspace, pipeline, where, path, dict(arguments))
