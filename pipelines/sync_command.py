"""`costsync sync VENDOR`: one pipeline, one workspace, or every workspace side by side.

Workspaces run in threads of one process, each its own dlt pipeline
(`<vendor>_<workspace>`), its own key, its own pacing and its own lock: one
failing never stops or corrupts another. Every workspace's configuration is
checked before the first request of any of them.
"""

from __future__ import annotations

import argparse
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from dlt.common.configuration.exceptions import (
    ConfigFieldMissingException,
    ConfigValueCannotBeCoercedException,
)
from dlt.pipeline.exceptions import PipelineStepFailed

from pipelines import runner
from pipelines.assembly import Prepared, prepare
from pipelines.console import ProgressDisplay, explain_api_error, root_cause, summary
from pipelines.destinations import DatasetBusyError, WarehouseBusyError
from sources.registry import VENDORS
from sources.shared import cancel
from sources.shared.errors import ApiError, ConfigError, RetriesExhaustedError
from sources.shared.progress import Listener, SyncProgress
from sources.shared.vendor import VendorSpec

EXIT_OK, EXIT_API, EXIT_INPUT = 0, 1, 2
BUSY = (runner.PipelineBusyError, WarehouseBusyError, DatasetBusyError)


class UsageError(Exception):
    """Bad command-line input (exit 2)."""


@dataclass
class Outcome:
    """How one workspace's sync ended: its summary, or one line saying why not, and
    whether trying again later can help (`final` False: the API kept failing, the
    dataset was busy) or not (bad configuration, a key the API refuses)."""

    prepared: Prepared
    result: runner.SyncResult | None = None
    code: int = EXIT_OK
    error: str = ""
    final: bool = True


def command_sync(args: argparse.Namespace) -> int:
    """Sync the vendor's pipeline, a workspace's, or every workspace's side by side."""
    vendor = VENDORS[args.vendor]
    prepared = [_prepare(args, vendor, workspace) for workspace in chosen(args, vendor)]
    for each in prepared:
        check_configuration(each)
    with ProgressDisplay() as display:
        outcomes = _run_all(prepared, args, display)
    for outcome in outcomes:
        if outcome.result is not None:
            print(summary(outcome.result, outcome.prepared.where, vendor))
        else:
            label = f"{outcome.prepared.pipeline.pipeline_name}: " if len(outcomes) > 1 else ""
            print(f"costsync: error: {label}{outcome.error}", file=sys.stderr)
    return exit_code([o.code for o in outcomes])


def exit_code(codes: list[int]) -> int:
    """The run's exit code: 1 when any sync the API refused, else 2 for bad input, else 0."""
    if EXIT_API in codes:
        return EXIT_API
    return max(codes, default=EXIT_OK)


def chosen(args: argparse.Namespace, vendor: VendorSpec) -> list[str | None]:
    """The workspaces the flags pick: [None] for the vendor's own pipeline."""
    configured = vendor.workspaces()
    if args.all_workspaces:
        if not configured:
            raise UsageError(
                f"--all-workspaces: {vendor.section}.workspaces lists none;"
                ' add e.g. workspaces = ["acme", "globex"] to .dlt/config.toml'
            )
        if args.dataset:
            raise UsageError("--dataset goes with one workspace, not --all-workspaces")
        return list(configured)
    if args.workspace is None and configured:
        raise UsageError(
            f"{vendor.section}.workspaces lists {', '.join(configured)}: name one with"
            " --workspace NAME, or sync them all with --all-workspaces"
        )
    return [args.workspace]


def check_configuration(prepared: Prepared) -> None:
    """Make the source once: every value is checked, before any request is sent."""
    try:
        prepared.source()
    except ConfigFieldMissingException as error:
        raise missing(error, prepared) from None
    except ConfigValueCannotBeCoercedException as error:
        rule = f"must be a {_type_name(error.hint)} (got {error.field_value!r})"
        raise ConfigError(f"{prepared.vendor.section}.{error.field_name}", rule) from None


