"""What the CLI prints: the live progress line and one-line API errors."""

from __future__ import annotations

import io

import pytest
import responses

from pipelines.console import ProgressLine
from sources.shared.progress import SyncProgress
from tests.conftest import Env


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_line_shows_window_rows_and_requests_on_a_terminal() -> None:
    terminal = Terminal()
    line = ProgressLine("stackspend → duckdb", stream=terminal, every_seconds=0)
    progress = SyncProgress(listeners=[line])
    progress.reading("line_items", "2025-01-01..2025-01-30")
    progress.stats.count("/api/v1/public/line-items")
    progress.add_rows("line_items", 1000)
    shown = terminal.getvalue().split("\r")[-1]
    assert "line_items 2025-01-01..2025-01-30" in shown
    assert "1,000 rows" in shown and "1 requests" in shown
    line.clear()
    assert terminal.getvalue().endswith("\r")


def test_progress_line_is_silent_when_piped() -> None:
    piped = io.StringIO()
    progress = SyncProgress(listeners=[ProgressLine("x", stream=piped, every_seconds=0)])
    progress.add_rows("line_items", 5)
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
