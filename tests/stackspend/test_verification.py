"""Verification: restatements outside the lookback land, at the cost of a rollup read.

After a 60-day backfill, the API restates days weeks back; the next run finds
them through the daily rollups and re-reads exactly those days.
"""

from __future__ import annotations

import json
from datetime import date, timedelta
from decimal import Decimal

import pyarrow as pa
import pytest

from sandbox.stackspend import ANOMALIES_PATH, LINE_ITEMS_PATH, ROLLUPS_PATH, StackSpendSandbox
from sources.shared.windows import Window
from sources.stackspend.settings import DAILY_ROLLUPS_SCHEMA
from sources.stackspend.verification import TOTAL, RollupSnapshot, add_up, record_day
from tests.conftest import TODAY, Env
from tests.test_crash_safety import killed_sync
from tests.warehouse import (
    LINE_ITEM_FIELDS,
    ROLLUP_FIELDS,
    DuckDBWarehouse,
    PostgresWarehouse,
    Warehouse,
    exact_sum,
    rows,
    truth_rows,
)

START = TODAY - timedelta(days=59)
WEEKS_BACK = [TODAY - timedelta(days=45), TODAY - timedelta(days=20)]
# a day in a billing period (calendar month) that has closed, outside the lookback
CLOSED_DAY = TODAY.replace(day=1) - timedelta(days=10)


@pytest.fixture
def stackspend_app() -> StackSpendSandbox:
    """60 days of StackSpend data ending today, 40 line items a day (one page a day)."""
    return StackSpendSandbox(seed=3, start_date=START, end_date=TODAY, line_items_per_day=40)


@pytest.fixture
def synced(env: Env) -> Env:
    """60 days backfilled into DuckDB, the sandbox's request log cleared."""
    env.setenv(SOURCES__STACKSPEND__START_DATE=START.isoformat())
    assert env.sync().code == 0
    env.stackspend.reset_requests()
    return env


def duckdb_warehouse(env: Env) -> Warehouse:
    return DuckDBWarehouse(env.duckdb_path, {"stackspend": "stackspend"})


def assert_exact(env: Env, warehouse: Warehouse) -> None:
    """line_items and daily_rollups equal the API's current answer, exactly, no duplicates."""
    api = env.stackspend
    truth = api.line_items(START, TODAY)
    assert warehouse.sorted_rows("stackspend", "line_items", LINE_ITEM_FIELDS) == truth_rows(
        truth, LINE_ITEM_FIELDS
    )
    table = warehouse.table("stackspend", "line_items")
    found = warehouse.rows(f"SELECT SUM(net_amount_usd), COUNT(DISTINCT id) FROM {table}")
    assert found[0] == (exact_sum([r["net_amount_usd"] for r in truth]), len(truth))
    for group_by in ("provider", "service", "category"):
        expected = api.daily_rollups(START, TODAY, group_by)
        loaded = [
            row[1:]
            for row in warehouse.sorted_rows(
                "stackspend", "daily_rollups", ("group_by", *ROLLUP_FIELDS)
            )
            if row[0] == group_by
        ]
        assert loaded == truth_rows(expected, ROLLUP_FIELDS), group_by


def line_item_days(env: Env) -> list[str]:
    """The start_date of every line-items request, in order."""
    return [r.params["start_date"][0] for r in env.stackspend.requests if r.path == LINE_ITEMS_PATH]


def requests_to(env: Env, path: str) -> int:
    return sum(1 for r in env.stackspend.requests if r.path == path)


def test_a_run_with_nothing_changed_reads_the_lookback_and_the_rollups_only(synced: Env) -> None:
    result = synced.sync()
    assert result.code == 0, result.err
    assert line_item_days(synced) == [(TODAY - timedelta(days=2)).isoformat()]
    rollups = [r.params for r in synced.stackspend.requests if r.path == ROLLUPS_PATH]
    assert len(rollups) == 3  # one per group_by covers the synced range and the new days
    assert {p["start_date"][0] for p in rollups} == {START.isoformat()}
    assert requests_to(synced, ANOMALIES_PATH) == 1
    assert "verified 60 days" in result.out and "none changed" in result.out
    assert_exact(synced, duckdb_warehouse(synced))


