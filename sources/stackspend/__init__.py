"""StackSpend: cost line items, daily rollups and anomaly alerts.

Docs: https://api.stackspend.com (see shared/api/stackspend-api.txt).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import date
from typing import Any

import dlt
import pyarrow as pa
import pyarrow.compute as pc
from dlt.sources import DltResource

from sources.shared.connection import checked_connection
from sources.shared.progress import LoadScope
from sources.shared.replace import Replacement, replace_keys
from sources.shared.vendor import VendorSpec, describe_days
from sources.shared.windows import DayPlan, Window, WindowReader, load_windows
from sources.stackspend.client import StackSpendClient
from sources.stackspend.helpers import (
    SyncRange,
    anomalies_since,
    anomaly_pages,
    day_keys,
    line_item_pages,
    mark_restated,
    planned,
    probe,
    providers_with_costs,
    rollup_tables,
    rollups_of,
    sync_range,
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
    DEFAULT_WINDOW_DAYS,
    KEY,
    LINE_ITEMS_COLUMNS,
    LINE_ITEMS_MERGE,
    LINE_ITEMS_SCHEMA,
    MERGE,
    RESOURCE_SCOPES,
    VENDOR,
)
from sources.stackspend.verification import LineItemLedger, RollupLedger, Verifier, known_providers


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
    load: LoadScope | None = None,
) -> Sequence[DltResource]:
    """StackSpend line items, daily rollups and anomalies, loaded incrementally; every
    value is checked before any request (a bad one raises `ConfigError`).

    Args:
        api_key, base_url, requests_per_minute, max_attempts, backoff_seconds,
            timeout_seconds: the key (secret) and how to reach the API with it.
        start_date, end_date, lookback_days, anomaly_lookback_days, window_days,
            verify_days: what each run reads (the README's Configuration says how).
        load: this load's part of a sync (default: all of it, in one load).
    """
    load = load or LoadScope()
    connection = checked_connection(
        KEY, base_url, api_key, requests_per_minute, max_attempts, backoff_seconds, timeout_seconds
    )
    sync = sync_range(
        start_date, end_date, lookback_days, anomaly_lookback_days, window_days, verify_days
    )
    client = StackSpendClient(connection, load.progress.stats)
    verifier = Verifier(lambda span: rollup_tables(client, span), sync, load.progress)
    return (
        line_items(client, sync, load, verifier),
        daily_rollups(client, sync, load, verifier),
        anomalies(client, sync, load),
    )


@dlt.resource(
    name="line_items",
    file_format="parquet",
    write_disposition=LINE_ITEMS_MERGE,
    primary_key="id",
    columns=LINE_ITEMS_COLUMNS,
)
def line_items(
    client: StackSpendClient, sync: SyncRange, load: LoadScope, verifier: Verifier
) -> Iterator[pa.Table]:
    """Cost line items by usage_date window, 1000 per page; re-read days are replaced whole:
    the lookback, the new days, and every day verification finds the API changed."""
    state = dlt.current.resource_state()
    plan, ledger = DayPlan(state), LineItemLedger(state, sync.now)
    windows = planned(plan, sync, load)
    check = verifier.check(plan) if not load.resume_only else None
    snapshot = check.rollups if check else None
    if check is not None:
        changed = ledger.changed(check.rollups, check.days)
        ledger.expect(check.rollups, changed)
        plan.add_days(changed, sync.window_days)
        verifier.found(changed, reread=changed)
        windows = plan.pending()

    def read(window: Window) -> Iterator[pa.Table]:
        return mark_restated(line_item_pages(client, window), ledger.restated_at(window))

    def complete(window: Window, days: list[date]) -> None:
        plan.complete(window, days)
        ledger.complete(window, snapshot)

    reader = WindowReader(read, complete, ledger.observe)
    replacement = Replacement(LINE_ITEMS_SCHEMA, "usage_date", day_keys)
    key = ("line_items", client.session.caller)
    yield from load_windows(
        "line_items", windows, reader, replacement, load.progress, sync.load_days(load), key
    )


@dlt.resource(
    name="daily_rollups",
    file_format="parquet",
    write_disposition=MERGE,
    merge_key="date",
    columns=DAILY_ROLLUPS_COLUMNS,
)
def daily_rollups(
    client: StackSpendClient, sync: SyncRange, load: LoadScope, verifier: Verifier
) -> Iterator[pa.Table]:
    """Daily totals by provider, service and category in one table with a group_by column;
    days verification finds changed are replaced from the rollups it read."""
    state = dlt.current.resource_state()
    plan, ledger = DayPlan(state), RollupLedger(state)
    windows = planned(plan, sync, load)
    replacement = Replacement(DAILY_ROLLUPS_KEYED, "date", day_keys, row_key=DAILY_ROLLUPS_KEY)
    check = verifier.check(plan) if not load.resume_only else None
    if check is not None:
        changed, unrecorded = ledger.changed(check.rollups, check.days, skip=windows)
        verifier.found(changed)
        days = sorted({*changed, *unrecorded})
        rows = check.rollups.rows_of(days)
        load.progress.add_rows("daily_rollups", rows.num_rows)
        yield from replace_keys(replacement, rows, days)
        ledger.record(check.rollups, days)

    def complete(window: Window, days: list[date]) -> None:
        plan.complete(window, days)
        ledger.complete(window)

    reader = WindowReader(
        lambda w: rollups_of(w, client, verifier.rollups), complete, ledger.observe
    )
    key = ("daily_rollups", client.session.caller)
    yield from load_windows(
        "daily_rollups", windows, reader, replacement, load.progress, sync.load_days(load), key
    )


@dlt.resource(
    name="anomalies",
    file_format="parquet",
    write_disposition=MERGE,
    primary_key="id",
    columns=ANOMALIES_COLUMNS,
)
def anomalies(client: StackSpendClient, sync: SyncRange, load: LoadScope) -> Iterator[pa.Table]:
    """Anomaly alerts detected since the last run's newest minus anomaly_lookback_days."""
    if load.resume_only:
        return
    state = dlt.current.resource_state()
    since = anomalies_since(state, sync)
    load.progress.reading("anomalies", f"since {since.isoformat()}")
    newest = state.get("newest_detected_date")

    def providers() -> set[str]:
        return known_providers() | providers_with_costs(client, Window(sync.start, sync.end))

    for table in anomaly_pages(client, since, providers):
        latest = pc.max(table.column("detected_date")).as_py().isoformat()
        newest = max(newest or latest, latest)
        load.progress.add_rows("anomalies", table.num_rows)
        yield table
    state["newest_detected_date"] = newest
    first = state.get("first_since")
    state["first_since"] = min(first or since.isoformat(), since.isoformat())


def _dates(start: date | None, end: date | None) -> dict[str, Any]:
    """`--start-date`/`--end-date` as the source's arguments."""
    return {
        **({"start_date": start.isoformat()} if start else {}),
        **({"end_date": end.isoformat()} if end else {}),
    }


def _describe(resource: str, state: Mapping[str, Any]) -> str:
    if resource == "anomalies":
        newest = state.get("newest_detected_date")
        return f"newest detected {newest}" if newest else ""
    return describe_days(state)


SPEC = VendorSpec(
    name="stackspend",
    label=VENDOR,
    source=stackspend_source,
    resources=("line_items", "daily_rollups", "anomalies"),
    scopes=RESOURCE_SCOPES,
    date_args=_dates,
    describe_state=_describe,
    probe=probe,
    bigquery_hints={
        "line_items": {"partition": "usage_date", "cluster": ["provider_type", "project_id"]},
        "daily_rollups": {"partition": "date"},
        "anomalies": {"partition": "detected_date"},
    },
)
