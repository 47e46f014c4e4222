"""When an API's data ends before today, restatements of its newest days still land."""

from __future__ import annotations

from datetime import timedelta

import pytest

from sandbox.levelfour import LevelFourSandbox
from sandbox.stackspend import StackSpendSandbox
from tests.conftest import TODAY, Env
from tests.levelfour.test_sync import FIELDS, month
from tests.warehouse import LINE_ITEM_FIELDS, table_rows, truth_rows

DATA_END = TODAY - timedelta(days=10)
START = TODAY - timedelta(days=20)


@pytest.fixture
def stackspend_app() -> StackSpendSandbox:
    return StackSpendSandbox(seed=5, start_date=START, end_date=DATA_END, line_items_per_day=50)


@pytest.fixture
def levelfour_app() -> LevelFourSandbox:
    return LevelFourSandbox(seed=5, current_period=month(-5), months=4)


def test_stackspend_restatement_of_the_last_data_days_lands(env: Env) -> None:
    assert env.sync("stackspend", "--resources", "line_items").code == 0
    env.stackspend.restate_last(2)
    assert env.sync("stackspend", "--resources", "line_items").code == 0
    expected = truth_rows(env.stackspend.line_items(START, DATA_END), LINE_ITEM_FIELDS)
    assert table_rows(env.duckdb_path, "stackspend.line_items", LINE_ITEM_FIELDS) == expected


def test_levelfour_restatement_of_the_newest_period_lands(env: Env) -> None:
    env.setenv(SOURCES__LEVELFOUR__START_PERIOD=month(-8))
    assert env.sync("levelfour").code == 0
    env.levelfour.restate_period(month(-5))
    assert env.sync("levelfour").code == 0
    expected = [item for p in env.levelfour.periods() for item in env.levelfour.breakdown(p)]
    expected = [item for item in expected if item["period"] >= month(-8)]
    loaded = table_rows(env.duckdb_path, "levelfour.spending_breakdown", FIELDS)
    assert loaded == truth_rows(expected, FIELDS)
