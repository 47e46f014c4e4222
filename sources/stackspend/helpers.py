"""StackSpend paging loops: line-item cursors, rollup groups, anomaly partitions."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import partial
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc

from sources.shared.arrow_json import conform
from sources.shared.connection import configured_connection
from sources.shared.errors import PagingError, readable
from sources.shared.paging import CursorPaginator, Params, paginate
from sources.shared.prefetch import prefetched_pages
from sources.shared.replace import RESTATED_COLUMN

if TYPE_CHECKING:
    from sources.stackspend.verification import RollupSnapshot
from sources.shared.checks import MAX_DAYS, MAX_WINDOW_DAYS, check_int, check_order, parse_day
from sources.shared.progress import LoadScope
from sources.shared.windows import DayPlan, Window
from sources.stackspend.client import Page, StackSpendClient, peek_next_cursor
from sources.stackspend.settings import (
    ANOMALIES_PAGE_LIMIT,
    ANOMALIES_PATH,
    ANOMALIES_SCHEMA,
    ANOMALY_SEVERITIES,
    ANOMALY_STATUSES,
    DAILY_ROLLUPS_KEY,
    DAILY_ROLLUPS_SCHEMA,
    DEFAULT_BASE_URL,
    DEFAULT_REQUESTS_PER_MINUTE,
    DEFAULT_START_DAYS_AGO,
    KEY,
    LINE_ITEMS_PAGE_LIMIT,
    LINE_ITEMS_PATH,
    LINE_ITEMS_SCHEMA,
    ROLLUP_GROUP_BYS,
    ROLLUPS_PATH,
    VENDOR,
)

MAX_PAGES = 1_000  # pages of one unwindowed query (rollups, anomalies) before it is a loop
MAX_PAGES_PER_DAY = 1_000  # line-item pages per day of a window: a million line items a day

# Filters a full anomaly answer is narrowed by, in order: the documented closed value
# sets, then the providers (an open set: the values come from what is known).
ANOMALY_FILTERS: dict[str, tuple[str, ...]] = {
    "severity": ANOMALY_SEVERITIES,
    "status": ANOMALY_STATUSES,
    "provider_type": (),
}


@dataclass(frozen=True)
class SyncRange:
    """What one sync reads: its days, lookbacks, window size and verification horizon."""

    start: date
    end: date
    lookback_days: int
    anomaly_lookback_days: int
    window_days: int
    verify_days: int | None
    now: datetime

    def load_days(self, load: LoadScope) -> int | None:
        """How many days of windows one load of `load` reads (None: all)."""
        return None if load.max_windows is None else load.max_windows * self.window_days


def sync_range(
    start_date: str | None,
    end_date: str | None,
    lookback_days: int,
    anomaly_lookback_days: int,
    window_days: int,
    verify_days: int | None,
) -> SyncRange:
    """The checked range of a sync (`ConfigError` naming the first bad value)."""
    now = datetime.now(UTC)
    end = parse_day(f"{KEY}.end_date", end_date) if end_date else now.date()
    start = (
        parse_day(f"{KEY}.start_date", start_date)
        if start_date
        else now.date() - timedelta(days=DEFAULT_START_DAYS_AGO)
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
        verify_days=None
        if verify_days is None
        else check_int(f"{KEY}.verify_days", verify_days, 0, MAX_DAYS),
        now=now,
    )


def planned(plan: DayPlan, sync: SyncRange, load: LoadScope) -> list[Window]:
    """The windows a load may read: those pending, plus new ones on a sync's first load."""
    if load.resume_only:
        return plan.pending()
    return plan.plan(sync.start, sync.end, sync.lookback_days, sync.window_days)


def day_keys(window: Window) -> list[date]:
    """The merge key values a window of days covers: its days."""
    return list(window.days())


def anomalies_since(state: Mapping[str, Any], sync: SyncRange) -> datetime:
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


def rollups_of(
    window: Window, client: StackSpendClient, snapshot: RollupSnapshot | None
) -> Iterator[pa.Table]:
    """The window's rollups: from verification's snapshot when it holds them, else read."""
    if snapshot is not None and snapshot.covers(window):
        return iter([snapshot.rows_of(window.days())])
    return rollup_tables(client, window)


