"""`costsync sync levelfour` end to end: sandbox over HTTP → DuckDB file."""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from decimal import Decimal

import pytest

from sandbox.levelfour import BREAKDOWN_PATH, REVOKED_KEY, LevelFourSandbox
from tests.conftest import TODAY, Env
from tests.warehouse import BREAKDOWN_FIELDS, exact_sum, rows, table_exists, table_rows, truth_rows

FIELDS = BREAKDOWN_FIELDS


def month(offset: int) -> str:
    index = TODAY.year * 12 + TODAY.month - 1 + offset
    return date(index // 12, index % 12 + 1, 1).strftime("%Y-%m")


SYNCED = [month(-3), month(-2), month(-1), month(0)]  # the default start_period: 3 months back


def truth(api: LevelFourSandbox, periods: list[str]) -> list[dict]:
    return [item for period in periods for item in api.breakdown(period)]


def assert_matches(env: Env, periods: list[str] = SYNCED) -> None:
    expected = truth(env.levelfour, periods)
    loaded = table_rows(env.duckdb_path, "levelfour.spending_breakdown", FIELDS)
    assert loaded == truth_rows(expected, FIELDS)
    sums = dict(
        rows(
            env.duckdb_path,
            "SELECT period, SUM(cost) FROM levelfour.spending_breakdown GROUP BY period",
        )
    )
    by_period: dict[str, list[Decimal]] = defaultdict(list)
    for item in expected:
        by_period[item["period"]].append(item["cost"])
    assert sums == {period: exact_sum(costs) for period, costs in by_period.items()}


def periods_requested(env: Env) -> list[str]:
    return sorted(r.params["period"][0] for r in env.levelfour.requests if r.path == BREAKDOWN_PATH)


def test_first_sync_loads_every_period_exactly(env: Env) -> None:
    result = env.sync("levelfour")
    assert result.code == 0, result.err
    assert_matches(env)
    assert f"periods {SYNCED[0]}..{SYNCED[-1]}" in result.out


def test_money_is_decimal_and_period_as_sent(env: Env) -> None:
    assert env.sync("levelfour").code == 0
    types = dict(
        rows(
            env.duckdb_path,
            "SELECT column_name, data_type FROM information_schema.columns"
            " WHERE table_name = 'spending_breakdown'",
        )
    )
    assert types["cost"] == "DECIMAL(38,18)" and types["previous_cost"] == "DECIMAL(38,18)"
    assert types["period"] == "VARCHAR"


def test_rerun_after_current_month_restatement_matches_new_truth(env: Env) -> None:
    assert env.sync("levelfour").code == 0
    env.levelfour.restate_current_month()
    assert env.sync("levelfour").code == 0
    assert_matches(env)


def test_reopen_months_are_reread_every_run_even_without_raw_verification(env: Env) -> None:
    env.levelfour.set_raw(False)
    assert env.sync("levelfour").code == 0
    env.levelfour.reset_requests()
    assert env.sync("levelfour").code == 0
    assert {r.params["period"][0] for r in env.levelfour.requests} == {month(-1), month(0)}
    env.setenv(SOURCES__LEVELFOUR__REOPEN_MONTHS="0")
    assert env.sync("levelfour").code == 0  # last month is read once more, now as closed
    env.levelfour.reset_requests()
    assert env.sync("levelfour").code == 0
    assert {r.params["period"][0] for r in env.levelfour.requests} == {month(0)}


def test_restated_closed_month_is_reread_within_reopen_months(env: Env) -> None:
    assert env.sync("levelfour").code == 0
    env.levelfour.restate_period(month(-1))
    assert env.sync("levelfour").code == 0
    assert_matches(env)


@pytest.mark.parametrize("page_size", [25, None])
def test_raw_pagination_is_followed(env: Env, page_size: int | None) -> None:
    env.levelfour.set_raw(True, page_size=page_size)
    assert env.sync("levelfour").code == 0
    assert_matches(env)


def test_table_format_with_100_per_page_where_raw_is_refused(env: Env) -> None:
    env.levelfour.set_raw(False)
    assert env.sync("levelfour").code == 0
    assert_matches(env)
    table_requests = [
        r.params for r in env.levelfour.requests if r.params.get("format") == ["table"]
    ]
    assert table_requests and all(p["page_size"] == ["100"] for p in table_requests)


def test_key_without_prefix_exits_2_before_any_request(env: Env) -> None:
    env.setenv(SOURCES__LEVELFOUR__API_KEY="sk_live_abcdef")
    result = env.sync("levelfour")
    assert result.code == 2
    assert "sources.levelfour.api_key: must start with l4_live_ or l4_test_" in result.err
    assert "sk_live_abcdef" not in result.err
    assert env.levelfour.request_count() == 0


def test_bad_start_period_exits_2(env: Env) -> None:
    env.setenv(SOURCES__LEVELFOUR__START_PERIOD="2025-13")
    result = env.sync("levelfour")
    assert result.code == 2
    assert "sources.levelfour.start_period: must be a month written YYYY-MM" in result.err
    assert env.levelfour.request_count() == 0


def test_revoked_key_exits_1_and_changes_nothing(env: Env) -> None:
    assert env.sync("levelfour").code == 0
    env.levelfour.restate_current_month()
    before = table_rows(env.duckdb_path, "levelfour.spending_breakdown", FIELDS)
    env.setenv(SOURCES__LEVELFOUR__API_KEY=REVOKED_KEY)
    result = env.sync("levelfour")
    assert result.code == 1
    assert "revoked" in result.err
    assert table_rows(env.duckdb_path, "levelfour.spending_breakdown", FIELDS) == before


def test_unknown_key_exits_1_and_creates_nothing(env: Env) -> None:
    env.setenv(SOURCES__LEVELFOUR__API_KEY="l4_test_not_a_real_key")
    result = env.sync("levelfour")
    assert result.code == 1
    assert "did not accept the key" in result.err
    assert not table_exists(env.duckdb_path, "levelfour.spending_breakdown")


def test_both_vendors_share_one_warehouse_file(env: Env) -> None:
    assert env.sync("stackspend").code == 0
    assert env.sync("levelfour").code == 0
    status = env.cli("status", "--pipelines-dir", str(env.pipelines_dir))
    assert "stackspend: last successful sync" in status.out
    assert "levelfour: last successful sync" in status.out
    assert "spending_breakdown" in status.out