@pytest.mark.parametrize("kind", ["amounts", "services"])
def test_restatements_weeks_back_are_reread_and_replaced(synced: Env, kind: str) -> None:
    synced.stackspend.restate(WEEKS_BACK, kind)
    synced.stackspend.restate_last(2)
    result = synced.sync()
    assert result.code == 0, result.err
    assert_exact(synced, duckdb_warehouse(synced))
    days = sorted(line_item_days(synced))
    assert days == sorted(
        [*(d.isoformat() for d in WEEKS_BACK), (TODAY - timedelta(2)).isoformat()]
    )
    assert requests_to(synced, ROLLUPS_PATH) == 3
    for day in WEEKS_BACK:
        assert day.isoformat() in result.out
    assert synced.sync().code == 0  # and the run after it is back to the lookback
    assert len(line_item_days(synced)) == 4


@pytest.mark.postgres
def test_restatements_weeks_back_land_in_postgres(
    env: Env, pg_datasets: dict[str, str], postgres_url: str
) -> None:
    env.setenv(SOURCES__STACKSPEND__START_DATE=START.isoformat())
    dataset = pg_datasets["stackspend"]
    assert env.sync_postgres("stackspend", dataset).code == 0
    env.stackspend.restate(WEEKS_BACK)
    env.stackspend.restate_last(2)
    env.stackspend.reset_requests()
    assert env.sync_postgres("stackspend", dataset).code == 0
    assert len(line_item_days(env)) == 3
    assert_exact(env, PostgresWarehouse(postgres_url, pg_datasets))


def test_verify_days_limits_the_days_checked(synced: Env) -> None:
    synced.setenv(SOURCES__STACKSPEND__VERIFY_DAYS="30")
    synced.stackspend.restate(WEEKS_BACK)  # day -45 is outside the last 30 days
    result = synced.sync()
    assert result.code == 0, result.err
    rollup_starts = {
        r.params["start_date"][0] for r in synced.stackspend.requests if r.path == ROLLUPS_PATH
    }
    assert rollup_starts == {(TODAY - timedelta(days=29)).isoformat()}
    assert WEEKS_BACK[1].isoformat() in line_item_days(synced)
    assert WEEKS_BACK[0].isoformat() not in line_item_days(synced)
    assert "verified 30 days" in result.out


def test_verify_days_zero_turns_verification_off(synced: Env) -> None:
    synced.setenv(SOURCES__STACKSPEND__VERIFY_DAYS="0")
    synced.stackspend.restate(WEEKS_BACK)
    result = synced.sync()
    assert result.code == 0, result.err
    assert line_item_days(synced) == [(TODAY - timedelta(days=2)).isoformat()]
    assert {
        r.params["start_date"][0] for r in synced.stackspend.requests if r.path == ROLLUPS_PATH
    } == {(TODAY - timedelta(days=2)).isoformat()}
    assert "verified" not in result.out


def test_verify_days_must_be_a_whole_number(synced: Env) -> None:
    synced.setenv(SOURCES__STACKSPEND__VERIFY_DAYS="-1")
    result = synced.sync()
    assert result.code == 2
    assert "sources.stackspend.verify_days" in result.err
    assert synced.stackspend.requests == []


# "services": line items move to another service of their provider, every provider's
# total and the day's as they were; only the service rollups tell.
@pytest.mark.parametrize("kind", ["amounts", "services"])
def test_a_restatement_between_reading_line_items_and_rollups_is_caught(
    env: Env, kind: str
) -> None:
    env.setenv(SOURCES__STACKSPEND__START_DATE=START.isoformat())
    day = WEEKS_BACK[0]  # in the first window: its line items are read before its rollups
    env.stackspend.restate_before_next_rollups(day, kind)
    assert env.sync().code == 0
    fields = ", ".join(LINE_ITEM_FIELDS)
    query = f"SELECT {fields} FROM stackspend.line_items WHERE usage_date = '{day}'"
    truth = truth_rows(env.stackspend.line_items(day, day), LINE_ITEM_FIELDS)
    assert sorted(rows(env.duckdb_path, query)) != truth  # what the backfill saw is stale
    env.stackspend.reset_requests()
    result = env.sync()
    assert result.code == 0, result.err
    assert day.isoformat() in line_item_days(env)
    assert "unreconciled" not in result.out
    assert_exact(env, duckdb_warehouse(env))


