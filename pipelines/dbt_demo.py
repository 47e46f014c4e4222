"""costsync's dbt models (`dbt/`) built on a DuckDB file, and a few lines of what they hold."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

import duckdb

DBT_PROJECT_DIR = Path(__file__).resolve().parent.parent / "dbt"
DBT_HINT = (
    "dbt models: not built (dbt is not installed). Install the extra with"
    " `pip install -e '.[dbt]'`, then run"
    " `dbt build --project-dir dbt --profiles-dir dbt --target duckdb`."
)

TOTALS_BY_SOURCE = """
SELECT "x_Source", "BillingCurrency", COUNT(*), SUM("BilledCost") FROM analytics.focus_costs
GROUP BY "x_Source", "BillingCurrency" ORDER BY "x_Source" DESC, "BillingCurrency"
"""
LARGEST_CHARGES = """
SELECT CAST("ChargePeriodStart" AT TIME ZONE 'UTC' AS DATE), "x_Source", "ProviderName",
       "ServiceName", "ServiceCategory", "BilledCost"
FROM analytics.focus_costs
QUALIFY row_number() OVER (PARTITION BY "x_Source" ORDER BY "BilledCost" DESC, "x_SourceId") <= 3
ORDER BY "x_Source" DESC, "BilledCost" DESC
"""
RECONCILIATION = """
SELECT COUNT(DISTINCT usage_date),
       COUNT(DISTINCT CASE WHEN provider_diff <> 0 OR service_diff <> 0 OR category_diff <> 0
                           THEN usage_date END)
FROM analytics.stackspend_reconciliation
"""


def dbt_installed() -> bool:
    """Whether dbt and its DuckDB adapter (the `dbt` extra) can be imported."""
    try:
        return all(
            importlib.util.find_spec(name) is not None
            for name in ("dbt.cli.main", "dbt.adapters.duckdb")
        )
    except ModuleNotFoundError:
        return False


def run_dbt(
    args: Sequence[str],
    work_dir: str | Path,
    env: Mapping[str, str] | None = None,
    cwd: str | Path | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run `dbt ARGS` on costsync's dbt project with this Python, its output captured.

    Args:
        args: the dbt command and its options, e.g. `["build", "--target", "duckdb"]`.
        work_dir: where dbt writes `target/` and `logs/`, so the project folder stays clean.
        env: extra environment variables (`COSTSYNC_DUCKDB_PATH`, `PGHOST`, ...).
        cwd: the working directory (a relative `COSTSYNC_DUCKDB_PATH` is relative to it).
    """
    work = Path(work_dir)
    command = [
        sys.executable,
        "-c",
        "from dbt.cli.main import cli; cli()",
        *args,
        "--project-dir",
        str(DBT_PROJECT_DIR),
        "--profiles-dir",
        str(DBT_PROJECT_DIR),
    ]
    environment = {
        **os.environ,
        "DO_NOT_TRACK": "1",
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        "DBT_USE_COLORS": "false",
        "DBT_TARGET_PATH": str(work / "target"),
        "DBT_LOG_PATH": str(work / "logs"),
        **(env or {}),
    }
    return subprocess.run(
        command, cwd=cwd, env=environment, capture_output=True, text=True, check=False
    )


def build_and_show(duckdb_path: str) -> str:
    """`dbt build` on `duckdb_path` (quietly); a few rows of focus_costs and the reconciliation.

    Returns a one-line hint instead when dbt is not installed, and dbt's last
    lines of output when the build fails.
    """
    if not dbt_installed():
        return DBT_HINT
    if not (DBT_PROJECT_DIR / "dbt_project.yml").exists():
        return f"dbt models: not built (no dbt project at {DBT_PROJECT_DIR})."
    path = os.path.abspath(duckdb_path)
    with tempfile.TemporaryDirectory(prefix="costsync-dbt-") as work_dir:
        result = run_dbt(
            ["build", "--target", "duckdb", "--quiet"],
            work_dir,
            env={"COSTSYNC_DUCKDB_PATH": path},
        )
    if result.returncode != 0:
        output = (result.stdout + result.stderr).strip().splitlines()
        return "\n".join(["dbt build failed:", *(f"  {line}" for line in output[-15:])])
    return models_summary(path)


def models_summary(duckdb_path: str) -> str:
    """A few lines from the models dbt built in schema `analytics`."""
    with duckdb.connect(duckdb_path, read_only=True) as db:
        totals = db.execute(TOTALS_BY_SOURCE).fetchall()
        largest = db.execute(LARGEST_CHARGES).fetchall()
        days, days_off = db.execute(RECONCILIATION).fetchone() or (0, 0)
    lines = ["dbt models built into schema analytics; FOCUS costs (analytics.focus_costs):"]
    for source, currency, charges, billed in totals:
        lines.append(
            f"  {source:<11} {charges:>7,} charges  {billed:>14,.2f} {currency} BilledCost"
        )
    lines.append("  largest charges (ChargePeriodStart, x_Source, ProviderName, ServiceName,")
    lines.append("  ServiceCategory, BilledCost):")
    for day, source, provider, service, category, billed in largest:
        lines.append(
            f"    {day}  {source:<10} {provider:<15} {service:<22} {category:<24} {billed:>10,.2f}"
        )
    if days_off:
        status = f"{days_off} of {days} days differ (see analytics.stackspend_reconciliation)"
    else:
        status = f"{days} days, all differences zero"
    lines.append(f"StackSpend reconciliation (line items against rollups): {status}")
    return "\n".join(lines)
