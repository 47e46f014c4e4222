"""LevelFour verification: closed months re-read with format=raw, replaced when restated."""

from __future__ import annotations

from tests.conftest import Env
from tests.levelfour.test_sync import SYNCED, assert_matches, month, periods_requested
from tests.warehouse import rows


def breakdown_rows_loaded(result_out: str) -> int:
    line = next(line for line in result_out.splitlines() if "spending_breakdown" in line)
    return int(line.split()[1].replace(",", ""))


def test_levelfour_closed_months_are_verified_and_reloaded_only_when_restated(env: Env) -> None:
    assert env.sync("levelfour").code == 0
    env.levelfour.reset_requests()
    result = env.sync("levelfour")
    assert result.code == 0, result.err
    assert periods_requested(env) == SYNCED  # one request a month
    assert "verified 2 months" in result.out and "none changed" in result.out
    open_rows = sum(len(env.levelfour.breakdown(p)) for p in (month(-1), month(0)))
    assert breakdown_rows_loaded(result.out) == open_rows  # unchanged closed months: no load
    assert_matches(env)


def test_levelfour_a_closed_month_restated_outside_reopen_months_lands(env: Env) -> None:
    assert env.sync("levelfour").code == 0
    env.levelfour.restate_period(month(-3))
    result = env.sync("levelfour")
    assert result.code == 0, result.err
    assert month(-3) in result.out
    assert_matches(env)
    marked = rows(
        env.duckdb_path,
        "SELECT DISTINCT period FROM levelfour.spending_breakdown"
        " WHERE _costsync_restated_at IS NOT NULL",
    )
    # the next month's previous_cost moved with it: a correction too
    assert sorted(p for (p,) in marked) == [month(-3), month(-2)]


def test_levelfour_closed_months_are_not_reread_in_table_format(env: Env) -> None:
    env.levelfour.set_raw(False)
    assert env.sync("levelfour").code == 0
    env.levelfour.reset_requests()
    result = env.sync("levelfour")
    assert result.code == 0, result.err
    assert set(periods_requested(env)) == {month(-1), month(0)}
    assert "closed months are not re-read" in result.out
