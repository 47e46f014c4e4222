"""costsync's dbt project (`dbt/`) built on what costsync loaded, in DuckDB and in Postgres."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlsplit

import duckdb
import pytest

from pipelines import dbt_demo
from tests.conftest import TODAY, Env
from tests.levelfour.test_sync import SYNCED
from tests.warehouse import DuckDBWarehouse, PostgresWarehouse, Warehouse, exact_sum

START = TODAY - timedelta(days=20)
DAYS = 21
MODELS = {
    "stg_stackspend__line_items",
    "stg_stackspend__daily_rollups",
    "stg_stackspend__anomalies",
    "stg_levelfour__spending_breakdown",
    "focus_costs",
    "stackspend_reconciliation",
    "anomaly_context",
}
# FOCUS 1.2's mandatory columns, the recommended and conditional ones the sources fill, and ours.
FOCUS_COLUMNS = (
    "BilledCost",
    "BillingAccountId",
    "BillingAccountName",
    "BillingCurrency",
    "BillingPeriodEnd",
    "BillingPeriodStart",
    "ChargeCategory",
    "ChargeClass",
    "ChargeDescription",
    "ChargeFrequency",
    "ChargePeriodEnd",
    "ChargePeriodStart",
    "ContractedCost",
    "EffectiveCost",
    "InvoiceId",
    "InvoiceIssuerName",
    "ListCost",
    "PricingQuantity",
    "PricingUnit",
    "ProviderName",
    "PublisherName",
    "RegionId",
    "RegionName",
    "ServiceCategory",
    "ServiceName",
    "ServiceSubcategory",
    "SubAccountId",
    "SubAccountName",
    "Tags",
    "x_Source",
    "x_SourceId",
    "x_ProviderId",
    "x_UserEmail",
    "x_Environment",
    "x_OriginalCurrency",
    "x_Workspace",
    "x_RestatedAt",
)
DECIMAL_COLUMNS = ("BilledCost", "EffectiveCost", "ListCost", "ContractedCost", "PricingQuantity")
DIFFS = ("provider_diff", "service_diff", "category_diff")


@pytest.fixture(autouse=True)
def dbt_installed() -> None:
    """dbt comes with the `test` extra; without it these tests skip, except under CI=true."""
    if not dbt_demo.dbt_installed():
        reason = "dbt is not installed (pip install -e '.[dbt]')"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason}; CI=true requires the dbt tests to run")
        pytest.skip(reason)


@pytest.fixture(scope="session")
def dbt_work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """dbt's target/ and logs/ for the session: dbt re-parses only when profile or vars change."""
    return tmp_path_factory.mktemp("dbt")


