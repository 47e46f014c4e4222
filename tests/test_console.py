"""What the CLI prints: the live progress line and one-line API errors."""

from __future__ import annotations

import io
import re

import pytest
import responses
from rich.console import Console

from pipelines.console import ProgressDisplay
from sources.shared.progress import SyncProgress
from tests.conftest import Env


def terminal(width: int) -> tuple[Console, io.StringIO]:
    screen = io.StringIO()
    return Console(file=screen, force_terminal=True, width=width, color_system=None), screen


def test_progress_shows_one_line_per_sync_within_the_terminal_width() -> None:
    console, screen = terminal(width=100)
    with ProgressDisplay(console) as display:
        syncs = {}
        for workspace in ("acme", "globex"):
            syncs[workspace] = SyncProgress(listeners=[display.track(f"stackspend_{workspace}")])
        for progress in syncs.values():
            progress.stats.requests_per_minute = 60
            progress.set_pending("line_items", 3)
            progress.stats.count("/api/v1/public/line-items")
            progress.add_rows("line_items", 1000)
            progress.window_done("line_items")
        display.progress.refresh()
        drawn = screen.getvalue()
    plain = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "\n", drawn).replace("\r", "\n")
    last = [line for line in plain.split("\n") if "stackspend_" in line][-2:]
    assert {line.split()[0] for line in last} == {"stackspend_acme", "stackspend_globex"}
    for line in last:
        assert len(line.rstrip()) <= 100
        assert "1/3 windows" in line and "1,000 rows" in line and "1 requests" in line
        assert "0:02 left" in line  # 2 windows of 1 request at 60 a minute


def test_progress_is_silent_when_piped() -> None:
    piped = io.StringIO()
    console = Console(file=piped, force_terminal=False)
    with ProgressDisplay(console) as display:
        SyncProgress(listeners=[display.track("x")]).add_rows("line_items", 5)
    assert piped.getvalue() == ""


@responses.activate
def test_a_levelfour_422_prints_the_offending_parameter(env: Env) -> None:
    base = "https://api.levelfour.test"
    env.setenv(SOURCES__LEVELFOUR__BASE_URL=base)
    detail = [
        {
            "type": "string_pattern_mismatch",
            "loc": ["query", "period"],
            "msg": "String should match pattern '^\\\\d{4}-\\\\d{2}$'",
            "input": "2025-1",
        }
    ]
    responses.get(f"{base}/api/v1/spending/breakdown", status=422, json={"detail": detail})
    result = env.sync("levelfour")
    assert result.code == 1
    assert "(422): period: String should match pattern" in result.err
    assert len(result.err.strip().splitlines()) == 1


@pytest.mark.parametrize("resources", [None, "line_items,daily_rollups"])
@responses.activate
def test_missing_scope_line_says_which_resource_needs_which_scope(
    env: Env, resources: str | None
) -> None:
    base = "https://api.stackspend.test"
    env.setenv(SOURCES__STACKSPEND__BASE_URL=base)
    error = {"code": "INVALID_SCOPE", "message": "This API key lacks rollups:read"}
    body = {"data": None, "error": error, "meta": {}}
    responses.get(f"{base}/api/v1/public/rollups/daily", status=403, json=body)
    responses.get(f"{base}/api/v1/public/line-items", json={"data": [], "meta": {}})
    responses.get(f"{base}/api/v1/public/anomalies", json={"data": [], "meta": {}})
    args = ["--resources", resources] if resources else []
    result = env.sync("stackspend", *args)
    assert result.code == 1
    assert "daily_rollups needs scope rollups:read: add it to the key" in result.err
    if resources:
        assert "--resources line_items" in result.err
    else:
        assert "--resources line_items,anomalies" in result.err