def test_the_api_disagreeing_with_itself_is_reported_and_not_reread_in_a_loop(synced: Env) -> None:
    api, day = synced.stackspend, WEEKS_BACK[1]
    api.skew_rollups(day, Decimal("5.25"))
    first = synced.sync()
    assert first.code == 0, first.err
    assert day.isoformat() in line_item_days(synced)
    assert f"unreconciled {day.isoformat()}" in first.out and "5.25" in first.out
    assert_exact(synced, duckdb_warehouse(synced))
    api.reset_requests()
    again = synced.sync()
    assert day.isoformat() not in line_item_days(synced)
    assert f"unreconciled {day.isoformat()}" in again.out
    status = synced.cli("status", "--pipelines-dir", str(synced.pipelines_dir))
    assert f"unreconciled {day.isoformat()}" in status.out and "5.25" in status.out
    api.skew_rollups(day, Decimal(0))  # the rollups change: the day is read once more
    api.reset_requests()
    mended = synced.sync()
    assert day.isoformat() in line_item_days(synced)
    assert "unreconciled" not in mended.out
    assert_exact(synced, duckdb_warehouse(synced))


def test_rollups_summed_in_floating_point_are_not_a_change(synced: Env) -> None:
    synced.stackspend.skew_rollups(WEEKS_BACK[1], Decimal("0.00000000000004"))
    result = synced.sync()
    assert result.code == 0, result.err
    assert line_item_days(synced) == [(TODAY - timedelta(days=2)).isoformat()]
    assert "unreconciled" not in result.out


def test_a_pipeline_synced_before_verification_keeps_working(synced: Env) -> None:
    state_file = synced.pipelines_dir / "stackspend" / "state.json"
    state = json.loads(state_file.read_text())
    resources = state["sources"]["stackspend"]["resources"]
    for name in ("line_items", "daily_rollups"):
        for key in ("days", "repairs", "unreconciled"):
            resources[name].pop(key, None)
    state["sources"]["stackspend"].pop("last_verification", None)
    state_file.write_text(json.dumps(state))
    result = synced.sync()
    assert result.code == 0, result.err
    assert line_item_days(synced) == [(TODAY - timedelta(days=2)).isoformat()]  # no reload
    synced.stackspend.restate(WEEKS_BACK)
    synced.stackspend.reset_requests()
    assert synced.sync().code == 0
    assert {d.isoformat() for d in WEEKS_BACK} <= set(line_item_days(synced))
    assert_exact(synced, duckdb_warehouse(synced))


@pytest.mark.slow
@pytest.mark.parametrize("point", ["first-page", "second-load"])
def test_a_sync_killed_between_detection_and_repair_is_finished_by_the_next(
    synced: Env, point: str
) -> None:
    synced.setenv(SOURCES__STACKSPEND__WINDOW_DAYS="1")  # every re-read day is a load of its own
    synced.stackspend.restate(WEEKS_BACK)
    synced.stackspend.restate_last(2)
    where = ["--duckdb-path", str(synced.duckdb_path), "--pipelines-dir", str(synced.pipelines_dir)]
    killed_sync(point, "stackspend", *where)
    result = synced.sync()
    assert result.code == 0, result.err
    assert_exact(synced, duckdb_warehouse(synced))


