"""The costsync command line: sync, demo, sandbox, status, report.

Exit codes: 0 success; 1 the API refused or retries ran out (nothing
half-loaded); 2 bad command-line or configuration input, found before any
request is sent.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any, NoReturn

from pipelines import memory, runner, sync_command
from pipelines.destinations import (
    DEFAULT_DUCKDB_PATH,
    DESTINATIONS,
    DatasetBusyError,
    WarehouseBusyError,
)
from pipelines.sync_command import UsageError
from sources.registry import VENDORS
from sources.shared import cancel
from sources.shared.checks import parse_day
from sources.shared.errors import ConfigError
from sources.shared.vendor import VendorSpec, check_workspace

EXIT_OK, EXIT_API, EXIT_INPUT = 0, 1, 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report it
# A dataset becomes a schema name in every warehouse: keep it a plain identifier.
DATASET_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see: {self.prog} --help)")


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the `costsync` console script."""
    code = run(argv)
    if code == EXIT_INTERRUPTED:
        # Threads still in a request are not waited for: a sync stopped at any point
        # is finished by the next one.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


def run(argv: Sequence[str] | None = None) -> int:
    """Run one command and return its exit code."""
    os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")
    memory.keep_small()
    logging.basicConfig(level=logging.WARNING, format="costsync: %(message)s")
    # retries are shown as they happen on a terminal; under cron a failed run prints one line
    logging.getLogger("costsync").setLevel(logging.INFO if _on_terminal() else logging.WARNING)
    try:
        args = build_parser().parse_args(argv)
        with _interruptible():
            return int(args.handler(args))
    except UsageError as error:
        return _fail(EXIT_INPUT, str(error))
    except ConfigError as error:
        return _fail(EXIT_INPUT, str(error))
    except (runner.PipelineBusyError, WarehouseBusyError, DatasetBusyError) as error:
        return _fail(EXIT_API, str(error))
    except KeyboardInterrupt:
        return _fail(EXIT_INTERRUPTED, "interrupted; the next sync resumes where this one stopped")


def _on_terminal() -> bool:
    return sys.stderr.isatty()


