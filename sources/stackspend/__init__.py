"""StackSpend: cost line items, daily rollups and anomaly alerts.

Docs: https://api.stackspend.com (see shared/api/stackspend-api.txt).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import dlt
import pyarrow as pa
import pyarrow.compute as pc
from dlt.sources import DltResource

from sources.shared.checks import (
    check_api_key,
    check_base_url,
    check_int,
    check_order,
    check_seconds,
    parse_day,
)
from sources.shared.progress import SyncProgress, current_load_scope
from sources.shared.replace import Replacement, read_windows
from sources.shared.retry import RetryPolicy
from sources.shared.windows import Window, WindowPlan
from sources.stackspend.client import StackSpendClient
from sources.stackspend.helpers import anomaly_pages, line_item_pages, rollup_tables
from sources.stackspend.settings import (
    ANOMALIES_COLUMNS,
    DAILY_ROLLUPS_COLUMNS,
    DAILY_ROLLUPS_KEY,
    DAILY_ROLLUPS_KEYED,
    DEFAULT_ANOMALY_LOOKBACK_DAYS,
    DEFAULT_BASE_URL,
    DEFAULT_LOOKBACK_DAYS,
    DEFAULT_REQUESTS_PER_MINUTE,
    DEFAULT_START_DAYS_AGO,
    DEFAULT_WINDOW_DAYS,
    LINE_ITEMS_COLUMNS,
    LINE_ITEMS_SCHEMA,
)

KEY = "sources.stackspend"
MERGE = {"disposition": "merge", "strategy": "delete-insert"}
# Re-read days are replaced whole, and a line item the API moved to a re-read day
# leaves its old day. dlt's default for a primary key plus a merge key is
# `EXISTS (... d.id = s.id OR d.usage_date = s.usage_date)`, which DuckDB and
# Postgres can only run as a nested loop; one IN over the ids to replace (the
# loaded ones, and every id on the re-read days) runs as a hash semi-join.
LINE_ITEMS_MERGE = {
    **MERGE,
    "destination_scope": (
        "id IN (SELECT id FROM {staging_table} UNION ALL SELECT id FROM {table}"
        " WHERE usage_date IN (SELECT usage_date FROM {staging_table}))"
    ),
}


@dataclass(frozen=True)
class SyncRange:
    """What one run reads: the date range, lookbacks and how far to go."""

    start: date
    end: date
    lookback_days: int
    anomaly_lookback_days: int
    window_days: int
    resume_only: bool = False
    max_windows: int | None = None


@dlt.source(name="stackspend", max_table_nesting=0)
def stackspend_source(
    api_key: str = dlt.secrets.value,
    base_url: str = DEFAULT_BASE_URL,
    requests_per_minute: int = DEFAULT_REQUESTS_PER_MINUTE,
    start_date: str | None = None,
    end_date: str | None = None,
    lookback_days: int = DEFAULT_LOOKBACK_DAYS,
    anomaly_lookback_days: int = DEFAULT_ANOMALY_LOOKBACK_DAYS,
    window_days: int = DEFAULT_WINDOW_DAYS,
    max_attempts: int = 10,
    backoff_seconds: float = 1.0,
    timeout_seconds: float = 60.0,
) -> Sequence[DltResource]:
    """StackSpend line items, daily rollups and anomalies, loaded incrementally.

    Every value is checked before any request; a bad one raises `ConfigError`.

    Args:
        api_key: a StackSpend API key (secret) with the read scopes of the resources you load.
        base_url: the API's address; https:// unless the host is loopback.
        requests_per_minute: the key's rate limit; requests are paced to it.
        start_date: first day to load (YYYY-MM-DD); default 90 days before today (UTC).
        end_date: last day to load (YYYY-MM-DD); default today (UTC).
        lookback_days: days before the last loaded day that every run reads again.
        anomaly_lookback_days: days before the newest anomaly that every run reads again.
        window_days: days per request window; progress is committed after each window.
        max_attempts: attempts per request before giving up on retriable errors.
        backoff_seconds: first backoff between retries; it doubles each time.
        timeout_seconds: how long to wait for one response.
    """
    scope = current_load_scope()
    sync = replace(
        _sync_range(start_date, end_date, lookback_days, anomaly_lookback_days, window_days),
        resume_only=scope.resume_only,
        max_windows=scope.max_windows,
    )
    tracker = scope.progress
    client = StackSpendClient(
        check_base_url(f"{KEY}.base_url", base_url),
        check_api_key(f"{KEY}.api_key", api_key),
        check_int(f"{KEY}.requests_per_minute", requests_per_minute, 1),
        RetryPolicy(
            max_attempts=check_int(f"{KEY}.max_attempts", max_attempts, 1),
            backoff_seconds=check_seconds(f"{KEY}.backoff_seconds", backoff_seconds, True),
        ),
        timeout_seconds=check_seconds(f"{KEY}.timeout_seconds", timeout_seconds, False),
        stats=tracker.stats,
    )
    return (
        line_items(client, sync, tracker),
        daily_rollups(client, sync, tracker),
        anomalies(client, sync, tracker),
    )


@dlt.resource(
    name="line_items",
    file_format="parquet",
    write_disposition=LINE_ITEMS_MERGE,
    primary_key="id",
    columns=LINE_ITEMS_COLUMNS,
)
def line_items(
    client: StackSpendClient, sync: SyncRange, progress: SyncProgress
) -> Iterator[pa.Table]:
    """Cost line items by usage_date window, 1000 per page; re-read days are replaced whole."""
    yield from _read_windows(
        "line_items",
        sync,
        progress,
        lambda window: line_item_pages(client, window),
        Replacement(LINE_ITEMS_SCHEMA, "usage_date", _days),
        client.session.base_url,
    )


@dlt.resource(
    name="daily_rollups",
    file_format="parquet",
    write_disposition=MERGE,
    merge_key="date",
    columns=DAILY_ROLLUPS_COLUMNS,
)
def daily_rollups(
    client: StackSpendClient, sync: SyncRange, progress: SyncProgress
) -> Iterator[pa.Table]:
    """Daily totals by provider, service and category in one table with a group_by column."""
    yield from _read_windows(
        "daily_rollups",
        sync,
        progress,
        lambda window: rollup_tables(client, window),
        Replacement(DAILY_ROLLUPS_KEYED, "date", _days, row_key=DAILY_ROLLUPS_KEY),
        client.session.base_url,
    )


@dlt.resource(
    name="anomalies",
    file_format="parquet",
    write_disposition=MERGE,
    primary_key="id",
    columns=ANOMALIES_COLUMNS,
)
def anomalies(
    client: StackSpendClient, sync: SyncRange, progress: SyncProgress
) -> Iterator[pa.Table]:
    """Anomaly alerts detected since the last run's newest minus anomaly_lookback_days."""
    if sync.resume_only:
        return
    state = dlt.current.resource_state()
    since = anomalies_since(state, sync)
    progress.reading("anomalies", f"since {since.isoformat()}")
    newest = state.get("newest_detected_date")
    for table in anomaly_pages(client, since):
        latest = pc.max(table.column("detected_date")).as_py()
        newest = max(newest or latest.isoformat(), latest.isoformat())
        progress.add_rows("anomalies", table.num_rows)
        yield table
    state["newest_detected_date"] = newest
    first = state.get("first_since")
    state["first_since"] = min(first or since.isoformat(), since.isoformat())


