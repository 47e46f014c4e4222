"""LevelFour: the monthly spending breakdown by service, provider, region, account and tag.

Docs: https://api.levelfour.ai (see shared/api/levelfour-spending-breakdown-api.txt).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from typing import Any

import dlt
import pyarrow as pa
from dlt.sources import DltResource

from sources.levelfour.client import LevelFourClient
from sources.levelfour.helpers import (
    MonthLedger,
    PeriodPlan,
    add_months,
    breakdown_table,
    month_of,
    month_window,
    raw_table,
)
from sources.levelfour.settings import (
    DEFAULT_BASE_URL,
    DEFAULT_REOPEN_MONTHS,
    DEFAULT_REQUESTS_PER_MINUTE,
    DEFAULT_START_MONTHS_AGO,
    KEY_PREFIXES,
    SPENDING_BREAKDOWN_COLUMNS,
    SPENDING_BREAKDOWN_KEY,
    SPENDING_BREAKDOWN_KEYED,
)
from sources.shared.checks import (
    MAX_ATTEMPTS,
    MAX_MONTHS,
    MAX_REQUESTS_PER_MINUTE,
    check_api_key,
    check_base_url,
    check_int,
    check_seconds,
    parse_period,
)
from sources.shared.errors import ConfigError
from sources.shared.progress import SyncProgress, current_load_scope, publish_verification
from sources.shared.replace import Replacement, read_windows, replace_keys
from sources.shared.retry import RetryPolicy
from sources.shared.windows import Window

KEY = "sources.levelfour"
RAW_REFUSED = "LevelFour refuses format=raw for this key, so closed months are not re-read"


@dataclass(frozen=True)
class PeriodRange:
    """The months one run reads and how far it goes."""

    first: date
    last: date
    current: date
    reopen_months: int
    now: datetime
    resume_only: bool = False
    max_windows: int | None = None


@dlt.source(name="levelfour", max_table_nesting=0)
def levelfour_source(
    api_key: str = dlt.secrets.value,
    base_url: str = DEFAULT_BASE_URL,
    requests_per_minute: int = DEFAULT_REQUESTS_PER_MINUTE,
    start_period: str | None = None,
    end_period: str | None = None,
    reopen_months: int = DEFAULT_REOPEN_MONTHS,
    max_attempts: int = 10,
    backoff_seconds: float = 1.0,
    timeout_seconds: float = 60.0,
) -> Sequence[DltResource]:
    """LevelFour's spending breakdown, one period (month) at a time.

    Every value is checked before any request; a bad one raises `ConfigError`.

    Args:
        api_key: a LevelFour API key (secret), starting l4_live_ or l4_test_.
        base_url: the API's address; https:// unless the host is loopback.
        requests_per_minute: the key's rate limit; requests are paced to it.
        start_period: first month to load (YYYY-MM); default 3 months before the current one.
        end_period: last month to load (YYYY-MM); default the current month (UTC).
        reopen_months: closed months before the current one that every run reads again.
        max_attempts: attempts per request before giving up on retriable errors.
        backoff_seconds: first backoff between retries; it doubles each time.
        timeout_seconds: how long to wait for one response.
    """
    scope = current_load_scope()
    periods = replace(
        _period_range(start_period, end_period, reopen_months),
        resume_only=scope.resume_only,
        max_windows=scope.max_windows,
    )
    tracker = scope.progress
    client = LevelFourClient(
        check_base_url(f"{KEY}.base_url", base_url),
        _check_key(api_key),
        check_int(f"{KEY}.requests_per_minute", requests_per_minute, 1, MAX_REQUESTS_PER_MINUTE),
        RetryPolicy(
            max_attempts=check_int(f"{KEY}.max_attempts", max_attempts, 1, MAX_ATTEMPTS),
            backoff_seconds=check_seconds(f"{KEY}.backoff_seconds", backoff_seconds, True),
        ),
        timeout_seconds=check_seconds(f"{KEY}.timeout_seconds", timeout_seconds, False),
        stats=tracker.stats,
    )
    return (spending_breakdown(client, periods, tracker),)


@dlt.resource(
    name="spending_breakdown",
    file_format="parquet",
    write_disposition={"disposition": "merge", "strategy": "delete-insert"},
    merge_key="period",
    columns=SPENDING_BREAKDOWN_COLUMNS,
)
def spending_breakdown(
    client: LevelFourClient, periods: PeriodRange, progress: SyncProgress
) -> Iterator[pa.Table]:
    """The breakdown per period; open months are re-read and replaced whole each run,
    closed ones re-read (format=raw) and replaced when the API restated them."""
    state = dlt.current.resource_state()
    plan = PeriodPlan(state, periods.current, periods.reopen_months)
    ledger = MonthLedger(state, periods.current, periods.now)
    windows = plan.pending() if periods.resume_only else plan.plan(periods.first, periods.last)
    replacement = Replacement(
        SPENDING_BREAKDOWN_KEYED,
        "period",
        lambda window: [month_of(window)],
        row_key=SPENDING_BREAKDOWN_KEY,
    )
    if not periods.resume_only:
        closed = plan.settled_between(periods.first, periods.last)
        yield from _verified_months(client, closed, ledger, replacement, progress, state, periods)

    def read_window(window: Window) -> Iterator[pa.Table]:
        period = month_of(window)
        return (ledger.marked(period, t) for t in breakdown_table(client, period, state))

    def complete(window: Window, keys: list[str]) -> None:
        plan.complete(window, keys)
        ledger.complete(window)

    yield from read_windows(
        "spending_breakdown",
        windows[: periods.max_windows],
        read_window,
        replacement,
        complete,
        progress,
    )
    progress.set_pending("spending_breakdown", len(plan.pending()))


def _verified_months(
    client: LevelFourClient,
    closed: list[str],
    ledger: MonthLedger,
    replacement: Replacement,
    progress: SyncProgress,
    state: dict[str, Any],
    periods: PeriodRange,
) -> Iterator[pa.Table]:
    """Re-read each closed month with format=raw (one request a month) and replace
    those whose items differ from what was loaded."""
    if not closed:
        return
    report: dict[str, Any] = {"at": periods.now.isoformat(timespec="seconds"), "unit": "month"}
    if state.get("format") == "table":
        publish_verification(progress, {**report, "skipped": RAW_REFUSED})
        return
    before, changed = progress.stats.requests, []
    for period in closed:
        progress.reading("spending_breakdown", f"{period} (verifying)")
        items = raw_table(client, period)
        if not ledger.changed(period, items):
            continue
        if ledger.recorded(period):
            changed.append(period)
        progress.add_rows("spending_breakdown", items.num_rows)
        yield from replace_keys(replacement, ledger.marked(period, items), [period])
        ledger.complete(month_window(date.fromisoformat(f"{period}-01")))
    spent = progress.stats.requests - before
    found = {"days": len(closed), "first": closed[0], "last": closed[-1], "requests": spent}
    publish_verification(progress, {**report, **found, "changed": changed, "reread": changed})


def _check_key(api_key: Any) -> str:
    key = check_api_key(f"{KEY}.api_key", api_key)
    if not key.startswith(KEY_PREFIXES):
        raise ConfigError(f"{KEY}.api_key", "must start with l4_live_ or l4_test_")
    return key


def _period_range(start: str | None, end: str | None, reopen_months: int) -> PeriodRange:
    now = datetime.now(UTC)
    current = now.date().replace(day=1)
    first = (
        parse_period(f"{KEY}.start_period", start)
        if start
        else add_months(current, -DEFAULT_START_MONTHS_AGO)
    )
    last = parse_period(f"{KEY}.end_period", end) if end else current
    if first > last:
        raise ConfigError(f"{KEY}.start_period", f"{start or first} is after end_period {end}")
    return PeriodRange(
        first=first,
        last=last,
        current=current,
        reopen_months=check_int(f"{KEY}.reopen_months", reopen_months, 0, MAX_MONTHS),
        now=now,
    )
