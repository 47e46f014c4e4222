"""A sync killed with SIGKILL anywhere, then run again, leaves exact tables."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import Env
from tests.crash import LATER_CALLS, LEVELFOUR_POINTS, POINTS
from tests.levelfour.test_sync import assert_matches
from tests.stackspend.test_sync import assert_warehouse_matches_api
from tests.test_postgres import START
from tests.warehouse import LINE_ITEM_FIELDS, PostgresWarehouse, truth_rows

ROOT = Path(__file__).parent.parent
STACKSPEND_POINTS = sorted([*(p for p in POINTS if p not in LEVELFOUR_POINTS[:2]), *LATER_CALLS])


def killed_sync(point: str, *args: str) -> None:
    """Run `costsync sync ...` in a child that SIGKILLs itself at `point`."""
    child = subprocess.run(
        [sys.executable, "-m", "tests.crash", point, "sync", *args],
        cwd=ROOT,
        env=os.environ,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert child.returncode == -signal.SIGKILL, (point, child.returncode, child.stderr)


@pytest.fixture
def windows(env: Env) -> Env:
    """Three 7-day windows, so kills land between loads too."""
    env.setenv(SOURCES__STACKSPEND__WINDOW_DAYS="7")
    return env


@pytest.mark.slow
@pytest.mark.parametrize("point", STACKSPEND_POINTS)
def test_killed_duckdb_sync_then_rerun_is_exact(windows: Env, point: str) -> None:
    env = windows
    killed_sync(
        point,
        "stackspend",
        "--duckdb-path",
        str(env.duckdb_path),
        "--pipelines-dir",
        str(env.pipelines_dir),
    )
    result = env.sync()
    assert result.code == 0, result.err
    assert_warehouse_matches_api(env)
    env.stackspend.restate_last(2)
    assert env.sync().code == 0
    assert_warehouse_matches_api(env)


@pytest.mark.slow
@pytest.mark.parametrize("point", LEVELFOUR_POINTS)
def test_killed_levelfour_sync_then_rerun_is_exact(env: Env, point: str) -> None:
    where = ["--duckdb-path", str(env.duckdb_path), "--pipelines-dir", str(env.pipelines_dir)]
    killed_sync(point, "levelfour", *where)
    assert env.sync("levelfour").code == 0
    env.levelfour.restate_current_month()
    assert env.sync("levelfour").code == 0
    assert_matches(env)


@pytest.mark.slow
@pytest.mark.parametrize("point", STACKSPEND_POINTS)
def test_killed_postgres_sync_then_rerun_is_exact(
    windows: Env, point: str, pg_datasets: dict[str, str], postgres_url: str
) -> None:
    env = windows
    dataset = pg_datasets["stackspend"]
    env.setenv(DESTINATION__POSTGRES__CREDENTIALS=postgres_url)
    pipelines = str(env.pipelines_dir / "postgres")
    killed_sync(
        point,
        "stackspend",
        "--destination",
        "postgres",
        "--dataset",
        dataset,
        "--pipelines-dir",
        pipelines,
    )
    assert env.sync_postgres("stackspend", dataset).code == 0
    env.stackspend.restate_last(2)
    assert env.sync_postgres("stackspend", dataset).code == 0
    warehouse = PostgresWarehouse(postgres_url, pg_datasets)
    expected = truth_rows(env.stackspend.line_items(START, None), LINE_ITEM_FIELDS)
    assert warehouse.sorted_rows("stackspend", "line_items", LINE_ITEM_FIELDS) == expected
    ids = warehouse.rows(
        f"SELECT COUNT(*) - COUNT(DISTINCT id) FROM {warehouse.table('stackspend', 'line_items')}"
    )
    assert ids == [(0,)]