def build_duckdb(env: Env, dbt_work: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`dbt build --target duckdb` on the test's DuckDB file."""
    return dbt_demo.run_dbt(
        ["build", "--target", "duckdb", *args],
        dbt_work / "duckdb",
        env={"COSTSYNC_DUCKDB_PATH": env.duckdb_path.name},
        cwd=env.duckdb_path.parent,
    )


def build_postgres(
    url: str, datasets: dict[str, str], dbt_work: Path
) -> subprocess.CompletedProcess[str]:
    """`dbt build --target postgres` on the test's datasets, into `<prefix>_analytics`."""
    parts = urlsplit(url)
    libpq = {
        "PGHOST": parts.hostname or "127.0.0.1",
        "PGPORT": str(parts.port or 5432),
        "PGUSER": parts.username or "postgres",
        "PGPASSWORD": parts.password or "",
        "PGDATABASE": parts.path.lstrip("/"),
    }
    variables = {
        "stackspend_schema": datasets["stackspend"],
        "levelfour_schema": datasets["levelfour"],
        "analytics_schema": analytics_schema(datasets),
    }
    return dbt_demo.run_dbt(
        ["build", "--target", "postgres", "--vars", json.dumps(variables)],
        dbt_work / "postgres",
        env=libpq,
    )


def analytics_schema(datasets: dict[str, str]) -> str:
    """A schema the `pg_datasets` fixture drops afterwards (it shares their prefix)."""
    return datasets["stackspend"].removesuffix("_stackspend") + "_analytics"


def assert_built(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]


def sync_duckdb(env: Env) -> None:
    for vendor in ("stackspend", "levelfour"):
        result = env.sync(vendor)
        assert result.code == 0, result.err


def sync_postgres(env: Env, datasets: dict[str, str]) -> None:
    for vendor in ("stackspend", "levelfour"):
        result = env.sync_postgres(vendor, datasets[vendor])
        assert result.code == 0, result.err


def restate(env: Env) -> None:
    """The sandbox restates StackSpend's last two days and LevelFour's current month."""
    env.stackspend.restate_last(2)
    env.levelfour.restate_current_month()


def api_totals(env: Env) -> dict[str, tuple[int, Decimal]]:
    """Per vendor, the API's charges now: how many, and their exact sum."""
    items = env.stackspend.line_items(START, TODAY)
    breakdown = [item for period in SYNCED for item in env.levelfour.breakdown(period)]
    return {
        "stackspend": (len(items), exact_sum([i["net_amount_usd"] for i in items])),
        "levelfour": (len(breakdown), exact_sum([i["cost"] for i in breakdown])),
    }


def assert_models_match(warehouse: Warehouse, schema: str, truth: dict) -> None:
    """focus_costs sums per vendor equal the loaded tables and the API; no reconciliation gap."""
    q = warehouse.quote
    focus = {
        source: (count, billed, effective)
        for source, count, billed, effective in warehouse.rows(
            f"SELECT {q('x_Source')}, COUNT(*), SUM({q('BilledCost')}), SUM({q('EffectiveCost')})"
            f" FROM {warehouse.qualified(schema, 'focus_costs')} GROUP BY {q('x_Source')}"
        )
    }
    loaded = {
        "stackspend": warehouse.rows(
            "SELECT COUNT(*), SUM(net_amount_usd)"
            f" FROM {warehouse.table('stackspend', 'line_items')}"
        )[0],
        "levelfour": warehouse.rows(
            f"SELECT COUNT(*), SUM(cost) FROM {warehouse.table('levelfour', 'spending_breakdown')}"
        )[0],
    }
    for source, (count, total) in truth.items():
        assert loaded[source] == (count, total), source
        assert focus[source] == (count, total, total), source
    assert set(focus) == set(truth)
    columns = ("x_Source", "BillingAccountId", "BillingAccountName", "x_Workspace")
    accounts = warehouse.rows(
        f"SELECT DISTINCT {', '.join(map(q, columns))}"
        f" FROM {warehouse.qualified(schema, 'focus_costs')}"
    )
    assert sorted(accounts) == sorted(
        (source, warehouse.datasets[source], warehouse.datasets[source], None) for source in truth
    )

    days = warehouse.rows(
        f"SELECT usage_date, {', '.join(f'MIN({d}), MAX({d})' for d in DIFFS)}"
        f" FROM {warehouse.qualified(schema, 'stackspend_reconciliation')}"
        " GROUP BY usage_date ORDER BY usage_date"
    )
    assert [day for day, *_ in days] == [START + timedelta(days=n) for n in range(DAYS)]
    assert {value for _, *extremes in days for value in extremes} == {0}


def assert_model_layout(warehouse: Warehouse, schema: str) -> None:
    """The seven models in exactly `schema`, FOCUS names in their case, no bookkeeping columns."""
    columns = warehouse.rows(
        "SELECT table_name, column_name FROM information_schema.columns"
        f" WHERE table_schema = '{schema}'"
    )
    assert {table for table, _ in columns} == MODELS
    focus = {column for table, column in columns if table == "focus_costs"}
    assert set(FOCUS_COLUMNS) == focus
    assert not [c for _, c in columns if c.startswith(("_dlt", "_costsync"))]
    scales = warehouse.rows(
        "SELECT column_name, numeric_precision, numeric_scale FROM information_schema.columns"
        f" WHERE table_schema = '{schema}' AND table_name = 'focus_costs'"
        f" AND column_name IN ({', '.join(repr(c) for c in DECIMAL_COLUMNS)})"
    )
    assert sorted(scales) == sorted((column, 38, 18) for column in DECIMAL_COLUMNS)


def test_duckdb_models_match_the_sources_before_and_after_a_restatement(
    env: Env, dbt_work: Path
) -> None:
    project_files = set(dbt_demo.DBT_PROJECT_DIR.iterdir())
    warehouse = DuckDBWarehouse(
        env.duckdb_path, {"stackspend": "stackspend", "levelfour": "levelfour"}
    )
    sync_duckdb(env)
    shown = dbt_demo.build_and_show(str(env.duckdb_path))  # as `costsync demo` builds them
    before = api_totals(env)
    count, total = before["stackspend"]
    assert f"stackspend  {count:>7,} charges  {total:>14,.2f} USD BilledCost" in shown, shown
    assert f"rollups): {DAYS} days, all differences zero" in shown
    assert_model_layout(warehouse, "analytics")
    assert_models_match(warehouse, "analytics", before)

    restate(env)
    sync_duckdb(env)
    assert_built(build_duckdb(env, dbt_work))
    after = api_totals(env)
    assert after["stackspend"] != before["stackspend"]
    assert after["levelfour"] != before["levelfour"]
    assert_models_match(warehouse, "analytics", after)
    assert set(dbt_demo.DBT_PROJECT_DIR.iterdir()) == project_files  # no target/ or logs/


@pytest.mark.postgres
def test_postgres_models_match_the_sources_before_and_after_a_restatement(
    env: Env, pg_datasets: dict[str, str], postgres_url: str, dbt_work: Path
) -> None:
    warehouse = PostgresWarehouse(postgres_url, pg_datasets)
    schema = analytics_schema(pg_datasets)
    sync_postgres(env, pg_datasets)
    assert_built(build_postgres(postgres_url, pg_datasets, dbt_work))
    assert_model_layout(warehouse, schema)
    assert_models_match(warehouse, schema, api_totals(env))

    restate(env)
    sync_postgres(env, pg_datasets)
    assert_built(build_postgres(postgres_url, pg_datasets, dbt_work))
    assert_models_match(warehouse, schema, api_totals(env))


def test_a_rollup_that_disagrees_fails_the_build_or_warns_when_asked(
    env: Env, dbt_work: Path
) -> None:
    assert env.sync("stackspend").code == 0
    with duckdb.connect(str(env.duckdb_path)) as db:
        db.execute(
            "UPDATE stackspend.daily_rollups SET cost_usd = cost_usd + 0.01"
            " WHERE group_by = 'provider' AND provider_type = 'aws' AND date = ?",
            [START],
        )
    reconciliation = ["--select", "+stackspend_reconciliation", "--indirect-selection", "cautious"]

    assert build_duckdb(env, dbt_work, *reconciliation).returncode == 1
    assert failed_tests(dbt_work) == {"zero_difference_stackspend_reconciliation_provider_diff"}
    gaps = DuckDBWarehouse(env.duckdb_path, {}).rows(
        "SELECT usage_date, provider, provider_diff FROM analytics.stackspend_reconciliation"
        " WHERE provider_diff <> 0"
    )
    assert gaps == [(START, "aws", Decimal("-0.01"))]

    warn = ["--vars", '{"reconciliation_severity": "warn"}']
    assert_built(build_duckdb(env, dbt_work, *reconciliation, *warn))
    assert failed_tests(dbt_work, status="warn") == {
        "zero_difference_stackspend_reconciliation_provider_diff"
    }


def failed_tests(dbt_work: Path, status: str = "fail") -> set[str]:
    """The tests of the last DuckDB build that ended with `status`, without the package prefix."""
    results = json.loads((dbt_work / "duckdb" / "target" / "run_results.json").read_text())
    return {
        r["unique_id"].split(".")[2].removeprefix("costsync_")
        for r in results["results"]
        if r["unique_id"].startswith("test.") and r["status"] == status
    }


def test_build_and_show_without_dbt_returns_a_one_line_hint(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    find_spec = importlib.util.find_spec

    def without_dbt(name: str, *args: object) -> object:
        return None if name.split(".")[0] == "dbt" else find_spec(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", without_dbt)
    shown = dbt_demo.build_and_show(str(tmp_path / "costsync_demo.duckdb"))
    assert shown == dbt_demo.DBT_HINT
    assert len(shown.splitlines()) == 1 and "'.[dbt]'" in shown


WORKSPACES = ("acme", "globex")
# Per vendor, the tables a workspace's dataset holds, and what globex keeps of each: its
# first ten days (StackSpend) or two months (LevelFour), so the workspaces differ.
WORKSPACE_TABLES = {
    "stackspend": {
        "line_items": f"usage_date < DATE '{START + timedelta(days=10)}'",
        "daily_rollups": f"date < DATE '{START + timedelta(days=10)}'",
        "anomalies": "true",
    },
    "levelfour": {"spending_breakdown": f"period IN ('{SYNCED[0]}', '{SYNCED[1]}')"},
}


def copy_into_workspaces(path: Path) -> None:
    """The synced datasets as two workspaces' (`stackspend_acme`, ...), then gone.

    globex's line items lack `_costsync_restated_at`, as an older costsync loaded them.
    """
    with duckdb.connect(str(path)) as db:
        for vendor, tables in WORKSPACE_TABLES.items():
            for workspace in WORKSPACES:
                db.execute(f"CREATE SCHEMA {vendor}_{workspace}")
                for table, globex_rows in tables.items():
                    where = globex_rows if workspace == "globex" else "true"
                    db.execute(
                        f"CREATE TABLE {vendor}_{workspace}.{table} AS"
                        f" SELECT * FROM {vendor}.{table} WHERE {where}"
                    )
            db.execute(f"DROP SCHEMA {vendor} CASCADE")
        db.execute("ALTER TABLE stackspend_globex.line_items DROP COLUMN _costsync_restated_at")


def workspace_totals(warehouse: Warehouse) -> list[tuple]:
    """Per vendor and workspace, as focus_costs should say: dataset, name, charges, exact sum."""
    totals = []
    for vendor, table, amount in (
        ("stackspend", "line_items", "net_amount_usd"),
        ("levelfour", "spending_breakdown", "cost"),
    ):
        for workspace in WORKSPACES:
            dataset = f"{vendor}_{workspace}"
            count, total = warehouse.rows(f"SELECT COUNT(*), SUM({amount}) FROM {dataset}.{table}")[
                0
            ]
            totals.append((vendor, dataset, workspace, workspace, count, total))
    return sorted(totals)


def test_duckdb_models_union_the_workspaces_datasets(env: Env, dbt_work: Path) -> None:
    sync_duckdb(env)
    copy_into_workspaces(env.duckdb_path)
    workspaces = {f"{vendor}_workspaces": list(WORKSPACES) for vendor in WORKSPACE_TABLES}
    assert_built(build_duckdb(env, dbt_work, "--vars", json.dumps(workspaces)))

    warehouse = DuckDBWarehouse(env.duckdb_path, {})
    charges = warehouse.rows(
        'SELECT "x_Source", "BillingAccountId", "BillingAccountName", "x_Workspace", COUNT(*),'
        ' SUM("BilledCost") FROM analytics.focus_costs GROUP BY ALL ORDER BY ALL'
    )
    assert charges == workspace_totals(warehouse)
    assert warehouse.rows(
        "SELECT workspace, dataset, COUNT(*) FILTER (WHERE restated_at IS NOT NULL)"
        " FROM analytics.stg_stackspend__line_items GROUP BY ALL ORDER BY ALL"
    ) == [("acme", "stackspend_acme", 0), ("globex", "stackspend_globex", 0)]
    days = warehouse.rows(
        "SELECT workspace, COUNT(DISTINCT usage_date), MIN(provider_diff), MAX(provider_diff),"
        " MIN(service_diff), MAX(service_diff), MIN(category_diff), MAX(category_diff)"
        " FROM analytics.stackspend_reconciliation GROUP BY workspace ORDER BY workspace"
    )
    assert days == [("acme", DAYS, *[0] * 6), ("globex", 10, *[0] * 6)]


def test_datasets_that_cannot_be_built_on_stop_the_build_with_a_line_naming_the_fix(
    env: Env, dbt_work: Path
) -> None:
    assert env.sync("stackspend").code == 0
    unsynced = build_duckdb(env, dbt_work, "--select", "stg_levelfour__spending_breakdown")
    assert unsynced.returncode != 0
    assert (
        "no table levelfour.spending_breakdown to build on; run `costsync sync levelfour`"
        " first, or set the var levelfour_schema to the dataset it loaded" in unsynced.stdout
    )
    line_items = ["--select", "stg_stackspend__line_items"]
    never_synced = build_duckdb(
        env, dbt_work, *line_items, "--vars", '{"stackspend_workspaces": ["acme"]}'
    )
    assert never_synced.returncode != 0
    assert (
        "no table stackspend_acme.line_items to build on; run"
        " `costsync sync stackspend --workspace acme` first" in never_synced.stdout
    )
    not_a_list = build_duckdb(
        env, dbt_work, *line_items, "--vars", '{"stackspend_workspaces": "acme"}'
    )
    assert not_a_list.returncode != 0
    assert "var stackspend_workspaces must be a list of workspace names" in not_a_list.stdout
