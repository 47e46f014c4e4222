"""`costsync demo`: the bundled sandbox APIs synced into a local DuckDB file, offline."""

from __future__ import annotations

import argparse
import os
import tempfile

import duckdb

from pipelines import dbt_demo, report, runner
from pipelines.assembly import prepare
from pipelines.console import summary
from sandbox import levelfour, stackspend
from sandbox.http import App, SandboxServer
from sources.registry import VENDORS
from sources.shared.vendor import VendorSpec

DEMO_KEYS = {"stackspend": stackspend.DEMO_KEY, "levelfour": levelfour.DEMO_KEY}

SPEND_BY_PROVIDER = """
SELECT provider_type, SUM(net_amount_usd) AS spend_usd, COUNT(*) AS line_items
FROM stackspend.line_items
GROUP BY provider_type ORDER BY spend_usd DESC
"""
CREDITS = (
    "SELECT COALESCE(SUM(net_amount_usd), 0) FROM stackspend.line_items WHERE net_amount_usd < 0"
)
MONTHLY_BY_PROVIDER = """
SELECT period, provider_id, SUM(cost) AS cost FROM levelfour.spending_breakdown
GROUP BY period, provider_id ORDER BY period DESC, cost DESC
"""
OPEN_ANOMALIES = """
SELECT severity, COUNT(*) FROM stackspend.anomalies
WHERE status IN ('new', 'acknowledged') GROUP BY severity ORDER BY COUNT(*) DESC
"""


def command_demo(args: argparse.Namespace) -> int:
    """Start the sandbox on a free port, sync every vendor, print what landed, write the report."""
    path = os.path.abspath(args.duckdb_path)
    with SandboxServer(sandbox_apps()) as server, tempfile.TemporaryDirectory() as pipelines:
        for vendor in VENDORS.values():
            if vendor.name in DEMO_KEYS:
                print(sync_vendor(vendor, server.url, path, pipelines))
    print()
    print(spend_summary(path))
    print()
    print(dbt_demo.build_and_show(path))
    print()
    print(report.demo_report(path))
    return 0


def sandbox_apps() -> list[App]:
    """The sandbox APIs the demo serves."""
    return [stackspend.StackSpendSandbox(), levelfour.LevelFourSandbox()]


def sync_vendor(vendor: VendorSpec, url: str, duckdb_path: str, pipelines_dir: str) -> str:
    """Sync one vendor from the sandbox into `duckdb_path`, from scratch; its summary."""
    prepared = prepare(
        vendor.name,
        duckdb_path=duckdb_path,
        pipelines_dir=pipelines_dir,
        api_key=DEMO_KEYS[vendor.name],
        base_url=url,
        requests_per_minute=100_000,
    )
    result = runner.sync(prepared, full_refresh=True)
    return summary(result, prepared.where, vendor)


def spend_summary(duckdb_path: str) -> str:
    """A few lines of SQL answers over what the demo loaded."""
    with duckdb.connect(duckdb_path, read_only=True) as db:
        lines = ["StackSpend spend by provider (USD):"]
        for provider, spend, count in db.execute(SPEND_BY_PROVIDER).fetchall():
            lines.append(f"  {provider:<12} {spend:>14,.2f}  ({count:,} line items)")
        credits = (db.execute(CREDITS).fetchone() or (0,))[0]
        lines.append(f"  credits      {credits:>14,.2f}")
        open_by_severity = db.execute(OPEN_ANOMALIES).fetchall()
        lines.append(
            "Open anomalies: " + ", ".join(f"{n} {severity}" for severity, n in open_by_severity)
        )
        lines.append("LevelFour cost by month and provider (USD):")
        for period, provider, cost in db.execute(MONTHLY_BY_PROVIDER).fetchall()[:8]:
            lines.append(f"  {period}  {provider:<6} {cost:>14,.2f}")
    lines.append(
        f"\nThe tables are in {duckdb_path}: stackspend.line_items, stackspend.daily_rollups,"
        " stackspend.anomalies, levelfour.spending_breakdown"
    )
    return "\n".join(lines)
