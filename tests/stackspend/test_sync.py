"""`costsync sync stackspend` end to end: sandbox over HTTP → DuckDB file."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from sandbox.stackspend import LINE_ITEMS_ONLY_KEY, LINE_ITEMS_PATH, NO_PLAN_KEY, REVOKED_KEY
from tests.conftest import TODAY, Env
from tests.warehouse import (
    ANOMALY_FIELDS,
    LINE_ITEM_FIELDS,
    ROLLUP_FIELDS,
    exact_sum,
    rows,
    table_exists,
    table_rows,
    truth_rows,
)

START = TODAY - timedelta(days=20)


def assert_warehouse_matches_api(env: Env) -> None:
    """Every table equals what the sandbox serves now: rows, exact sums, no duplicates."""
    api = env.stackspend
    path = env.duckdb_path
    truth = api.line_items(START, TODAY)
    assert table_rows(path, "stackspend.line_items", LINE_ITEM_FIELDS) == truth_rows(
        truth, LINE_ITEM_FIELDS
    )
    total = rows(
        path, "SELECT SUM(net_amount_usd), COUNT(*), COUNT(DISTINCT id) FROM stackspend.line_items"
    )
    assert total[0] == (exact_sum([r["net_amount_usd"] for r in truth]), len(truth), len(truth))
    for group_by in ("provider", "service", "category"):
        expected = truth_rows(api.daily_rollups(START, TODAY, group_by), ROLLUP_FIELDS)
        loaded = table_rows(
            path, "stackspend.daily_rollups", ROLLUP_FIELDS, where=f"group_by = '{group_by}'"
        )
        assert loaded == expected, group_by
    since = datetime.combine(START, datetime.min.time(), UTC)
    anomalies = truth_rows(api.anomalies(since), ANOMALY_FIELDS)
    assert table_rows(path, "stackspend.anomalies", ANOMALY_FIELDS) == anomalies


def state_of(env: Env) -> dict:
    state_file = env.pipelines_dir / "stackspend" / "state.json"
    return json.loads(state_file.read_text()) if state_file.exists() else {}


def counts(env: Env) -> list[tuple]:
    return [
        rows(env.duckdb_path, f"SELECT COUNT(*), SUM({money}) FROM stackspend.{table}")[0]
        for table, money in (
            ("line_items", "net_amount_usd"),
            ("daily_rollups", "cost_usd"),
            ("anomalies", "actual_cost"),
        )
    ]


def test_first_sync_loads_exactly_what_the_api_serves(env: Env) -> None:
    result = env.sync()
    assert result.code == 0, result.err
    assert_warehouse_matches_api(env)
    assert "line_items" in result.out and "anomalies" in result.out
    assert f"synced {START.isoformat()}..{TODAY.isoformat()}" in result.out


def test_money_columns_are_decimal_and_dates_typed(env: Env) -> None:
    assert env.sync().code == 0
    types = dict(
        rows(
            env.duckdb_path,
            "SELECT table_name || '.' || column_name, data_type FROM information_schema.columns"
            " WHERE table_schema = 'stackspend'",
        )
    )
    assert types["line_items.net_amount_usd"] == "DECIMAL(38,18)"
    assert types["line_items.usage_date"] == "DATE"
    assert types["daily_rollups.cost_usd"] == "DECIMAL(38,18)"
    assert types["anomalies.detected_date"] == "TIMESTAMP WITH TIME ZONE"
    assert types["anomalies.actual_cost"] == "DECIMAL(38,18)"


def test_rerun_after_restatement_matches_the_new_truth(env: Env) -> None:
    assert env.sync().code == 0
    env.stackspend.restate_last(2)
    env.stackspend.move_anomaly_statuses(10)
    assert env.sync().code == 0
    assert_warehouse_matches_api(env)


def test_rerun_reads_only_the_lookback_days(env: Env) -> None:
    assert env.sync().code == 0
    env.stackspend.reset_requests()
    assert env.sync().code == 0
    reread = [r for r in env.stackspend.requests if r.path == LINE_ITEMS_PATH]
    assert {r.params["start_date"][0] for r in reread} == {(TODAY - timedelta(days=2)).isoformat()}
    assert len(reread) == 1  # 3 days x 150 items fit one page of 1000


def test_a_day_the_api_no_longer_lists_is_emptied(env: Env) -> None:
    assert env.sync().code == 0
    gone = TODAY - timedelta(days=1)
    env.stackspend.restate([gone] * 1)
    ids = [r["id"] for r in env.stackspend.line_items(gone, gone)]
    assert ids  # the sandbox drops ~10% per restatement; the rest must match exactly
    assert env.sync().code == 0
    loaded = rows(
        env.duckdb_path, f"SELECT id FROM stackspend.line_items WHERE usage_date = '{gone}'"
    )
    assert sorted(r[0] for r in loaded) == sorted(ids)


def test_missing_scope_exits_1_naming_the_scope_and_loads_nothing(env: Env) -> None:
    env.setenv(SOURCES__STACKSPEND__API_KEY=LINE_ITEMS_ONLY_KEY)
    result = env.sync()
    assert result.code == 1
    assert len(result.err.strip().splitlines()) == 1
    assert "rollups:read" in result.err or "anomalies:read" in result.err
    assert "--resources line_items" in result.err
    assert not table_exists(env.duckdb_path, "stackspend.line_items")


def test_missing_scope_can_be_left_out_with_resources(env: Env) -> None:
    env.setenv(SOURCES__STACKSPEND__API_KEY=LINE_ITEMS_ONLY_KEY)
    result = env.sync("stackspend", "--resources", "line_items")
    assert result.code == 0, result.err
    assert not table_exists(env.duckdb_path, "stackspend.anomalies")
    assert rows(env.duckdb_path, "SELECT COUNT(*) FROM stackspend.line_items")[0][0] == len(
        env.stackspend.line_items(START, TODAY)
    )


def test_revoked_key_exits_1_and_changes_nothing(env: Env) -> None:
    assert env.sync().code == 0
    env.stackspend.restate_last(2)
    before, state_before = counts(env), state_of(env)
    env.setenv(SOURCES__STACKSPEND__API_KEY=REVOKED_KEY)
    result = env.sync()
    assert result.code == 1
    assert "revoked" in result.err and "FORBIDDEN" in result.err
    assert counts(env) == before
    assert state_of(env) == state_before


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        (NO_PLAN_KEY, "PLAN_RESTRICTED"),
        ("ss_unknown_key", "UNAUTHORIZED"),
    ],
)
def test_refused_keys_exit_1_with_the_cause(env: Env, key: str, expected: str) -> None:
    env.setenv(SOURCES__STACKSPEND__API_KEY=key)
    result = env.sync()
    assert result.code == 1
    assert expected in result.err
    assert len(result.err.strip().splitlines()) == 1
    assert not env.duckdb_path.exists() or not table_exists(
        env.duckdb_path, "stackspend.line_items"
    )


@pytest.mark.parametrize("order", ["asc", "desc", "unordered"])
def test_more_than_500_anomalies_all_arrive_in_any_order(env: Env, order: str) -> None:
    api = env.stackspend
    api.anomaly_order = order
    moment = datetime.combine(TODAY - timedelta(days=3), datetime.min.time(), UTC)
    api.add_anomalies(300, at=moment + timedelta(hours=6))
    api.add_anomalies(400, at=moment + timedelta(hours=7))
    api.add_anomalies(50, at=moment + timedelta(hours=8))
    assert env.sync("stackspend", "--resources", "anomalies").code == 0
    since = datetime.combine(START, datetime.min.time(), UTC)
    truth = api.anomalies(since)
    assert len(truth) > 750
    loaded = table_rows(env.duckdb_path, "stackspend.anomalies", ANOMALY_FIELDS)
    assert loaded == truth_rows(truth, ANOMALY_FIELDS)


def test_progress_stays_quiet_when_piped(env: Env) -> None:
    result = env.sync()
    assert result.code == 0
    assert result.err == ""
    assert "\r" not in result.out


def test_status_reports_positions_and_row_counts(env: Env) -> None:
    assert env.sync().code == 0
    result = env.cli("status", "--pipelines-dir", str(env.pipelines_dir))
    assert result.code == 0, result.err
    count = len(env.stackspend.line_items(START, TODAY))
    assert f"{count:,}" in result.out
    assert f"synced {START.isoformat()}..{TODAY.isoformat()}" in result.out
    assert "levelfour: never synced" in result.out


def test_full_refresh_reloads_from_scratch(env: Env) -> None:
    assert env.sync().code == 0
    env.stackspend.reset_requests()
    assert env.sync("stackspend", "--full-refresh").code == 0
    starts = {
        r.params["start_date"][0] for r in env.stackspend.requests if r.path == LINE_ITEMS_PATH
    }
    assert START.isoformat() in starts
    assert_warehouse_matches_api(env)


def test_state_is_restored_from_duckdb_when_the_local_folder_is_gone(env: Env) -> None:
    assert env.sync().code == 0
    import shutil

    shutil.rmtree(env.pipelines_dir)
    env.stackspend.restate_last(2)
    env.stackspend.reset_requests()
    assert env.sync().code == 0
    starts = {
        r.params["start_date"][0] for r in env.stackspend.requests if r.path == LINE_ITEMS_PATH
    }
    assert starts == {(TODAY - timedelta(days=2)).isoformat()}
    assert_warehouse_matches_api(env)