@pytest.mark.slow
@pytest.mark.postgres
def test_a_postgres_sync_killed_between_detection_and_repair_is_finished_by_the_next(
    env: Env, pg_datasets: dict[str, str], postgres_url: str
) -> None:
    env.setenv(SOURCES__STACKSPEND__START_DATE=START.isoformat())
    dataset = pg_datasets["stackspend"]
    assert env.sync_postgres("stackspend", dataset).code == 0
    env.setenv(SOURCES__STACKSPEND__WINDOW_DAYS="1")
    env.stackspend.restate(WEEKS_BACK)
    where = ["--destination", "postgres", "--dataset", dataset]
    killed_sync(
        "second-load", "stackspend", *where, "--pipelines-dir", str(env.pipelines_dir / "postgres")
    )
    assert env.sync_postgres("stackspend", dataset).code == 0
    assert_exact(env, PostgresWarehouse(postgres_url, pg_datasets))


def test_rows_of_a_day_restated_after_its_period_closed_are_marked(synced: Env) -> None:
    synced.stackspend.restate([CLOSED_DAY])
    assert synced.sync().code == 0
    query = "SELECT DISTINCT usage_date FROM stackspend.line_items"
    marked = rows(synced.duckdb_path, f"{query} WHERE _costsync_restated_at IS NOT NULL")
    assert marked == [(CLOSED_DAY,)]
    assert synced.sync().code == 0  # a later re-read keeps the mark
    query = "SELECT count(*) FROM stackspend.line_items WHERE _costsync_restated_at IS NOT NULL"
    assert rows(synced.duckdb_path, query)[0][0] == len(
        synced.stackspend.line_items(CLOSED_DAY, CLOSED_DAY)
    )


def test_status_reports_the_last_verification(synced: Env) -> None:
    synced.stackspend.restate(WEEKS_BACK)
    assert synced.sync().code == 0
    status = synced.cli("status", "--pipelines-dir", str(synced.pipelines_dir))
    assert status.code == 0, status.err
    assert "last verification" in status.out and "verified 60 days" in status.out
    assert "2 changed" in status.out and "2 re-read" in status.out


def test_a_pipeline_restored_from_the_warehouse_keeps_verifying(synced: Env) -> None:
    import shutil

    shutil.rmtree(synced.pipelines_dir)  # a new container: the state comes back from DuckDB
    synced.stackspend.restate(WEEKS_BACK)
    result = synced.sync()
    assert result.code == 0, result.err
    assert {d.isoformat() for d in WEEKS_BACK} <= set(line_item_days(synced))
    assert "2 changed" in result.out
    assert_exact(synced, duckdb_warehouse(synced))


def test_days_recorded_before_service_sums_are_held_to_their_provider_sums() -> None:
    def day(**sums: str) -> dict[str, Decimal]:
        return {key.replace("_", ":"): Decimal(value) for key, value in sums.items()}

    upgraded = {"aws": "10", TOTAL: "10"}  # recorded by a costsync without service sums
    fresh = record_day(day(aws="10", service_ec2="4", service_s3="6", **{TOTAL: "10"}))
    moved = record_day(day(aws="10", service_ec2="5", service_s3="5", **{TOTAL: "10"}))
    assert add_up(upgraded, fresh) and add_up(fresh, upgraded) and add_up(fresh, fresh)
    assert not add_up(fresh, moved)  # an item moved to another service
    assert not add_up(upgraded, record_day(day(aws="11", service_ec2="11", **{TOTAL: "11"})))
    float_summed = record_day(
        day(aws="10", service_ec2="4.00000000000000004", service_s3="6", **{TOTAL: "10"})
    )
    assert add_up(fresh, float_summed)


def test_service_rollups_that_name_no_service_hold_line_items_to_provider_sums() -> None:
    day = date(2025, 1, 15)
    rows = [  # an API whose service rollups leave `service` null
        {"date": day, "group_by": "provider", "provider_type": "aws", "cost_usd": Decimal(10)},
        {"date": day, "group_by": "service", "provider_type": "aws", "cost_usd": Decimal(10)},
    ]
    table = pa.Table.from_pylist(rows, schema=DAILY_ROLLUPS_SCHEMA)
    expected = RollupSnapshot(Window(day, day), [table]).days[day].expected
    items = {"aws": Decimal(10), TOTAL: Decimal(10), "service:ec2": Decimal(10)}
    assert add_up(record_day(items), expected)
