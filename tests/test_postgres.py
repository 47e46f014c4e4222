"""Postgres: the same tables, types and merges as DuckDB, loaded through COPY."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta

from sandbox.stackspend import LINE_ITEMS_PATH
from tests.conftest import TODAY, Env
from tests.levelfour.test_sync import SYNCED
from tests.warehouse import (
    ANOMALY_FIELDS,
    BREAKDOWN_FIELDS,
    LINE_ITEM_FIELDS,
    DuckDBWarehouse,
    PostgresWarehouse,
    truth_rows,
)

START = TODAY - timedelta(days=20)


def sync_both(env: Env, datasets: dict[str, str]) -> None:
    for vendor in ("stackspend", "levelfour"):
        result = env.sync_postgres(vendor, datasets[vendor])
        assert result.code == 0, result.err
        assert env.sync(vendor).code == 0


def assert_matches_api(env: Env, warehouse: PostgresWarehouse | DuckDBWarehouse) -> None:
    api = env.stackspend
    snapshot = warehouse.snapshot()
    assert snapshot["line_items"] == truth_rows(api.line_items(START, TODAY), LINE_ITEM_FIELDS)
    since = datetime.combine(START, datetime.min.time(), UTC)
    assert snapshot["anomalies"] == truth_rows(api.anomalies(since), ANOMALY_FIELDS)
    breakdown = [item for period in SYNCED for item in env.levelfour.breakdown(period)]
    assert snapshot["spending_breakdown"] == truth_rows(breakdown, BREAKDOWN_FIELDS)


def test_postgres_tables_have_exact_types(
    env: Env, pg_datasets: dict[str, str], postgres_url: str
) -> None:
    sync_both(env, pg_datasets)
    warehouse = PostgresWarehouse(postgres_url, pg_datasets)
    types = dict(
        warehouse.rows(
            "SELECT table_name || '.' || column_name, data_type || coalesce('(' ||"
            " numeric_precision || ',' || numeric_scale || ')', '')"
            " FROM information_schema.columns WHERE table_schema IN"
            f" ('{pg_datasets['stackspend']}', '{pg_datasets['levelfour']}')"
        )
    )
    assert types["line_items.net_amount_usd"] == "numeric(38,18)"
    assert types["line_items.usage_date"] == "date"
    assert types["daily_rollups.cost_usd"] == "numeric(38,18)"
    assert types["anomalies.detected_date"] == "timestamp with time zone"
    assert types["spending_breakdown.cost"] == "numeric(38,18)"
    assert_matches_api(env, warehouse)


def test_duckdb_and_postgres_end_identical_after_restatements(
    env: Env, pg_datasets: dict[str, str], postgres_url: str
) -> None:
    sync_both(env, pg_datasets)
    env.stackspend.restate_last(2)
    env.stackspend.move_anomaly_statuses(15)
    env.levelfour.restate_current_month()
    sync_both(env, pg_datasets)
    postgres = PostgresWarehouse(postgres_url, pg_datasets)
    duckdb = DuckDBWarehouse(
        env.duckdb_path, {"stackspend": "stackspend", "levelfour": "levelfour"}
    )
    assert postgres.snapshot() == duckdb.snapshot()
    assert_matches_api(env, postgres)


def test_postgres_loads_parquet_through_copy_not_inserts(
    env: Env, pg_datasets: dict[str, str]
) -> None:
    assert env.sync_postgres("stackspend", pg_datasets["stackspend"]).code == 0
    loaded = env.pipelines_dir / "postgres" / "stackspend" / "load" / "loaded"
    jobs = [p.name for p in loaded.rglob("completed_jobs/*")]
    data_jobs = [j for j in jobs if j.split(".")[0] in ("line_items", "daily_rollups", "anomalies")]
    assert data_jobs and all(j.endswith((".parquet", ".sql")) for j in data_jobs), data_jobs
    assert any(j.startswith("line_items.") and j.endswith(".parquet") for j in data_jobs)


def test_state_is_restored_from_postgres_when_the_local_folder_is_gone(
    env: Env, pg_datasets: dict[str, str], postgres_url: str
) -> None:
    assert env.sync_postgres("stackspend", pg_datasets["stackspend"]).code == 0
    shutil.rmtree(env.pipelines_dir / "postgres")
    env.stackspend.restate_last(2)
    env.stackspend.reset_requests()
    assert env.sync_postgres("stackspend", pg_datasets["stackspend"]).code == 0
    starts = {
        r.params["start_date"][0] for r in env.stackspend.requests if r.path == LINE_ITEMS_PATH
    }
    assert starts == {(TODAY - timedelta(days=2)).isoformat()}
    warehouse = PostgresWarehouse(postgres_url, pg_datasets)
    truth = truth_rows(env.stackspend.line_items(START, TODAY), LINE_ITEM_FIELDS)
    assert warehouse.sorted_rows("stackspend", "line_items", LINE_ITEM_FIELDS) == truth


def test_missing_postgres_credentials_exit_2_before_any_request(env: Env) -> None:
    result = env.cli("sync", "stackspend", "--destination", "postgres")
    assert result.code == 2
    assert (
        "destination.postgres.credentials: are missing: set DESTINATION__POSTGRES__CREDENTIALS"
        in result.err
    )
    assert env.stackspend.request_count() == 0
