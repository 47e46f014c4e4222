"""StackSpend paging loops: line-item cursors, rollup groups, anomaly partitions."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, date, datetime
from functools import partial

import pyarrow as pa
import pyarrow.compute as pc

from sources.shared.arrow_json import conform
from sources.shared.errors import PagingError
from sources.shared.prefetch import prefetched_pages
from sources.shared.replace import RESTATED_COLUMN
from sources.shared.windows import Window
from sources.stackspend.client import Page, StackSpendClient, peek_next_cursor
from sources.stackspend.settings import (
    ANOMALIES_PAGE_LIMIT,
    ANOMALIES_PATH,
    ANOMALIES_SCHEMA,
    ANOMALY_SEVERITIES,
    ANOMALY_STATUSES,
    DAILY_ROLLUPS_KEY,
    DAILY_ROLLUPS_SCHEMA,
    LINE_ITEMS_PATH,
    LINE_ITEMS_SCHEMA,
    ROLLUP_GROUP_BYS,
    ROLLUPS_PATH,
    VENDOR,
)

# Filters a full anomaly page that cannot be paged by `since` is split by, in
# order: the documented closed value sets, so the parts can be complete.
_ANOMALY_FILTERS = {"severity": ANOMALY_SEVERITIES, "status": ANOMALY_STATUSES}


def line_item_pages(client: StackSpendClient, window: Window) -> Iterator[pa.Table]:
    """Every line item of `window`, page by page, following `next_cursor` while `has_more`.

    The next page is requested while the current one is parsed.
    """

    def fetch(cursor: str | None, peek: Callable[[bytes], None]) -> Page:
        return client.line_items_page(window.start, window.end, cursor, peek)

    follow = CursorTrail(LINE_ITEMS_PATH)
    for page in prefetched_pages(fetch, peek_next_cursor, follow.next):
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


class CursorTrail:
    """Decides the next cursor of a paged answer, refusing to loop or to guess."""

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint
        self.seen: set[str] = set()

    def next(self, page: Page) -> str | None:
        """The cursor after `page`, or None when it was the last one."""
        if not page.has_more:
            return None
        if not page.next_cursor:
            raise PagingError(VENDOR, self.endpoint, 200, "has_more is true but no next_cursor")
        if page.next_cursor in self.seen:
            message = "next_cursor repeats an earlier one (a paging loop)"
            raise PagingError(VENDOR, self.endpoint, 200, message)
        self.seen.add(page.next_cursor)
        return page.next_cursor


def cursor_pages(
    fetch: Callable[[str | None], Page], endpoint: str, first: Page | None = None
) -> Iterator[Page]:
    """`fetch(None)` (or `first`, already fetched), then `fetch(cursor)` for as long as
    the answers say there is more."""
    trail = CursorTrail(endpoint)
    page = first or fetch(None)
    while True:
        yield page
        cursor = trail.next(page)
        if cursor is None:
            return
        page = fetch(cursor)


def anomaly_pages(client: StackSpendClient, since: datetime) -> Iterator[pa.Table]:
    """Every anomaly detected after `since`, each id once.

    The API caps a response at 500 and documents no cursor and no order.
    When a page comes back full: if it is oldest-first, `since` moves up to
    the page's last timestamp but one (so ties at the boundary are read
    again, not skipped); otherwise the query is split by severity, then
    status. A page that still cannot be completed is an error, never a gap.
    """
    seen: set[str] = set()
    for table in _anomaly_query(client, since, {}):
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


def _anomaly_query(
    client: StackSpendClient, since: datetime, filters: Mapping[str, str]
) -> Iterator[pa.Table]:
    while True:
        fetch = partial(client.anomalies, format_since(since), filters)
        first = fetch(None)
        if first.has_more:  # the API pages anomalies after all: its cursor is the surest way
            for page in cursor_pages(fetch, ANOMALIES_PATH, first):
                yield page.items
            return
        page = first.items
        yield page
        if page.num_rows < ANOMALIES_PAGE_LIMIT:
            return
        next_since = _next_since(page, since)
        if next_since is None:
            break
        since = next_since
    yield from _split(client, since, filters, page)


def _split(
    client: StackSpendClient, since: datetime, filters: Mapping[str, str], full_page: pa.Table
) -> Iterator[pa.Table]:
    """Read a full, unpageable query again as parts, one per value of the next filter.

    Only closed, documented value sets are split on; the parts must between
    them return every anomaly the full page held, or nothing is trusted.
    """
    dimension = next((f for f in _ANOMALY_FILTERS if f not in filters), None)
    if dimension is None:
        raise _unpageable(since, filters, "the API offers no way to page further")
    found: set[str] = set()
    for value in _ANOMALY_FILTERS[dimension]:
        for table in _anomaly_query(client, since, {**filters, dimension: value}):
            found.update(table.column("id").to_pylist())
            yield table
    missing = set(full_page.column("id").to_pylist()) - found
    if missing:
        reason = f"{len(missing)} of them have a {dimension} outside the documented values"
        raise _unpageable(since, filters, reason)


def _unpageable(since: datetime, filters: Mapping[str, str], reason: str) -> PagingError:
    return PagingError(
        VENDOR,
        ANOMALIES_PATH,
        200,
        f"more than {ANOMALIES_PAGE_LIMIT} anomalies since {format_since(since)} match"
        f" {dict(filters)} and {reason}; lower anomaly_lookback_days or contact StackSpend",
    )


def _next_since(page: pa.Table, since: datetime) -> datetime | None:
    """The `since` that continues an oldest-first page, or None if it cannot."""
    moments = page.column("detected_date").to_pylist()
    if any(m is None for m in moments) or moments != sorted(moments):
        return None
    earlier = [m for m in moments if m < moments[-1]]
    if not earlier or earlier[-1] <= since:
        return None
    return earlier[-1]


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
