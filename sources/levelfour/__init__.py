"""LevelFour: the monthly spending breakdown by service, provider, region, account and tag.

Docs: https://api.levelfour.ai (see shared/api/levelfour-spending-breakdown-api.txt).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, MutableMapping, Sequence
from datetime import date
from typing import Any

import dlt
import pyarrow as pa
from dlt.sources import DltResource

from sources.levelfour.client import LevelFourClient
from sources.levelfour.helpers import (
    MonthLedger,
    PeriodRange,
    breakdown_table,
    period_keys,
    period_range,
    probe,
    raw_table,
)
from sources.levelfour.settings import (
    DEFAULT_BASE_URL,
    DEFAULT_REOPEN_MONTHS,
    DEFAULT_REQUESTS_PER_MINUTE,
    KEY,
    KEY_PREFIXES,
    SPENDING_BREAKDOWN_COLUMNS,
    SPENDING_BREAKDOWN_KEY,
    SPENDING_BREAKDOWN_KEYED,
    VENDOR,
)
from sources.shared.connection import checked_connection
from sources.shared.progress import LoadScope, SyncProgress, publish_verification
from sources.shared.replace import Replacement, replace_keys
from sources.shared.vendor import VendorSpec
from sources.shared.windows import MONTH_DAYS, MonthPlan, Window, WindowReader, load_windows

RAW_REFUSED = "LevelFour refuses format=raw for this key, so closed months are not re-read"


@dlt.source(name="levelfour", max_table_nesting=0)
def levelfour_source(
    api_key: str = dlt.secrets.value,
    start_period: str | None = None,
    end_period: str | None = None,
    base_url: str = DEFAULT_BASE_URL,
    requests_per_minute: int = DEFAULT_REQUESTS_PER_MINUTE,
    reopen_months: int = DEFAULT_REOPEN_MONTHS,
    max_attempts: int = 10,
    backoff_seconds: float = 1.0,
    timeout_seconds: float = 60.0,
    load: LoadScope | None = None,
) -> Sequence[DltResource]:
    """LevelFour's spending breakdown, one period (month) at a time; every value is
    checked before any request (a bad one raises `ConfigError`).

    Args:
        api_key, base_url, requests_per_minute, max_attempts, backoff_seconds,
            timeout_seconds: the key (secret, l4_live_ or l4_test_) and how to reach
            the API with it.
        start_period, end_period, reopen_months: the months each run reads (the README's
            Configuration says how).
        load: this load's part of a sync (default: all of it, in one load).
    """
    load = load or LoadScope()
    connection = checked_connection(
        KEY,
        base_url,
        api_key,
        requests_per_minute,
        max_attempts,
        backoff_seconds,
        timeout_seconds,
        key_prefixes=KEY_PREFIXES,
    )
    periods = period_range(start_period, end_period, reopen_months)
    client = LevelFourClient(connection, load.progress.stats)
    return (spending_breakdown(client, periods, load),)


@dlt.resource(
    name="spending_breakdown",
    file_format="parquet",
    write_disposition={"disposition": "merge", "strategy": "delete-insert"},
    merge_key="period",
    columns=SPENDING_BREAKDOWN_COLUMNS,
)
def spending_breakdown(
    client: LevelFourClient, periods: PeriodRange, load: LoadScope
) -> Iterator[pa.Table]:
    """The breakdown per period; open months are re-read and replaced whole each run,
    closed ones re-read (format=raw) and replaced when the API restated them."""
    state = dlt.current.resource_state()
    plan = MonthPlan(state, periods.current, periods.reopen_months)
    ledger = MonthLedger(state, periods.current, periods.now)
    windows = plan.pending() if load.resume_only else plan.plan(periods.first, periods.last)
    replacement = Replacement(
        SPENDING_BREAKDOWN_KEYED, "period", period_keys, SPENDING_BREAKDOWN_KEY
    )
    if not load.resume_only:
        closed = plan.settled_between(periods.first, periods.last)
        yield from _verified_months(
            client, closed, ledger, replacement, load.progress, state, periods
        )

    def read(window: Window) -> Iterator[pa.Table]:
        return (
            ledger.marked(window.month, t) for t in breakdown_table(client, window.month, state)
        )

    def complete(window: Window, keys: list[str]) -> None:
        plan.complete(window, keys)
        ledger.complete(window)

    max_days = None if load.max_windows is None else load.max_windows * MONTH_DAYS
    reader = WindowReader(read, complete)
    yield from load_windows(
        "spending_breakdown", windows, reader, replacement, load.progress, max_days
    )


def _verified_months(
    client: LevelFourClient,
    closed: list[str],
    ledger: MonthLedger,
    replacement: Replacement,
    progress: SyncProgress,
    state: MutableMapping[str, Any],
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
        ledger.complete_period(period)
    spent = progress.stats.requests - before
    found = {"days": len(closed), "first": closed[0], "last": closed[-1], "requests": spent}
    publish_verification(progress, {**report, **found, "changed": changed, "reread": changed})


def _periods(start: date | None, end: date | None) -> dict[str, Any]:
    """`--start-date`/`--end-date` as the source's arguments: the months that hold them."""
    return {
        **({"start_period": start.strftime("%Y-%m")} if start else {}),
        **({"end_period": end.strftime("%Y-%m")} if end else {}),
    }


def _describe(resource: str, state: Mapping[str, Any]) -> str:
    periods = state.get("periods")
    if not periods:
        return ""
    text = f"periods {periods[0]}..{periods[-1]}"
    if state.get("format") == "table":
        text += " (format=table, 100 items a request: LevelFour refuses format=raw)"
    return text


SPEC = VendorSpec(
    name="levelfour",
    label=VENDOR,
    source=levelfour_source,
    resources=("spending_breakdown",),
    date_args=_periods,
    describe_state=_describe,
    probe=probe,
    bigquery_hints={"spending_breakdown": {"cluster": ["provider_id"]}},
)