@contextmanager
def _interruptible() -> Iterator[None]:
    """Ctrl-C stops every wait of the command at once, in every thread (a sync's
    background reads may be sitting out a 429's Retry-After of minutes)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: Any) -> None:
        cancel.stop_everything()
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGINT, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        cancel.reset()


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every command."""
    parser = _Parser(prog="costsync", description="Sync FinOps cost data into a warehouse.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    _add_sync(commands)
    _add_demo(commands)
    _add_sandbox(commands)
    _add_status(commands)
    _add_check(commands)
    _add_report(commands)
    return parser


def _add_sync(commands: Any) -> None:
    sync = commands.add_parser("sync", help="sync one vendor's data into the warehouse")
    sync.add_argument("vendor", choices=sorted(VENDORS))
    sync.add_argument("--destination", choices=DESTINATIONS, default="duckdb")
    sync.add_argument("--dataset", help="dataset (schema) name; default: the vendor's name")
    sync.add_argument("--resources", type=_resource_list, help="comma-separated, e.g. line_items")
    sync.add_argument("--start-date", type=_day("--start-date"), metavar="YYYY-MM-DD")
    sync.add_argument("--end-date", type=_day("--end-date"), metavar="YYYY-MM-DD")
    sync.add_argument("--duckdb-path", help=f"DuckDB file; default {DEFAULT_DUCKDB_PATH}")
    sync.add_argument("--pipelines-dir", help="where dlt keeps pipeline state")
    sync.add_argument("--full-refresh", action="store_true", help="drop the tables and reload")
    which = sync.add_mutually_exclusive_group()
    which.add_argument("--workspace", type=_workspace, help="sync one configured workspace")
    which.add_argument(
        "--all-workspaces", action="store_true", help="sync every configured workspace at once"
    )
    sync.set_defaults(handler=command_sync)


def command_sync(args: argparse.Namespace) -> int:
    """`costsync sync VENDOR ...`"""
    _check_sync_args(args, VENDORS[args.vendor])
    return sync_command.command_sync(args)


def _add_demo(commands: Any) -> None:
    demo = commands.add_parser("demo", help="sync the bundled sandbox APIs into a DuckDB file")
    demo.add_argument("--duckdb-path", default="costsync_demo.duckdb")
    demo.set_defaults(handler=_lazy("pipelines.demo", "command_demo"))


def _add_sandbox(commands: Any) -> None:
    sandbox = commands.add_parser("sandbox", help="serve the sandbox APIs until interrupted")
    sandbox.add_argument("--host", default="127.0.0.1")
    sandbox.add_argument("--port", type=int, default=8765)
    sandbox.add_argument("--requests-per-minute", type=int, help="enforce a rate limit per key")
    sandbox.add_argument("--line-items-per-day", type=int, default=40)
    sandbox.add_argument("--days", type=int, default=120, help="days of data ending today")
    sandbox.add_argument("--anomaly-order", choices=("asc", "desc", "unordered"), default="asc")
    sandbox.add_argument(
        "--cache-rows", type=int, default=200_000, help="pre-rendered line items kept in memory"
    )
    sandbox.set_defaults(handler=_lazy("pipelines.sandbox_command", "command_sandbox"))


def _add_check(commands: Any) -> None:
    check = commands.add_parser("check", help="which resources each workspace's key can read")
    check.add_argument("vendor", choices=sorted(VENDORS))
    check.add_argument("--workspace", type=_workspace, help="check one configured workspace")
    check.set_defaults(handler=_lazy("pipelines.check", "command_check"))


def _add_status(commands: Any) -> None:
    status = commands.add_parser("status", help="last runs, positions and row counts")
    status.add_argument("--pipelines-dir", help="where dlt keeps pipeline state")
    status.add_argument("--duckdb-path", help=f"DuckDB file; default {DEFAULT_DUCKDB_PATH}")
    status.set_defaults(handler=_lazy("pipelines.status", "command_status"))


def _add_report(commands: Any) -> None:
    report = commands.add_parser("report", help="write one offline HTML spend report")
    report.add_argument("--destination", choices=("duckdb", "postgres"), default="duckdb")
    report.add_argument("--duckdb-path", help=f"DuckDB file; default {DEFAULT_DUCKDB_PATH}")
    report.add_argument(
        "--dataset",
        action="append",
        metavar="NAME",
        help="a dataset to read (repeat for each vendor); default: stackspend and levelfour",
    )
    report.add_argument("--output", default="costsync_report.html", help="the HTML file to write")
    report.set_defaults(handler=_lazy("pipelines.report", "command_report"))


def _check_sync_args(args: argparse.Namespace, vendor: VendorSpec) -> None:
    unknown = [name for name in args.resources or [] if name not in vendor.resources]
    if unknown:
        raise UsageError(
            f"--resources: unknown resource {', '.join(unknown)} for {vendor.name}"
            f" (choose from {', '.join(vendor.resources)})"
        )
    if args.start_date and args.end_date and args.start_date > args.end_date:
        raise UsageError(f"--start-date {args.start_date} is after --end-date {args.end_date}")
    if args.duckdb_path is not None and args.destination != "duckdb":
        raise UsageError("--duckdb-path goes with --destination duckdb")
    for flag, value in (
        ("--duckdb-path", args.duckdb_path),
        ("--dataset", args.dataset),
        ("--pipelines-dir", args.pipelines_dir),
    ):
        if value is not None and not value.strip():
            raise UsageError(f"{flag} must not be empty")
    if args.dataset is not None and not DATASET_NAME.fullmatch(args.dataset):
        raise UsageError(
            "--dataset must be a plain name: lower-case letters, digits and _, not starting"
            f" with a digit, at most 63 characters (got {_quoted(args.dataset)})"
        )
    folder = Path(args.pipelines_dir) if args.pipelines_dir else None
    if folder is not None and folder.exists() and not folder.is_dir():
        raise UsageError(f"--pipelines-dir {_quoted(args.pipelines_dir)} is not a folder")


def _workspace(value: str) -> str:
    try:
        return check_workspace("--workspace", value)
    except ConfigError as error:
        raise argparse.ArgumentTypeError(error.rule) from None


def _resource_list(value: str) -> list[str]:
    names = [name.strip() for name in value.split(",") if name.strip()]
    if not names:
        raise argparse.ArgumentTypeError("name at least one resource")
    return names


def _day(flag: str) -> Any:
    def parse(value: str) -> date:
        try:
            return parse_day(flag, value)
        except ConfigError as error:
            raise argparse.ArgumentTypeError(error.rule) from None

    return parse


def _lazy(module: str, function: str) -> Any:
    def handler(args: argparse.Namespace) -> int:
        import importlib

        return int(getattr(importlib.import_module(module), function)(args))

    return handler


def _quoted(value: str) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _fail(code: int, message: str) -> int:
    print(f"costsync: error: {' '.join(message.split())}", file=sys.stderr)
    return code


if __name__ == "__main__":
    main()