def line_item_pages(client: StackSpendClient, window: Window) -> Iterator[pa.Table]:
    """Every line item of `window`, page by page, following `next_cursor` while `has_more`.

    The next page is requested while the current one is parsed.
    """

    def fetch(cursor: str | None, peek: Callable[[bytes], None]) -> Page:
        paging = {"cursor": cursor} if cursor else {}
        return client.line_items_page(window.start, window.end, paging, peek)

    paginator = CursorPaginator(
        VENDOR, LINE_ITEMS_PATH, MAX_PAGES_PER_DAY * window.length, page_size=LINE_ITEMS_PAGE_LIMIT
    )
    for page in prefetched_pages(fetch, peek_next_cursor, paginator):
        items = conform(page.items, LINE_ITEMS_SCHEMA, VENDOR, LINE_ITEMS_PATH)
        yield _within(items, "usage_date", window)


def mark_restated(tables: Iterator[pa.Table], marks: Mapping[date, datetime]) -> Iterator[pa.Table]:
    """`tables` of line items with `RESTATED_COLUMN` set on the days in `marks`: when
    the API was found to restate that day after its billing period closed."""
    if not marks:
        yield from tables
        return
    for table in tables:
        when = [marks.get(day) for day in table.column("usage_date").to_pylist()]
        index = table.schema.get_field_index(RESTATED_COLUMN)
        field = table.schema.field(index)
        yield table.set_column(index, field, pa.array(when, field.type))


def rollup_tables(client: StackSpendClient, window: Window) -> Iterator[pa.Table]:
    """The window's rollups for each group_by, with a `group_by` column added.

    A rollup served twice (the same date and group) is refused: keeping one
    copy or adding both up would each be a guess about the day's cost.
    """
    for group_by in ROLLUP_GROUP_BYS:
        fetch = partial(client.daily_rollups, window.start, window.end, group_by)
        seen: set[tuple[object, ...]] = set()
        for page in cursor_pages(fetch, ROLLUPS_PATH):
            table = page.items
            table = table.append_column("group_by", pa.array([group_by] * table.num_rows))
            table = _within(
                conform(table, DAILY_ROLLUPS_SCHEMA, VENDOR, ROLLUPS_PATH), "date", window
            )
            _check_unique(table, seen, group_by)
            yield table


def _check_unique(table: pa.Table, seen: set[tuple[object, ...]], group_by: str) -> None:
    """Add the rollup keys of `table` to `seen`, refusing one already there."""
    columns = [table.column(name).to_pylist() for name in DAILY_ROLLUPS_KEY]
    for key in zip(*columns, strict=True):
        if key in seen:
            message = f"a group_by={group_by} rollup is served twice (key {key})"
            raise PagingError(VENDOR, ROLLUPS_PATH, 200, message)
        seen.add(key)


def cursor_pages(fetch: Callable[[Params], Page], endpoint: str) -> Iterator[Page]:
    """`fetch(paging)` for the first page and for every next one its cursor names."""
    return paginate(fetch, CursorPaginator(VENDOR, endpoint, MAX_PAGES))


def anomaly_pages(
    client: StackSpendClient, since: datetime, providers: Callable[[], Iterable[str]] = set
) -> Iterator[pa.Table]:
    """Every anomaly detected after `since`, each id once.

    The API caps a response at 500 and documents no cursor and no order, so a
    full answer proves nothing about what it left out. A full answer is asked
    again in parts, narrowed by the documented filters in turn — severity,
    then status (closed value sets), then provider_type (the providers the
    answer shows and `providers()`, those the workspace has costs for) — until
    every part comes back below the limit, which proves it complete (for
    provider_type, given that an anomaly's provider is one the workspace has
    costs for: with no such providers known, it cannot be narrowed by them). A
    part that stays full, or parts that miss an anomaly the full answer held,
    fail the run naming the filters: never a gap.
    """
    seen: set[str] = set()
    for table in _anomaly_query(client, since, {}, _Once(providers)):
        table = conform(table, ANOMALIES_SCHEMA, VENDOR, ANOMALIES_PATH)
        fresh = [i for i, key in enumerate(table.column("id").to_pylist()) if key not in seen]
        seen.update(table.column("id").to_pylist())
        if fresh:
            yield table.take(fresh)


def format_since(moment: datetime) -> str:
    """ISO 8601 in UTC with a Z, microseconds only when there are some."""
    moment = moment.astimezone(UTC)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if moment.microsecond:
        text += f".{moment.microsecond:06d}"
    return text + "Z"


