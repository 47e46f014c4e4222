"""BigQuery end to end: `costsync sync --destination bigquery` from the sandbox into bqemulator.

bqemulator (tests/bigquery_emulator.py) answers BigQuery's REST API on loopback;
costsync loads into it unchanged: Parquet load jobs, dlt's merges, its state
table. Every table is read back through google-cloud-bigquery and compared
with what the sandbox serves, exactly. What the emulator does not report of a
table's layout, the tests read from the CREATE TABLE statements costsync sent it.
"""

from __future__ import annotations

import json
import re
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from pipelines import dbt_demo
from sandbox.stackspend import LINE_ITEMS_PATH
from tests.bigquery_emulator import BigQueryEmulator
from tests.conftest import TODAY, Env
from tests.levelfour.test_sync import SYNCED
from tests.test_crash_safety import killed_sync
from tests.test_dbt import MODELS, api_totals, assert_built, assert_models_match, restate
from tests.warehouse import (
    ANOMALY_FIELDS,
    BREAKDOWN_FIELDS,
    LINE_ITEM_FIELDS,
    ROLLUP_FIELDS,
    BigQueryWarehouse,
    exact_sum,
    truth_rows,
)

START = TODAY - timedelta(days=20)
GROUP_BYS = ("provider", "service", "category")
MONEY = {
    "line_items": ("net_amount_usd",),
    "daily_rollups": ("cost_usd",),
    "anomalies": ("actual_cost", "expected_cost"),
    "spending_breakdown": ("cost", "previous_cost"),
}


def sync(env: Env, datasets: dict[str, str], *vendors: str) -> None:
    for vendor in vendors:
        result = env.sync_bigquery(vendor, datasets[vendor])
        assert result.code == 0, result.err


def warehouse_of(emulator: BigQueryEmulator, datasets: dict[str, str]) -> BigQueryWarehouse:
    return BigQueryWarehouse(emulator.client(), datasets)


def assert_matches_api(env: Env, warehouse: BigQueryWarehouse) -> None:
    """Every table equals what the sandbox serves now: rows, exact sums, no duplicates."""
    api = env.stackspend
    snapshot = warehouse.snapshot()
    items = api.line_items(START, TODAY)
    assert snapshot["line_items"] == truth_rows(items, LINE_ITEM_FIELDS)
    rollups = [
        {**row, "group_by": group_by}
        for group_by in GROUP_BYS
        for row in api.daily_rollups(START, TODAY, group_by)
    ]
    assert snapshot["daily_rollups"] == truth_rows(rollups, ("group_by", *ROLLUP_FIELDS))
    since = datetime.combine(START, datetime.min.time(), UTC)
    assert snapshot["anomalies"] == truth_rows(api.anomalies(since), ANOMALY_FIELDS)
    breakdown = [item for period in SYNCED for item in env.levelfour.breakdown(period)]
    assert snapshot["spending_breakdown"] == truth_rows(breakdown, BREAKDOWN_FIELDS)

    line_items = warehouse.table("stackspend", "line_items")
    assert warehouse.rows(
        f"SELECT COUNT(*), COUNT(DISTINCT id), SUM(net_amount_usd) FROM {line_items}"
    ) == [(len(items), len(items), exact_sum([i["net_amount_usd"] for i in items]))]
    spending = warehouse.table("levelfour", "spending_breakdown")
    assert warehouse.rows(
        f"SELECT COUNT(*), COUNT(DISTINCT _costsync_key), SUM(cost) FROM {spending}"
    ) == [(len(breakdown), len(breakdown), exact_sum([i["cost"] for i in breakdown]))]


def created_table_sql(emulator: BigQueryEmulator, dataset: str, table: str) -> str:
    """The CREATE TABLE statement for `dataset.table` that costsync sent, from the job history."""
    statement = re.compile(
        rf"CREATE TABLE `{emulator.project}`\.`{dataset}`\.`{table}` \(.*?;", re.DOTALL
    )
    jobs = emulator.client().list_jobs(max_results=10_000, all_users=True)
    found = [m.group() for job in jobs for m in statement.finditer(getattr(job, "query", ""))]
    assert len(found) == 1, (table, found)
    return found[0]


def test_first_syncs_of_both_vendors_load_exactly_what_the_api_serves(
    env: Env,
    bq_datasets: dict[str, str],
    bigquery_emulator: BigQueryEmulator,
    recwarn: pytest.WarningsRecorder,
) -> None:
    for vendor in ("stackspend", "levelfour"):
        result = env.sync_bigquery(vendor, bq_datasets[vendor])
        assert result.code == 0, result.err
        assert result.err == ""
    assert_matches_api(env, warehouse_of(bigquery_emulator, bq_datasets))
    assert not [str(w.message) for w in recwarn if "BigQuery" in str(w.message)]


