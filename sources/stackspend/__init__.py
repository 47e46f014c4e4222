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
    MAX_ATTEMPTS,
    MAX_DAYS,
    MAX_REQUESTS_PER_MINUTE,
    MAX_WINDOW_DAYS,
    check_api_key,
    check_base_url,
    check_int,
    check_order,
    check_seconds,
    parse_day,
)
from sources.shared.progress import SyncProgress, current_load_scope
from sources.shared.replace import Replacement, read_windows, replace_keys
from sources.shared.retry import RetryPolicy
from sources.shared.windows import Window, WindowPlan, take_windows
from sources.stackspend.client import StackSpendClient
from sources.stackspend.helpers import (
    anomaly_pages,
    line_item_pages,
    mark_restated,
    providers_with_costs,
    rollup_tables,
)
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
from sources.stackspend.verification import (
    LineItemLedger,
    RollupLedger,
    RollupSnapshot,
    Verifier,
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
    now: datetime
    verify_days: int | None = None
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
    verify_days: int | None = None,
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
        verify_days: days up to the newest synced day whose rollups every run checks
            for restatements (default: the whole synced range; 0: no verification).
        max_attempts: attempts per request before giving up on retriable errors.
        backoff_seconds: first backoff between retries; it doubles each time.
        timeout_seconds: how long to wait for one response.
    """
    scope = current_load_scope()
    sync = replace(
        _sync_range(start_date, end_date, lookback_days, anomaly_lookback_days, window_days),
        verify_days=_check_verify_days(verify_days),
        resume_only=scope.resume_only,
        max_windows=scope.max_windows,
    )
    tracker = scope.progress
    client = StackSpendClient(
        check_base_url(f"{KEY}.base_url", base_url),
        check_api_key(f"{KEY}.api_key", api_key),
        check_int(f"{KEY}.requests_per_minute", requests_per_minute, 1, MAX_REQUESTS_PER_MINUTE),
        RetryPolicy(
            max_attempts=check_int(f"{KEY}.max_attempts", max_attempts, 1, MAX_ATTEMPTS),
            backoff_seconds=check_seconds(f"{KEY}.backoff_seconds", backoff_seconds, True),
        ),
        timeout_seconds=check_seconds(f"{KEY}.timeout_seconds", timeout_seconds, False),
        stats=tracker.stats,
    )
    verifier = Verifier(
        lambda span: rollup_tables(client, span), sync.verify_days, sync.end, tracker, sync.now
    )
    return (
        line_items(client, sync, tracker, verifier),
        daily_rollups(client, sync, tracker, verifier),
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
    client: StackSpendClient, sync: SyncRange, progress: SyncProgress, verifier: Verifier
) -> Iterator[pa.Table]:
    """Cost line items by usage_date window, 1000 per page; re-read days are replaced whole.

    Besides the lookback and new days, every day verification finds changed is re-read.
    """
    state = dlt.current.resource_state()
    plan, ledger = WindowPlan(state), LineItemLedger(state, sync.now)
    windows = _planned(plan, sync)
    snapshot = None
    if not sync.resume_only and (horizon := verifier.horizon(plan)):
        snapshot = verifier.snapshot(horizon)
        if snapshot is not None:
            changed = ledger.changed(snapshot, horizon)
            ledger.expect(snapshot, changed)
            plan.add_days(changed, sync.window_days)
            verifier.found(horizon, changed, reread=changed)
            windows = plan.pending()

    def read_window(window: Window) -> Iterator[pa.Table]:
        return mark_restated(line_item_pages(client, window), ledger.restated_at(window))

    def complete(window: Window, days: list[date]) -> None:
        plan.complete(window, days)
        ledger.complete(window, snapshot)

    yield from _read_windows(
        "line_items",
        windows,
        sync,
        progress,
        WindowReader(read_window, complete, ledger.observe),
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
    client: StackSpendClient, sync: SyncRange, progress: SyncProgress, verifier: Verifier
) -> Iterator[pa.Table]:
    """Daily totals by provider, service and category in one table with a group_by column.

    Days verification finds changed are replaced from the rollups it read.
    """
    state = dlt.current.resource_state()
    plan, ledger = WindowPlan(state), RollupLedger(state)
    windows = _planned(plan, sync)
    replacement = Replacement(DAILY_ROLLUPS_KEYED, "date", _days, row_key=DAILY_ROLLUPS_KEY)
    if not sync.resume_only and (horizon := verifier.horizon(plan)):
        snapshot = verifier.snapshot(horizon)
        if snapshot is not None:
            changed, unrecorded = ledger.changed(snapshot, horizon, skip=windows)
            verifier.found(horizon, changed)
            if changed or unrecorded:
                days = sorted({*changed, *unrecorded})
                progress.add_rows("daily_rollups", len(days))
                yield from replace_keys(replacement, snapshot.rows_of(days), days)
                ledger.record(snapshot, days)

    def complete(window: Window, days: list[date]) -> None:
        plan.complete(window, days)
        ledger.complete(window)

    yield from _read_windows(
        "daily_rollups",
        windows,
        sync,
        progress,
        WindowReader(
            lambda window: _rollups_of(window, client, verifier.rollups), complete, ledger.observe
        ),
        replacement,
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

    def providers() -> set[str]:
        return known_providers() | providers_with_costs(client, Window(sync.start, sync.end))

    for table in anomaly_pages(client, since, providers):
        latest = pc.max(table.column("detected_date")).as_py()
        newest = max(newest or latest.isoformat(), latest.isoformat())
        progress.add_rows("anomalies", table.num_rows)
        yield table
    state["newest_detected_date"] = newest
    first = state.get("first_since")
    state["first_since"] = min(first or since.isoformat(), since.isoformat())


def known_providers() -> set[str]:
    """The providers the workspace has line-item costs for, from line_items' records."""
    line_items = dlt.current.source_state().get("resources", {}).get("line_items", {})
    return {
        p for sums in line_items.get("days", {}).values() for p in sums[0] if p not in ("", "*")
    }


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


@dataclass(frozen=True)
class WindowReader:
    """How a date-windowed resource reads a window, and what it records when one loads."""

    read: Callable[[Window], Iterator[pa.Table]]
    complete: Callable[[Window, list[Any]], None]
    observe: Callable[[pa.Table], None] | None = None


def _rollups_of(
    window: Window, client: StackSpendClient, snapshot: RollupSnapshot | None
) -> Iterator[pa.Table]:
    """The window's rollups: from verification's snapshot when it holds them, else read."""
    if snapshot is not None and snapshot.covers(window):
        return iter([snapshot.rows_of(window.days())])
    return rollup_tables(client, window)


def _planned(plan: WindowPlan, sync: SyncRange) -> list[Window]:
    """The windows this load may read: those pending, plus new ones on a first load."""
    if sync.resume_only:
        return plan.pending()
    return plan.plan(sync.start, sync.end, sync.lookback_days, sync.window_days)


def _read_windows(
    resource: str,
    windows: list[Window],
    sync: SyncRange,
    progress: SyncProgress,
    reader: WindowReader,
    replacement: Replacement,
    read_ahead_key: str,
) -> Iterator[pa.Table]:
    """Read as many of `windows` as one load takes, committing each one."""
    budget = None if sync.max_windows is None else sync.max_windows * sync.window_days
    count = take_windows(windows, budget)
    now, later = windows[:count], windows[count:]
    yield from read_windows(
        resource,
        now,
        reader.read,
        replacement,
        reader.complete,
        progress,
        upcoming=later[0] if later else None,
        read_ahead_key=(resource, read_ahead_key),
        observe=reader.observe,
    )
    progress.set_pending(resource, len(windows) - count)


def _sync_range(
    start_date: str | None,
    end_date: str | None,
    lookback_days: int,
    anomaly_lookback_days: int,
    window_days: int,
) -> SyncRange:
    now = datetime.now(UTC)
    today = now.date()
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
        lookback_days=check_int(f"{KEY}.lookback_days", lookback_days, 0, MAX_DAYS),
        anomaly_lookback_days=check_int(
            f"{KEY}.anomaly_lookback_days", anomaly_lookback_days, 0, MAX_DAYS
        ),
        window_days=check_int(f"{KEY}.window_days", window_days, 1, MAX_WINDOW_DAYS),
        now=now,
    )


def _check_verify_days(verify_days: int | None) -> int | None:
    if verify_days is None:
        return None
    return check_int(f"{KEY}.verify_days", verify_days, 0, MAX_DAYS)


def _days(window: Window) -> list[date]:
    return list(window.days())
