"""`costsync report`: one self-contained, offline HTML spend report over the loaded tables.

The queries need only the core install; the page needs the `report` extra
(plotly, whose plotly.js is inlined, and Jinja2).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from pipelines.report.datasets import find_datasets
from pipelines.report.figures import ReportData, build_report_data
from pipelines.report.warehouse import WarehouseUnavailable, open_warehouse
from sources.shared.errors import ConfigError

DEFAULT_OUTPUT = "costsync_report.html"
INSTALL_HINT = "pip install -e '.[report]' (or: pip install 'costsync[report]')"
EXIT_OK, EXIT_UNAVAILABLE, EXIT_INPUT = 0, 1, 2


def report_installed() -> bool:
    """Whether the `report` extra (plotly, Jinja2) can be imported."""
    return all(importlib.util.find_spec(name) is not None for name in ("plotly", "jinja2"))


def command_report(args: argparse.Namespace) -> int:
    """`costsync report ...`: write the report and say where, and what it leaves out."""
    _check_args(args)
    if not report_installed():
        return _fail(EXIT_INPUT, f"costsync report needs the report extra: {INSTALL_HINT}")
    try:
        output, size, data = write_report(
            args.destination, args.duckdb_path, args.dataset, Path(args.output)
        )
    except WarehouseUnavailable as error:
        return _fail(EXIT_UNAVAILABLE, str(error))
    print(f"report: {output} ({size:,} bytes) from {data.where}")
    for line in data.missing:
        print(f"  not in it: {line}")
    return EXIT_OK


def write_report(
    destination: str, duckdb_path: str | None, datasets: Sequence[str] | None, output: Path
) -> tuple[Path, int, ReportData]:
    """Read the warehouse, write the report to `output`; its path, size in bytes and figures.

    Raises:
        ConfigError: no such DuckDB file or dataset, no costsync tables, missing
            credentials, or `output` cannot be written.
        WarehouseUnavailable: the warehouse could not be read.
    """
    from pipelines.report import page

    output = Path(os.path.abspath(output))
    if not output.parent.is_dir():
        raise ConfigError("--output", f"cannot write {output}: no folder {output.parent}")
    with open_warehouse(destination, duckdb_path) as warehouse:
        data = build_report_data(warehouse, find_datasets(warehouse, datasets))
    try:
        size = page.write(data, output)
    except OSError as error:
        raise ConfigError("--output", f"cannot write {output}: {error.strerror}") from None
    return output, size, data


def demo_report(duckdb_path: str) -> str:
    """Write the report next to the demo's DuckDB file; a line saying where (or how to
    install the report extra)."""
    if not report_installed():
        return f"Spend report: not written (the report extra is not installed): {INSTALL_HINT}"
    database = Path(duckdb_path)
    output = database.with_name(f"{database.stem}_report.html")
    path, size, _ = write_report("duckdb", str(database), None, output)
    return f"Spend report ({size:,} bytes, opens offline in any browser): {path}"


def _check_args(args: argparse.Namespace) -> None:
    if args.duckdb_path is not None and args.destination != "duckdb":
        raise ConfigError("--duckdb-path", "goes with --destination duckdb")
    for flag, value in (
        ("--duckdb-path", args.duckdb_path),
        ("--output", args.output),
        *(("--dataset", name) for name in args.dataset or ()),
    ):
        if value is not None and not value.strip():
            raise ConfigError(flag, "must not be empty")


def _fail(code: int, message: str) -> int:
    print(f"costsync: error: {message}", file=sys.stderr)
    return code