def anomalies_since(state: dict[str, Any], sync: SyncRange) -> datetime:
    """Where this run's anomaly read starts.

    The first run starts at start_date 00:00 UTC; later runs go back
    anomaly_lookback_days from the newest detected_date loaded, so status
    changes land, or to start_date if it moved earlier than ever read.
    """
    first = datetime.combine(sync.start, time(), UTC)
    newest, floor = state.get("newest_detected_date"), state.get("first_since")
    if not newest or (floor and first < datetime.fromisoformat(floor)):
        return first
    return max(first, datetime.fromisoformat(newest) - timedelta(days=sync.anomaly_lookback_days))


def _read_windows(
    resource: str,
    sync: SyncRange,
    progress: SyncProgress,
    read_window: Callable[[Window], Iterator[pa.Table]],
    replacement: Replacement,
    read_ahead_key: str,
) -> Iterator[pa.Table]:
    """Read the resource's planned windows, committing the plan after each one."""
    plan = WindowPlan(dlt.current.resource_state())
    if sync.resume_only:
        windows = plan.pending()
    else:
        windows = plan.plan(sync.start, sync.end, sync.lookback_days, sync.window_days)
    now, later = windows[: sync.max_windows], windows[len(windows[: sync.max_windows]) :]
    yield from read_windows(
        resource,
        now,
        read_window,
        replacement,
        plan.complete,
        progress,
        upcoming=later[0] if later else None,
        read_ahead_key=(resource, read_ahead_key),
    )
    progress.set_pending(resource, len(plan.pending()))


def _sync_range(
    start_date: str | None,
    end_date: str | None,
    lookback_days: int,
    anomaly_lookback_days: int,
    window_days: int,
) -> SyncRange:
    today = datetime.now(UTC).date()
    end = parse_day(f"{KEY}.end_date", end_date) if end_date else today
    start = (
        parse_day(f"{KEY}.start_date", start_date)
        if start_date
        else today - timedelta(days=DEFAULT_START_DAYS_AGO)
    )
    check_order(f"{KEY}.start_date", start, f"{KEY}.end_date", end)
    return SyncRange(
        start=start,
        end=end,
        lookback_days=check_int(f"{KEY}.lookback_days", lookback_days, 0),
        anomaly_lookback_days=check_int(f"{KEY}.anomaly_lookback_days", anomaly_lookback_days, 0),
        window_days=check_int(f"{KEY}.window_days", window_days, 1),
    )


def _days(window: Window) -> list[date]:
    return list(window.days())