def missing(error: ConfigFieldMissingException, prepared: Prepared) -> ConfigError:
    """The one line a missing value gets: which key, and where to set it."""
    vendor, workspace = prepared.vendor, prepared.workspace
    field = (error.fields or ["api_key"])[0]
    prefix = f"{vendor.pipeline_name(workspace).upper()}__" if workspace else ""
    env = f"{prefix}SOURCES__{vendor.name.upper()}__{field.upper()}"
    file = "secrets.toml" if field == "api_key" else "config.toml"
    section = f"{vendor.pipeline_name(workspace)}.{vendor.section}" if workspace else ""
    where = f"[{section}] in .dlt/{file}" if workspace else f".dlt/{file}"
    key = f"{vendor.section}.{field}" + (f" of workspace {workspace}" if workspace else "")
    return ConfigError(key, f"is missing: set {env} or add it to {where}")


def _prepare(args: argparse.Namespace, vendor: VendorSpec, workspace: str | None) -> Prepared:
    return prepare(
        vendor.name,
        args.destination,
        args.dataset,
        args.pipelines_dir,
        args.duckdb_path,
        workspace,
        **vendor.date_args(args.start_date, args.end_date),
    )


def _run_all(
    prepared: list[Prepared], args: argparse.Namespace, display: ProgressDisplay
) -> list[Outcome]:
    listeners = [display.track(_label(p)) for p in prepared]
    if len(prepared) == 1:
        return [_run(prepared[0], args, listeners[0])]
    with ThreadPoolExecutor(max_workers=len(prepared), thread_name_prefix="costsync") as pool:
        return list(pool.map(lambda p, listen: _run(p, args, listen), prepared, listeners))


def _run(prepared: Prepared, args: argparse.Namespace, listener: Listener) -> Outcome:
    progress = SyncProgress(listeners=[listener])
    return run_one(prepared, args.resources, args.full_refresh, progress)


def run_one(
    prepared: Prepared,
    resources: list[str] | None = None,
    full_refresh: bool = False,
    progress: SyncProgress | None = None,
    check: bool = False,
) -> Outcome:
    """One pipeline's sync (its configuration checked first when `check`); whatever
    ends it becomes its outcome — never an exception, never another workspace's."""
    try:
        if check:
            check_configuration(prepared)
        result = runner.sync(prepared, resources, full_refresh, progress)
    except PipelineStepFailed as failure:
        if cancel.stopping() or isinstance(root_cause(failure), cancel.Cancelled):
            raise KeyboardInterrupt from None  # Ctrl-C: the command reports it, once
        return _failed_step(prepared, failure, resources)
    except cancel.Cancelled:
        raise KeyboardInterrupt from None
    except BUSY as error:
        return Outcome(prepared, code=EXIT_API, error=_line(str(error)), final=False)
    except ConfigError as error:
        return Outcome(prepared, code=EXIT_INPUT, error=_line(str(error)))
    return Outcome(prepared, result)


def _failed_step(
    prepared: Prepared, failure: PipelineStepFailed, resources: list[str] | None
) -> Outcome:
    cause = root_cause(failure)
    if isinstance(cause, ConfigError):
        return Outcome(prepared, code=EXIT_INPUT, error=_line(str(cause)))
    if not isinstance(cause, ApiError):
        line = _line(f"{failure.step} step failed: {cause}")
        return Outcome(prepared, code=EXIT_API, error=line, final=False)
    line = explain_api_error(cause, prepared.vendor, resources, prepared.workspace)
    final = not (cause.retriable or isinstance(cause, RetriesExhaustedError))
    return Outcome(prepared, code=EXIT_API, error=_line(line), final=final)


def _line(message: str) -> str:
    return " ".join(message.split())


def _label(prepared: Prepared) -> str:
    return f"{prepared.pipeline.pipeline_name} → {prepared.where}"


_TYPE_NAMES: dict[object, str] = {int: "whole number", float: "number", bool: "true or false"}


def _type_name(hint: object) -> str:
    return _TYPE_NAMES.get(hint, str(hint))
