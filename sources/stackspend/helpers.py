"""StackSpend paging loops: line-item cursors, rollup groups, anomaly partitions."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
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

MAX_EMPTY_PAGES = 3  # pages in a row with no rows that still say has_more
MAX_PAGES = 1_000  # pages of one unwindowed query (rollups, anomalies) before it is a loop
MAX_PAGES_PER_DAY = 1_000  # line-item pages per day of a window: a million line items a day

# Filters a full anomaly answer is narrowed by, in order: the documented closed value
# sets, then the providers (an open set: the values come from what is known).
ANOMALY_FILTERS: dict[str, tuple[str, ...]] = {
    "severity": ANOMALY_SEVERITIES,
    "status": ANOMALY_STATUSES,
    "provider_type": (),
}


def line_item_pages(client: StackSpendClient, window: Window) -> Iterator[pa.Table]:
    """Every line item of `window`, page by page, following `next_cursor` while `has_more`.

    The next page is requested while the current one is parsed.
    """

    def fetch(cursor: str | None, peek: Callable[[bytes], None]) -> Page:
        return client.line_items_page(window.start, window.end, cursor, peek)

    follow = CursorTrail(LINE_ITEMS_PATH, max_pages=MAX_PAGES_PER_DAY * window.length)
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
    """Decides the next cursor of a paged answer, refusing to loop or to guess.

    A cursor seen before, `MAX_EMPTY_PAGES` pages in a row that bring nothing
    but say there is more, or more than `max_pages` pages are paging errors.
    """

    def __init__(self, endpoint: str, max_pages: int = MAX_PAGES) -> None:
        self.endpoint = endpoint
        self.max_pages = max_pages
        self.seen: set[str] = set()
        self._pages = 0
        self._empty = 0

    def next(self, page: Page) -> str | None:
        """The cursor after `page`, or None when it was the last one."""
        self._pages += 1
        self._empty = self._empty + 1 if page.items.num_rows == 0 else 0
        if not page.has_more:
            return None
        if not page.next_cursor:
            raise self._error("has_more is true but no next_cursor")
        if page.next_cursor in self.seen:
            raise self._error("next_cursor repeats an earlier one (a paging loop)")
        if self._empty >= MAX_EMPTY_PAGES:
            raise self._error(f"{self._empty} pages in a row brought no rows but said has_more")
        if self._pages >= self.max_pages:
            raise self._error(
                f"{self._pages} pages and still has_more, more than the query can hold"
            )
        self.seen.add(page.next_cursor)
        return page.next_cursor

    def _error(self, reason: str) -> PagingError:
        return PagingError(
            VENDOR, self.endpoint, 200, f"{reason}; nothing from this query was loaded"
        )


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
    first = fetch(None)
    if first.has_more:  # the API pages anomalies after all: its cursor is the surest way
        for page in cursor_pages(fetch, ANOMALIES_PATH, first):
            yield page.items
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
        f" {narrowed}, the most one answer holds, and {reason}; nothing was loaded:"
        " lower anomaly_lookback_days or start_date, or contact StackSpend",
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
