"""LevelFour paging and the month plan of spending_breakdown."""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping, Sequence
from datetime import date, datetime, timedelta
from typing import Any

import pyarrow as pa

from sources.levelfour.client import BreakdownPage, LevelFourClient
from sources.levelfour.settings import (
    BREAKDOWN_PATH,
    ITEM_KEY,
    MAX_PAGES,
    SPENDING_BREAKDOWN_KEY,
    SPENDING_BREAKDOWN_SCHEMA,
    TABLE_PAGE_SIZE,
    TABLE_SORTS,
    VENDOR,
)
from sources.shared.arrow_json import conform
from sources.shared.checksums import digest
from sources.shared.errors import ApiError, PagingError, SchemaChangeError
from sources.shared.replace import RESTATED_COLUMN
from sources.shared.windows import Window


def breakdown_table(
    client: LevelFourClient, period: str, state: MutableMapping[str, Any]
) -> Iterator[pa.Table]:
    """Every breakdown item of `period`, one row per item key.

    Reads `format=raw` (all records), following its pagination while the
    response says there is more; records that share an item key are summed.
    Where the API refuses raw (a 400 or 422 about `format`), reads
    `format=table` 100 per page instead, and remembers that in `state`.
    """
    if state.get("format") != "table":
        try:
            yield raw_table(client, period)
            return
        except ApiError as error:
            if not _refuses_raw(error):
                raise
            state["format"] = "table"
    yield _last_per_key(_items_table(_table_pages(client, period), period))


def raw_table(client: LevelFourClient, period: str) -> pa.Table:
    """Every item of `period` read with `format=raw`, one row per item key."""
    return _summed(_items_table(list(_pages(client, period, format="raw")), period))


def _refuses_raw(error: ApiError) -> bool:
    """Only an explicit refusal — a 400/422 about `format` — means: use the table
    format. Raw answered with other field types is a schema change, and fails."""
    parameter = getattr(error, "parameter", None)
    if error.status not in (400, 422) or parameter not in (None, "format"):
        return False
    return parameter == "format" or "format" in error.server_message.lower()


def month_of(window: Window) -> str:
    """The period (YYYY-MM) a month window covers."""
    return window.start.strftime("%Y-%m")


def month_window(first_day: date) -> Window:
    """The window of the month starting `first_day`."""
    return Window(first_day, add_months(first_day, 1) - timedelta(days=1))


def add_months(first_day: date, months: int) -> date:
    """The first day of the month `months` after (or before) `first_day`'s."""
    index = first_day.year * 12 + first_day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


class MonthLedger:
    """What spending_breakdown loaded per period, in its resource state.

    `months`: period -> [digest of its items, whether the period had closed when
    loaded, when it was found restated after closing]. A closed period whose items
    differ from those loaded after it closed is a restatement (a correction).
    """

    def __init__(self, state: MutableMapping[str, Any], current: date, now: datetime) -> None:
        self._months: dict[str, list[Any]] = state.setdefault("months", {})
        self._current = current.strftime("%Y-%m")
        self._now = now
        self._loading: dict[str, list[Any]] = {}

    def recorded(self, period: str) -> bool:
        """Whether a load of `period` was recorded."""
        return period in self._months

    def changed(self, period: str, items: pa.Table) -> bool:
        """Whether `items` differ from what was loaded for `period` (or nothing was)."""
        recorded = self._months.get(period)
        return recorded is None or recorded[0] != _digest(items)

    def marked(self, period: str, items: pa.Table) -> pa.Table:
        """`items` with `RESTATED_COLUMN` set when they restate a closed period; remembered
        for `complete`."""
        found = _digest(items)
        digest, was_closed, restated = self._months.get(period) or [None, False, None]
        if digest is not None and digest != found:
            restated = self._now.isoformat() if was_closed else None
        self._loading[period] = [found, period < self._current, restated]
        if restated is None:
            return items
        index = items.schema.get_field_index(RESTATED_COLUMN)
        field = items.schema.field(index)
        when = pa.array([datetime.fromisoformat(restated)] * items.num_rows, field.type)
        return items.set_column(index, field, when)

    def complete(self, window: Window) -> None:
        """The month of `window` was loaded as last `marked`."""
        period = month_of(window)
        if period in self._loading:
            self._months[period] = self._loading.pop(period)


