"""Run a costsync sync: one dlt pipeline, one load per date window.

A sync is a loop of `pipeline.run` calls. The first plans the windows and
loads the first of them; each later one loads the next window, until no
resource has windows left. Every load commits its data and the incremental
state together, so a sync that dies resumes at the window it was reading.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dlt
from dlt.common.destination.reference import TDestinationReferenceArg
from dlt.sources import DltSource

from sources.shared import lookahead
from sources.shared.progress import LoadScope, SyncProgress, load_scope

SourceFactory = Callable[..., DltSource]
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


def make_pipeline(
    pipeline_name: str,
    destination: TDestinationReferenceArg,
    dataset_name: str | None = None,
    pipelines_dir: str | None = None,
) -> dlt.Pipeline:
    """The dlt pipeline for one vendor; its dataset defaults to the pipeline's name."""
    return dlt.pipeline(
        pipeline_name=pipeline_name,
        destination=destination,
        dataset_name=dataset_name or pipeline_name,
        pipelines_dir=pipelines_dir,
    )


def sync(
    pipeline: dlt.Pipeline,
    make_source: SourceFactory,
    resources: list[str] | None = None,
    full_refresh: bool = False,
    progress: SyncProgress | None = None,
    location: dict[str, str] | None = None,
    destination_session: AbstractContextManager[Any] | None = None,
) -> SyncResult:
    """Load every planned window of `make_source(...)`'s resources into `pipeline`.

    `make_source()` is called once per load, inside that load's `LoadScope`;
    the first call checks the configuration, before any request.
    `location` (e.g. the DuckDB path) is remembered for `costsync status`.
    `destination_session` is entered, after the pipeline's own lock, for the
    loads; a destination it yields (e.g. one holding a DuckDB connection)
    replaces the pipeline's for them.

    Raises:
        PipelineBusyError: another sync of this pipeline is running.
    """
    progress = progress or SyncProgress()
    started = time.monotonic()
    first_scope = LoadScope(resume_only=False, max_windows=1, progress=progress)
    with load_scope(first_scope):
        first = _select(make_source(), resources)
    with pipeline_lock(pipeline), destination_session or nullcontext() as destination:
        _finish_interrupted_load(pipeline, destination)
        try:
            loads = _load_windows(
                pipeline, destination, first, first_scope, make_source, resources, full_refresh
            )
        finally:
            lookahead.stop_all()
    result = SyncResult(
        pipeline_name=pipeline.pipeline_name,
        destination=pipeline.destination.destination_name,
        dataset_name=pipeline.dataset_name,
        rows={name: progress.rows.get(name, 0) for name in first.selected_resources},
        requests=progress.stats.requests,
        retries=progress.stats.retries,
        rate_limited=progress.stats.rate_limited,
        loads=loads,
        seconds=time.monotonic() - started,
        positions=positions(pipeline),
        verification=progress.verification,
    )
    record_run(pipeline, result, location or {})
    return result


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


@contextmanager
def pipeline_lock(pipeline: dlt.Pipeline) -> Iterator[None]:
    """Hold an exclusive lock on the pipeline for the whole sync, or refuse at once."""
    path = Path(pipeline.pipelines_dir) / f".{pipeline.pipeline_name}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            raise PipelineBusyError(
                f"another sync of pipeline {pipeline.pipeline_name!r} is running ({holder});"
                " nothing was done"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}")
        handle.flush()
        try:
            yield
        finally:
            handle.truncate(0)
            fcntl.flock(handle, fcntl.LOCK_UN)


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
    pipeline: dlt.Pipeline,
    destination: Any,
    first: DltSource,
    first_scope: LoadScope,
    make_source: SourceFactory,
    resources: list[str] | None,
    full_refresh: bool,
) -> int:
    with load_scope(first_scope):
        pipeline.run(
            first, destination=destination, refresh="drop_resources" if full_refresh else None
        )
    loads = 1
    later_scope = replace(first_scope, resume_only=True)
    while first_scope.progress.has_pending:
        with load_scope(later_scope):
            pipeline.run(_select(make_source(), resources), destination=destination)
        loads += 1
    return loads


def _finish_interrupted_load(pipeline: dlt.Pipeline, destination: Any) -> None:
    """Load what an interrupted sync had already extracted, before reading more."""
    if pipeline.has_pending_data:
        pipeline.run(destination=destination)


def _select(source: DltSource, resources: list[str] | None) -> DltSource:
    return source.with_resources(*resources) if resources else source