class _Once:
    """The workspace's providers, asked for only when a split needs them, then kept."""

    def __init__(self, find: Callable[[], Iterable[str]]) -> None:
        self._find = find
        self._found: list[str] | None = None

    def __call__(self) -> list[str]:
        if self._found is None:
            self._found = sorted(set(self._find()))
        return self._found


def providers_with_costs(client: StackSpendClient, window: Window) -> set[str]:
    """The providers StackSpend's provider rollups show costs for over `window`."""
    fetch = partial(client.daily_rollups, window.start, window.end, "provider")
    found: set[str] = set()
    for page in cursor_pages(fetch, ROLLUPS_PATH):
        if "provider_type" in page.items.column_names:
            found.update(p for p in page.items.column("provider_type").to_pylist() if p)
    return found


def _anomaly_query(
    client: StackSpendClient, since: datetime, filters: Mapping[str, str], providers: _Once
) -> Iterator[pa.Table]:
    fetch = partial(client.anomalies, format_since(since), filters)
    pages = cursor_pages(fetch, ANOMALIES_PATH)
    first = next(pages)
    if first.has_more:  # the API pages anomalies after all: its cursor is the surest way
        yield first.items
        yield from (page.items for page in pages)
    elif first.items.num_rows < ANOMALIES_PAGE_LIMIT:
        yield first.items
    else:
        yield from _split(client, since, filters, first.items, providers)


def _split(
    client: StackSpendClient,
    since: datetime,
    filters: Mapping[str, str],
    full_page: pa.Table,
    providers: _Once,
) -> Iterator[pa.Table]:
    """Read a full query again as parts, one per value of the next filter; the parts
    must between them return every anomaly the full page held."""
    dimension = next((f for f in ANOMALY_FILTERS if f not in filters), None)
    if dimension is None:
        raise _unpageable(since, filters, "no documented filter narrows it further")
    if dimension == "provider_type" and not providers():
        raise _unpageable(since, filters, "no provider has costs to split it by")
    found: set[str] = set()
    for value in _filter_values(dimension, full_page, providers):
        for table in _anomaly_query(client, since, {**filters, dimension: value}, providers):
            found.update(table.column("id").to_pylist())
            yield table
    missing = set(full_page.column("id").to_pylist()) - found
    if missing:
        reason = f"{len(missing)} of them have a {dimension} no filter value selects"
        raise _unpageable(since, filters, reason)


def _filter_values(dimension: str, page: pa.Table, providers: _Once) -> list[str]:
    """The values of `dimension` to ask for: documented ones, or the providers known."""
    if dimension != "provider_type":
        return list(ANOMALY_FILTERS[dimension])
    shown = {p for p in page.column("provider_type").to_pylist() if p}
    return sorted(shown | set(providers()))


def _unpageable(since: datetime, filters: Mapping[str, str], reason: str) -> PagingError:
    narrowed = ", ".join(f"{k}={v}" for k, v in filters.items()) or "no filter"
    return PagingError(
        VENDOR,
        ANOMALIES_PATH,
        200,
        f"{ANOMALIES_PAGE_LIMIT} or more anomalies since {format_since(since)} match"
        f" {narrowed}, the most one answer holds, and {reason}; lower"
        " anomaly_lookback_days or start_date",
    )


def _within(table: pa.Table, column: str, window: Window) -> pa.Table:
    """Drop rows dated outside `window`: their days belong to another window's replace."""
    days = table.column(column)
    inside = pc.and_(
        pc.greater_equal(days, pa.scalar(window.start, pa.date32())),
        pc.less_equal(days, pa.scalar(window.end, pa.date32())),
    )
    if pc.all(inside).as_py():
        return table
    return table.filter(inside)


def probe(pipeline_name: str | None = None) -> dict[str, str | None]:
    """Which resources the configured key can read: one small request each."""
    connection = configured_connection(
        "stackspend", DEFAULT_BASE_URL, DEFAULT_REQUESTS_PER_MINUTE, pipeline_name
    )
    client = StackSpendClient(connection)
    now = datetime.now(UTC)
    today = now.date()
    return readable(
        {
            "line_items": lambda: client.line_items_page(today, today, {"limit": 1}),
            "daily_rollups": lambda: client.daily_rollups(today, today, "provider"),
            "anomalies": lambda: client.anomalies(format_since(now), {}, {"limit": 1}),
        }
    )