class PeriodPlan:
    """Which months a sync reads, kept in the resource state.

    State keys: `settled` (periods loaded once they were closed: never read
    again), `pending` (month windows planned, not loaded yet), `periods`
    (loaded) and `newest_period` (the newest one with items). The current
    month and the `reopen_months` before it are never settled — counted back
    from the newest period with items when the API's data ends earlier.
    """

    def __init__(self, state: MutableMapping[str, Any], current: date, reopen_months: int) -> None:
        self._state = state
        self._current = current
        self._reopen_months = reopen_months
        self._open_from = add_months(current, -reopen_months)

    def pending(self) -> list[Window]:
        """Month windows planned and not yet loaded."""
        return [month_window(date.fromisoformat(s)) for s, _ in self._state.get("pending", [])]

    def plan(self, first: date, last: date) -> list[Window]:
        """Plan every unsettled month from `first` to `last` (first days); return all pending."""
        settled = set(self._state.get("settled", []))
        newest = self._state.get("newest_period")
        if newest and newest < self._current.strftime("%Y-%m"):
            # the API's data ends before this month: its newest months are the open ones
            reopen = add_months(date.fromisoformat(f"{newest}-01"), -self._reopen_months)
            settled = {p for p in settled if p < reopen.strftime("%Y-%m")}
        windows = set(self.pending())
        month = first
        while month <= last:
            if month.strftime("%Y-%m") not in settled:
                windows.add(month_window(month))
            month = add_months(month, 1)
        ordered = sorted(windows)
        self._state["pending"] = [[w.start.isoformat(), w.end.isoformat()] for w in ordered]
        return ordered

    def settled_between(self, first: date, last: date) -> list[str]:
        """The settled periods (closed, loaded once) from `first` to `last`, not pending."""
        pending = {month_of(w) for w in self.pending()}
        low, high = first.strftime("%Y-%m"), last.strftime("%Y-%m")
        settled = self._state.get("settled", [])
        return [p for p in settled if low <= p <= high and p not in pending]

    def complete(self, window: Window, periods_with_items: Sequence[str] = ()) -> None:
        """Record a month as loaded; a closed one is settled for good."""
        if periods_with_items:
            newest = max(periods_with_items)
            self._state["newest_period"] = max(newest, self._state.get("newest_period") or newest)
        key = [window.start.isoformat(), window.end.isoformat()]
        self._state["pending"] = [w for w in self._state.get("pending", []) if w != key]
        periods = set(self._state.get("periods", [])) | {month_of(window)}
        self._state["periods"] = sorted(periods)
        if window.start < self._open_from:
            self._state["settled"] = sorted({*self._state.get("settled", []), month_of(window)})


def _pages(client: LevelFourClient, period: str, **params: Any) -> Iterator[BreakdownPage]:
    """Pages 1, 2, ... while the answer says there is more (`has_next`, else `total_pages`).

    The page number is counted here, not taken from the answer; a page that
    repeats the one before, or an empty page that claims more, is an error.
    """
    number, previous = 1, None
    while True:
        page = client.breakdown(period, page=number, **params)
        keys = _unique_keys([page])
        if previous is not None and keys and keys == previous:
            raise _paging_error(period, f"page {number} repeats page {number - 1}")
        yield page
        if not _has_more(page, number):
            return
        if not keys or number >= MAX_PAGES:
            raise _paging_error(period, f"page {number} is empty or past {MAX_PAGES} but says more")
        number, previous = number + 1, keys


def _has_more(page: BreakdownPage, number: int) -> bool:
    if page.has_next is not None:
        return page.has_next
    return page.total_pages is not None and number < page.total_pages


def _paging_error(period: str, reason: str) -> PagingError:
    return PagingError(VENDOR, BREAKDOWN_PATH, 200, f"period {period}: {reason}")