def test_tables_have_the_promised_layout(
    env: Env, bq_datasets: dict[str, str], bigquery_emulator: BigQueryEmulator
) -> None:
    sync(env, bq_datasets, "stackspend", "levelfour")
    client = bigquery_emulator.client()
    vendors = {"line_items": "stackspend", "daily_rollups": "stackspend"}
    vendors |= {"anomalies": "stackspend", "spending_breakdown": "levelfour"}
    tables = {name: client.get_table(f"{bq_datasets[v]}.{name}") for name, v in vendors.items()}
    ddl = {
        name: created_table_sql(bigquery_emulator, bq_datasets[v], name)
        for name, v in vendors.items()
    }

    # Partitioned by day on the DATE columns, as the API reports it.
    for name, column in (("line_items", "usage_date"), ("daily_rollups", "date")):
        partitioning = tables[name].time_partitioning
        assert (partitioning.type_, partitioning.field) == ("DAY", column), name
        assert f"\nPARTITION BY `{column}`" in ddl[name]
    # Clustered, as the API reports it. bqemulator 1.4.0 keeps no CLUSTER BY from a
    # CREATE TABLE (catalog/ddl_sync.py), so on the emulator the fields reported are
    # the ones costsync sets through the tables API when a table reports others;
    # the DDL clusters them on BigQuery from the start.
    assert tables["line_items"].clustering_fields == ["provider_type", "project_id"]
    assert "\nCLUSTER BY `provider_type`, `project_id`;" in ddl["line_items"]
    assert tables["spending_breakdown"].clustering_fields == ["provider_id"]
    assert "\nCLUSTER BY `provider_id`;" in ddl["spending_breakdown"]
    # bqemulator 1.4.0 reads a partition only from `PARTITION BY <column>`, not from an
    # expression, so anomalies (a TIMESTAMP column, partitioned by its UTC day) report
    # none: the DDL is what says it.
    assert tables["anomalies"].time_partitioning is None
    assert "\nPARTITION BY DATE(`detected_date`);" in ddl["anomalies"]

    types = {
        (name, field.name): (field.field_type, field.mode)
        for name, table in tables.items()
        for field in table.schema
    }
    assert types["line_items", "id"] == ("STRING", "REQUIRED")
    assert types["line_items", "usage_date"] == ("DATE", "REQUIRED")
    assert types["daily_rollups", "date"] == ("DATE", "REQUIRED")
    assert types["anomalies", "detected_date"] == ("TIMESTAMP", "REQUIRED")
    assert types["spending_breakdown", "period"] == ("STRING", "REQUIRED")
    # Money: bqemulator 1.4.0 reports every DECIMAL column as NUMERIC, with no precision
    # or scale (storage/arrow_bridge.py), whatever the DDL said. BigQuery's NUMERIC keeps
    # 9 decimals; the columns are BIGNUMERIC(38,18) in the DDL, and what the emulator
    # stored answers with 18 decimals.
    warehouse = warehouse_of(bigquery_emulator, bq_datasets)
    for name, columns in MONEY.items():
        stored = warehouse.rows(
            f"SELECT {', '.join(columns)} FROM {warehouse.table(vendors[name], name)}"
            f" WHERE {' AND '.join(f'{c} IS NOT NULL' for c in columns)} LIMIT 1"
        )
        for column, value in zip(columns, stored[0], strict=True):
            assert types[name, column] == ("NUMERIC", "NULLABLE"), (name, column)
            assert f"`{column}` BIGNUMERIC(38,18)  ," in ddl[name], (name, column)
            assert value.as_tuple().exponent == -18, (name, column, value)
    for name in ("line_items", "daily_rollups", "spending_breakdown"):
        assert types[name, "_costsync_deleted"] == ("BOOLEAN", "NULLABLE")


def test_restatements_and_anomaly_status_moves_land_exactly(
    env: Env, bq_datasets: dict[str, str], bigquery_emulator: BigQueryEmulator
) -> None:
    sync(env, bq_datasets, "stackspend", "levelfour")
    before = warehouse_of(bigquery_emulator, bq_datasets).snapshot()
    env.stackspend.restate_last(2)
    moved = env.stackspend.move_anomaly_statuses(15)
    env.levelfour.restate_current_month()
    sync(env, bq_datasets, "stackspend", "levelfour")
    warehouse = warehouse_of(bigquery_emulator, bq_datasets)
    assert_matches_api(env, warehouse)
    after = warehouse.snapshot()
    for table in ("line_items", "daily_rollups", "anomalies", "spending_breakdown"):
        assert after[table] != before[table], table
    statuses = dict(
        warehouse.rows(f"SELECT id, status FROM {warehouse.table('stackspend', 'anomalies')}")
    )
    current = {a["id"]: a["status"] for a in env.stackspend.anomalies(START.isoformat())}
    assert moved and all(statuses[i] == current[i] for i in moved)


