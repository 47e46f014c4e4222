"""Run a costsync sync: one dlt pipeline, one load per date window.

A sync is a loop of `pipeline.run` calls. The first plans the windows and
loads the first of them; each later one loads the next window, until no
resource has windows left. Every load commits its data and the incremental
state together, so a sync that dies resumes at the window it was reading.
"""

from __future__ import annotations

import json
import os
import time
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dlt
from dlt.sources import DltSource

from pipelines.assembly import Prepared
from pipelines.locks import held_or_refused
from sources.shared import lookahead
from sources.shared.progress import LoadScope, SyncProgress

RUN_RECORD = "costsync_runs.json"


class PipelineBusyError(RuntimeError):
    """Another sync of the same pipeline holds its lock."""


@dataclass
class SyncResult:
    """What a finished sync did."""

    pipeline_name: str
    destination: str
    dataset_name: str
    rows: dict[str, int]
    requests: int
    retries: int
    rate_limited: int
    loads: int
    seconds: float
    positions: dict[str, dict[str, Any]] = field(default_factory=dict)
    verification: dict[str, Any] = field(default_factory=dict)


def sync(
    prepared: Prepared,
    resources: list[str] | None = None,
    full_refresh: bool = False,
    progress: SyncProgress | None = None,
) -> SyncResult:
    """Load every planned window of the prepared vendor's resources, one load each.

    `prepared.source(load=...)` is made once per load, with that load's
    `LoadScope`; the first one checks the configuration, before any request.
    The loads run inside `prepared.session()`, after the pipeline's own lock.

    Raises:
        PipelineBusyError: another sync of this pipeline is running.
    """
    pipeline = prepared.pipeline
    progress = progress or SyncProgress()
    started = time.monotonic()
    first_scope = LoadScope(resume_only=False, max_windows=1, progress=progress)
    first = _select(prepared.source(load=first_scope), resources)
    with pipeline_lock(pipeline), prepared.session() as destination:
        _finish_interrupted_load(pipeline, destination)
        try:
            loads = _load_windows(
                prepared, destination, first, first_scope, resources, full_refresh
            )
        finally:
            lookahead.stop_all()
    result = _result(pipeline, progress, list(first.selected_resources), loads, started)
    record_run(pipeline, result, prepared.location)
    return result


def _result(
    pipeline: dlt.Pipeline, progress: SyncProgress, resources: list[str], loads: int, started: float
) -> SyncResult:
    return SyncResult(
        pipeline_name=pipeline.pipeline_name,
        destination=pipeline.destination.destination_name,
        dataset_name=pipeline.dataset_name,
        rows={name: progress.rows.get(name, 0) for name in resources},
        requests=progress.stats.requests,
        retries=progress.stats.retries,
        rate_limited=progress.stats.rate_limited,
        loads=loads,
        seconds=time.monotonic() - started,
        positions=positions(pipeline),
        verification=progress.verification,
    )


def last_verification(pipeline: dlt.Pipeline) -> dict[str, Any]:
    """What the pipeline's last verification checked and found, from its state."""
    for source_state in pipeline.state.get("sources", {}).values():
        if source_state.get("last_verification"):
            return dict(source_state["last_verification"])
    return {}


def positions(pipeline: dlt.Pipeline) -> dict[str, dict[str, Any]]:
    """Each resource's incremental position, from the pipeline state."""
    found: dict[str, dict[str, Any]] = {}
    for source_state in pipeline.state.get("sources", {}).values():
        for name, state in source_state.get("resources", {}).items():
            found[name] = {k: v for k, v in state.items() if v not in (None, [], {})}
    return found


def pipeline_lock(pipeline: dlt.Pipeline) -> AbstractContextManager[None]:
    """Hold an exclusive lock on the pipeline for the whole sync, or refuse at once."""
    path = Path(pipeline.pipelines_dir) / f".{pipeline.pipeline_name}.lock"

    def refuse(holder: str) -> PipelineBusyError:
        return PipelineBusyError(
            f"another sync of pipeline {pipeline.pipeline_name!r} is running ({holder});"
            " nothing was done"
        )

    return held_or_refused(path, f"pid {os.getpid()}", refuse)


def record_run(pipeline: dlt.Pipeline, result: SyncResult, location: dict[str, str]) -> None:
    """Remember the last successful sync in the pipeline's working folder."""
    record = {
        **location,
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "destination": result.destination,
        "dataset_name": result.dataset_name,
        "rows": result.rows,
        "requests": result.requests,
        "seconds": round(result.seconds, 3),
    }
    Path(pipeline.working_dir, RUN_RECORD).write_text(json.dumps(record, indent=2))


def last_run(pipeline: dlt.Pipeline) -> dict[str, Any] | None:
    """The record `record_run` left, or None if no sync has succeeded here."""
    path = Path(pipeline.working_dir, RUN_RECORD)
    return json.loads(path.read_text()) if path.exists() else None


def _load_windows(
    prepared: Prepared,
    destination: Any,
    first: DltSource,
    first_scope: LoadScope,
    resources: list[str] | None,
    full_refresh: bool,
) -> int:
    pipeline = prepared.pipeline
    if full_refresh:
        pipeline.run(first, destination=destination, refresh="drop_resources")
    else:
        pipeline.run(first, destination=destination)
    loads = 1
    later_scope = replace(first_scope, resume_only=True)
    while first_scope.progress.has_pending:
        source = _select(prepared.source(load=later_scope), resources)
        pipeline.run(source, destination=destination)
        loads += 1
    return loads


def _finish_interrupted_load(pipeline: dlt.Pipeline, destination: Any) -> None:
    """Load what an interrupted sync had already extracted, before reading more."""
    if pipeline.has_pending_data:
        pipeline.run(destination=destination)


def _select(source: DltSource, resources: list[str] | None) -> DltSource:
    return source.with_resources(*resources) if resources else source