def _table_pages(client: LevelFourClient, period: str) -> list[BreakdownPage]:
    """All table pages; if rows shift between pages, read again in other orders."""
    pages: list[BreakdownPage] = []
    expected = None
    for sort_by in TABLE_SORTS:
        pages.extend(_table_pages_sorted(client, period, sort_by))
        expected = pages[0].total_items
        if expected is None or len(_unique_keys(pages)) >= expected:
            return pages
    raise PagingError(
        VENDOR,
        BREAKDOWN_PATH,
        200,
        f"period {period}: table pages kept shifting while read ({len(_unique_keys(pages))}"
        f" of {expected} items in {len(TABLE_SORTS)} passes); try again later",
    )


def _table_pages_sorted(
    client: LevelFourClient, period: str, sort_by: str
) -> Iterator[BreakdownPage]:
    params = {"page_size": TABLE_PAGE_SIZE, "sort_by": sort_by, "sort_order": "asc"}
    return _pages(client, period, format="table", **params)


def _unique_keys(pages: list[BreakdownPage]) -> set[tuple[Any, ...]]:
    keys: set[tuple[Any, ...]] = set()
    for page in pages:
        keys.update(zip(*(page.items.column(c).to_pylist() for c in ITEM_KEY), strict=True))
    return keys


def _items_table(pages: list[BreakdownPage], period: str) -> pa.Table:
    """The pages' items with their period, conformed to the table layout."""
    sent = {page.period[:7] for page in pages if page.period}
    if sent - {period}:
        message = f"asked for period {period}, got {', '.join(sorted(sent))}"
        raise SchemaChangeError(VENDOR, BREAKDOWN_PATH, 200, message)
    tables = [
        conform(_with_period(page.items, period), SPENDING_BREAKDOWN_SCHEMA, VENDOR, BREAKDOWN_PATH)
        for page in pages
    ]
    return pa.concat_tables(tables, promote_options="permissive")


def _with_period(items: pa.Table, period: str) -> pa.Table:
    column = pa.array([period] * items.num_rows, pa.string())
    if "period" in items.column_names:
        return items.set_column(items.column_names.index("period"), "period", column)
    return items.append_column("period", column)


def _summed(table: pa.Table) -> pa.Table:
    """One row per item key: raw records that share a key have their costs added up."""
    keys = list(SPENDING_BREAKDOWN_KEY)
    if len(set(_row_keys(table, keys))) == table.num_rows:
        return table
    money = ("cost", "previous_cost")
    others = [c for c in table.column_names if c not in (*keys, *money)]
    grouped = table.group_by(keys, use_threads=False).aggregate(
        [*((c, "sum") for c in money), *((c, "first") for c in others)]
    )
    grouped = grouped.rename_columns(
        [c.removesuffix("_sum").removesuffix("_first") for c in grouped.column_names]
    )
    grouped = grouped.set_column(
        grouped.column_names.index("change_percentage"),
        "change_percentage",
        _change_percentage(grouped.column("cost"), grouped.column("previous_cost")),
    )
    return conform(grouped, SPENDING_BREAKDOWN_SCHEMA, VENDOR, BREAKDOWN_PATH)


def _change_percentage(cost: pa.ChunkedArray, previous: pa.ChunkedArray) -> pa.Array:
    values = []
    for now, before in zip(cost.to_pylist(), previous.to_pylist(), strict=True):
        values.append(None if not before or now is None else float((now - before) / before * 100))
    return pa.array(values, pa.float64())


def _last_per_key(table: pa.Table) -> pa.Table:
    """One row per item key, the last read (table pages read in several passes overlap)."""
    last = {key: index for index, key in enumerate(_row_keys(table, SPENDING_BREAKDOWN_KEY))}
    if len(last) == table.num_rows:
        return table
    return table.take(sorted(last.values()))


def _row_keys(table: pa.Table, columns: Sequence[str]) -> list[tuple[Any, ...]]:
    return list(zip(*(table.column(c).to_pylist() for c in columns), strict=True))


def _digest(items: pa.Table) -> str:
    columns = [*SPENDING_BREAKDOWN_KEY, "cost", "previous_cost"]
    return digest(zip(*(items.column(c).to_pylist() for c in columns), strict=True))
