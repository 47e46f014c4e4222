"""Resumable backfills, fault storms and concurrent runs."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from datetime import date, timedelta

import pytest

from sandbox.http import Request, Response
from sandbox.stackspend import LINE_ITEMS_PATH, StackSpendSandbox
from tests.conftest import TODAY, Env, wait_until
from tests.stackspend.test_sync import assert_warehouse_matches_api, counts, state_of
from tests.test_crash_safety import killed_sync
from tests.warehouse import LINE_ITEM_FIELDS, table_rows, truth_rows

BACKFILL_START = TODAY - timedelta(days=209)  # 210 days: seven 30-day windows


@pytest.fixture
def stackspend_app() -> StackSpendSandbox:
    """210 days of data, 20 line items a day: one request per 30-day window."""
    return StackSpendSandbox(
        seed=9, start_date=BACKFILL_START, end_date=TODAY, line_items_per_day=20
    )


def window_starts(requests: list) -> list[str]:
    return sorted(r.params["start_date"][0] for r in requests if r.path == LINE_ITEMS_PATH)


def test_a_killed_backfill_resumes_at_the_next_window(env: Env) -> None:
    start = BACKFILL_START.isoformat()
    args = ["--start-date", start, "--resources", "line_items"]
    where = ["--duckdb-path", str(env.duckdb_path), "--pipelines-dir", str(env.pipelines_dir)]
    killed_sync("window-end@3", "stackspend", *where, *args)  # dies finishing window 3
    first_run = window_starts(env.stackspend.requests)
    assert len(first_run) in (3, 4)  # windows 1-3, perhaps window 4 read ahead
    env.stackspend.reset_requests()
    assert env.sync("stackspend", *args).code == 0
    resumed = window_starts(env.stackspend.requests)
    expected = [(BACKFILL_START + timedelta(days=30 * k)).isoformat() for k in range(2, 7)]
    assert resumed == expected  # window 3 again (it never committed), then 4..7: no restart
    truth = truth_rows(env.stackspend.line_items(BACKFILL_START, TODAY), LINE_ITEM_FIELDS)
    assert table_rows(env.duckdb_path, "stackspend.line_items", LINE_ITEM_FIELDS) == truth


def test_fault_storm_still_loads_exact_data(env: Env) -> None:
    env.setenv(
        SOURCES__STACKSPEND__TIMEOUT_SECONDS="0.5",
        SOURCES__STACKSPEND__MAX_ATTEMPTS="12",
        SOURCES__STACKSPEND__WINDOW_DAYS="14",
    )
    env.stackspend.configure_faults(
        seed=1,
        error_rate=0.2,
        invalid_json_rate=0.05,
        truncated_rate=0.05,
        slow_rate=0.05,
        slow_seconds=1.0,
    )
    start = (TODAY - timedelta(days=60)).isoformat()
    result = env.sync("stackspend", "--start-date", start)
    assert result.code == 0, result.err
    stormy = env.stackspend.request_count()
    assert env.stackspend.request_count(status=500) >= 3
    assert_exact(env, TODAY - timedelta(days=60))
    env.stackspend.clear_faults()
    env.stackspend.reset_requests()
    assert env.sync("stackspend", "--full-refresh", "--start-date", start).code == 0
    assert stormy >= env.stackspend.request_count() + 8  # the storm really blew
    assert result_retries(result.out) >= 3  # the summary counts what was retried


def result_retries(summary: str) -> int:
    """The retry count a summary reports (0 when it reports none)."""
    found = re.search(r"(\d+) request\(s\) retried", summary)
    return int(found.group(1)) if found else 0


def test_past_the_retry_budget_exit_1_and_nothing_changes(env: Env) -> None:
    assert env.sync().code == 0
    before, state_before = counts(env), state_of(env)
    env.stackspend.restate_last(2)
    env.stackspend.configure_faults(error_rate=1.0)
    env.setenv(SOURCES__STACKSPEND__MAX_ATTEMPTS="3")
    result = env.sync()
    assert result.code == 1
    assert "gave up after 3 attempts" in result.err and "INTERNAL_ERROR" in result.err
    assert len(result.err.strip().splitlines()) == 1
    assert counts(env) == before
    assert state_of(env) == state_before


def test_under_cron_a_run_past_the_retry_budget_prints_one_line(env: Env) -> None:
    env.stackspend.configure_faults(error_rate=1.0)
    env.setenv(SOURCES__STACKSPEND__MAX_ATTEMPTS="3")
    where = ["--duckdb-path", str(env.duckdb_path), "--pipelines-dir", str(env.pipelines_dir)]
    costsync = os.path.join(os.path.dirname(sys.executable), "costsync")
    child = subprocess.run(
        [costsync, "sync", "stackspend", *where],
        env=os.environ,
        capture_output=True,
        text=True,
        timeout=120,
    )  # stderr is a pipe, as under cron: the retries are counted, not narrated
    assert child.returncode == 1
    (line,) = child.stderr.strip().splitlines()
    assert "gave up after 3 attempts" in line


def test_a_second_sync_of_the_same_pipeline_refuses(env: Env) -> None:
    env.stackspend.configure_faults(slow_rate=1.0, slow_seconds=0.5)
    where = ["--duckdb-path", str(env.duckdb_path), "--pipelines-dir", str(env.pipelines_dir)]
    first = subprocess.Popen(
        [sys.executable, "-m", "pipelines.cli", "sync", "stackspend", *where],
        env=os.environ,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    wait_until(lambda: env.stackspend.request_count() > 0, what="the first sync's requests")
    second = env.sync()
    assert second.code == 1
    assert "another sync of pipeline 'stackspend' is running" in second.err
    assert "nothing was done" in second.err
    _, err = first.communicate(timeout=120)
    assert first.returncode == 0, err
    env.stackspend.clear_faults()
    assert_warehouse_matches_api(env)


def assert_exact(env: Env, start: date) -> None:
    truth = truth_rows(env.stackspend.line_items(start, TODAY), LINE_ITEM_FIELDS)
    assert table_rows(env.duckdb_path, "stackspend.line_items", LINE_ITEM_FIELDS) == truth


def test_two_pipelines_into_one_duckdb_file_take_turns(env: Env) -> None:
    env.stackspend.configure_faults(slow_rate=1.0, slow_seconds=0.3)
    where = ["--duckdb-path", str(env.duckdb_path), "--pipelines-dir", str(env.pipelines_dir)]
    first = subprocess.Popen(
        [sys.executable, "-m", "pipelines.cli", "sync", "stackspend", *where],
        env=os.environ,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    wait_until(lambda: env.stackspend.request_count() > 0, what="the first sync's requests")
    second = env.sync("levelfour")
    _, err = first.communicate(timeout=120)
    assert first.returncode == 0, err
    assert second.code == 0, second.err
    env.stackspend.clear_faults()
    assert_warehouse_matches_api(env)


def test_levelfour_fault_storm_still_loads_exact_data(env: Env) -> None:
    from tests.levelfour.test_sync import assert_matches

    env.setenv(SOURCES__LEVELFOUR__TIMEOUT_SECONDS="0.5", SOURCES__LEVELFOUR__MAX_ATTEMPTS="12")
    env.levelfour.set_raw(True, page_size=10)  # many pages, many chances to fail
    env.levelfour.configure_faults(
        seed=2,
        error_rate=0.2,
        invalid_json_rate=0.05,
        truncated_rate=0.05,
        slow_rate=0.05,
        slow_seconds=1.0,
    )
    result = env.sync("levelfour")
    assert result.code == 0, result.err
    assert env.levelfour.request_count(status=500) >= 2
    assert_matches(env)


class FailingFrom:
    """The sandbox, answering 500 to line-item requests from `day` on."""

    def __init__(self, app: StackSpendSandbox, day: str) -> None:
        self.answer, self.day, self.failing = app.handle, day, True

    def handle(self, request: Request) -> Response | None:
        start = request.param("start_date")
        if self.failing and request.path == LINE_ITEMS_PATH and start and start >= self.day:
            error = {"code": "INTERNAL_ERROR", "message": "down"}
            return Response.json(500, {"data": None, "error": error, "meta": {}})
        return self.answer(request)


def test_a_failure_in_a_later_window_keeps_the_windows_before_it_whole(env: Env) -> None:
    third = (BACKFILL_START + timedelta(days=60)).isoformat()
    failing = FailingFrom(env.stackspend, third)
    env.stackspend.handle = failing.handle  # type: ignore[method-assign]
    env.setenv(SOURCES__STACKSPEND__MAX_ATTEMPTS="2")
    args = ["--start-date", BACKFILL_START.isoformat(), "--resources", "line_items"]
    result = env.sync("stackspend", *args)
    assert result.code == 1 and "gave up after 2 attempts" in result.err
    two_windows = BACKFILL_START + timedelta(days=59)
    loaded = table_rows(env.duckdb_path, "stackspend.line_items", LINE_ITEM_FIELDS)
    truth = truth_rows(env.stackspend.line_items(BACKFILL_START, two_windows), LINE_ITEM_FIELDS)
    assert loaded == truth  # windows 1 and 2 exactly, nothing of window 3
    line_items = state_of(env)["sources"]["stackspend"]["resources"]["line_items"]
    assert line_items["synced_through"] == two_windows.isoformat()
    failing.failing = False
    env.stackspend.reset_requests()
    assert env.sync("stackspend", *args).code == 0
    assert window_starts(env.stackspend.requests)[0] == third
    assert_exact(env, BACKFILL_START)


def test_ctrl_c_while_a_429_asks_for_minutes_stops_at_once_and_loses_nothing(env: Env) -> None:
    env.setenv(
        SOURCES__STACKSPEND__START_DATE=BACKFILL_START.isoformat(),
        SOURCES__STACKSPEND__REQUESTS_PER_MINUTE="60",
    )
    where = ["--duckdb-path", str(env.duckdb_path), "--pipelines-dir", str(env.pipelines_dir)]
    costsync = os.path.join(os.path.dirname(sys.executable), "costsync")
    child = subprocess.Popen(
        [costsync, "sync", "stackspend", *where],
        env=os.environ,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    api = env.stackspend
    try:  # a few windows in (one read ahead in the background), every answer turns 429
        wait_until(lambda: api.request_count(LINE_ITEMS_PATH) >= 3, timeout=60, what="3 windows")
        api.fail_next(10_000, status=429, retry_after=300)
        wait_until(lambda: api.request_count(status=429) >= 1, timeout=60, what="a 429")
        child.send_signal(signal.SIGINT)
        # a bound, not a timing: the retry waits are 300 s each
        _, err = child.communicate(timeout=60)
    finally:
        child.kill()
    assert child.returncode == 130, err
    assert err.strip().splitlines()[-1] == (
        "costsync: error: interrupted; the next sync resumes where this one stopped"
    )
    api.clear_faults()
    env.setenv(SOURCES__STACKSPEND__REQUESTS_PER_MINUTE="100000")
    assert env.sync().code == 0
    truth = truth_rows(api.line_items(BACKFILL_START, TODAY), LINE_ITEM_FIELDS)
    assert table_rows(env.duckdb_path, "stackspend.line_items", LINE_ITEM_FIELDS) == truth