def test_line_items_the_api_no_longer_lists_are_deleted(
    env: Env, bq_datasets: dict[str, str], bigquery_emulator: BigQueryEmulator
) -> None:
    sync(env, bq_datasets, "stackspend")
    gone = TODAY - timedelta(days=1)
    listed_before = {i["id"] for i in env.stackspend.line_items(gone, gone)}
    env.stackspend.restate([gone])
    listed = {i["id"] for i in env.stackspend.line_items(gone, gone)}
    assert listed_before - listed  # the sandbox drops ~10% of a restated day's items
    sync(env, bq_datasets, "stackspend")
    warehouse = warehouse_of(bigquery_emulator, bq_datasets)
    loaded = warehouse.rows(
        f"SELECT id FROM {warehouse.table('stackspend', 'line_items')}"
        f" WHERE usage_date = '{gone.isoformat()}'"
    )
    assert {row[0] for row in loaded} == listed
    items = env.stackspend.line_items(START, TODAY)
    assert warehouse.sorted_rows("stackspend", "line_items", LINE_ITEM_FIELDS) == truth_rows(
        items, LINE_ITEM_FIELDS
    )


@pytest.mark.slow
@pytest.mark.parametrize(
    ("vendor", "point"),
    [("stackspend", "merge-sql"), ("stackspend", "job-unrecorded@2"), ("levelfour", "month-end")],
)
def test_killed_sync_then_rerun_is_exact(
    env: Env,
    bq_datasets: dict[str, str],
    bigquery_emulator: BigQueryEmulator,
    vendor: str,
    point: str,
) -> None:
    env.setenv(SOURCES__STACKSPEND__WINDOW_DAYS="7")  # three loads, so kills land between them
    where = [
        "--dataset",
        bq_datasets[vendor],
        "--pipelines-dir",
        str(env.pipelines_dir / "bigquery"),
    ]
    killed_sync(point, vendor, "--destination", "bigquery", *where)
    sync(env, bq_datasets, vendor)
    if vendor == "stackspend":
        env.stackspend.restate_last(2)
    else:
        env.levelfour.restate_current_month()
    sync(env, bq_datasets, vendor)
    warehouse = warehouse_of(bigquery_emulator, bq_datasets)
    if vendor == "stackspend":
        items = env.stackspend.line_items(START, TODAY)
        loaded = warehouse.sorted_rows("stackspend", "line_items", LINE_ITEM_FIELDS)
        assert loaded == truth_rows(items, LINE_ITEM_FIELDS)
    else:
        breakdown = [item for period in SYNCED for item in env.levelfour.breakdown(period)]
        loaded = warehouse.sorted_rows("levelfour", "spending_breakdown", BREAKDOWN_FIELDS)
        assert loaded == truth_rows(breakdown, BREAKDOWN_FIELDS)


def test_state_is_restored_from_bigquery_when_the_local_folder_is_gone(
    env: Env, bq_datasets: dict[str, str], bigquery_emulator: BigQueryEmulator
) -> None:
    sync(env, bq_datasets, "stackspend")
    shutil.rmtree(env.pipelines_dir / "bigquery")
    env.stackspend.restate_last(2)
    env.stackspend.reset_requests()
    sync(env, bq_datasets, "stackspend")
    starts = {
        r.params["start_date"][0] for r in env.stackspend.requests if r.path == LINE_ITEMS_PATH
    }
    assert starts == {(TODAY - timedelta(days=2)).isoformat()}
    warehouse = warehouse_of(bigquery_emulator, bq_datasets)
    items = env.stackspend.line_items(START, TODAY)
    assert warehouse.sorted_rows("stackspend", "line_items", LINE_ITEM_FIELDS) == truth_rows(
        items, LINE_ITEM_FIELDS
    )
    line_items = warehouse.table("stackspend", "line_items")
    assert warehouse.rows(f"SELECT COUNT(*) - COUNT(DISTINCT id) FROM {line_items}") == [(0,)]


def test_dbt_models_build_on_bigquery_and_match_the_sources(
    env: Env, bq_datasets: dict[str, str], bigquery_emulator: BigQueryEmulator, tmp_path: Path
) -> None:
    sync(env, bq_datasets, "stackspend", "levelfour")
    restate(env)
    sync(env, bq_datasets, "stackspend", "levelfour")
    keyfile = tmp_path / "service-account.json"
    keyfile.write_text(json.dumps(bigquery_emulator.service_account))
    schema = bq_datasets["stackspend"].removesuffix("_stackspend") + "_analytics"
    variables = {
        "stackspend_schema": bq_datasets["stackspend"],
        "levelfour_schema": bq_datasets["levelfour"],
        "analytics_schema": schema,
    }
    result = dbt_demo.run_dbt(
        ["build", "--target", "bigquery", "--vars", json.dumps(variables)],
        tmp_path / "dbt",
        env={
            "COSTSYNC_BIGQUERY_KEYFILE": str(keyfile),
            "COSTSYNC_BIGQUERY_PROJECT": bigquery_emulator.project,
        },
    )
    assert_built(result)
    assert "WARN=0 ERROR=0 SKIP=0" in result.stdout, result.stdout[-2000:]
    client = bigquery_emulator.client()
    assert {table.table_id for table in client.list_tables(schema)} == MODELS
    assert_models_match(warehouse_of(bigquery_emulator, bq_datasets), schema, api_totals(env))
