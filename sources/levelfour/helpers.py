"""LevelFour paging and the month plan of spending_breakdown."""

from __future__ import annotations

from collections.abc import Hashable, Iterator, MutableMapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import partial
from typing import Any

import pyarrow as pa

from sources.levelfour.client import BreakdownPage, LevelFourClient
from sources.levelfour.settings import (
    BREAKDOWN_PATH,
    DEFAULT_BASE_URL,
    DEFAULT_REQUESTS_PER_MINUTE,
    DEFAULT_START_MONTHS_AGO,
    ITEM_KEY,
    KEY,
    KEY_PREFIXES,
    MAX_PAGES,
    SPENDING_BREAKDOWN_KEY,
    SPENDING_BREAKDOWN_SCHEMA,
    TABLE_PAGE_SIZE,
    TABLE_SORTS,
    VENDOR,
)
from sources.shared.arrow_json import conform
from sources.shared.checks import MAX_MONTHS, check_int, parse_period
from sources.shared.checksums import digest
from sources.shared.connection import configured_connection
from sources.shared.errors import ApiError, ConfigError, PagingError, SchemaChangeError, readable
from sources.shared.paging import PageNumberPaginator, paginate, row_keys
from sources.shared.replace import RESTATED_COLUMN
from sources.shared.windows import Window, add_months


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


@dataclass(frozen=True)
class PeriodRange:
    """The months one sync reads (first days), the current one and how many reopen."""

    first: date
    last: date
    current: date
    reopen_months: int
    now: datetime


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
        self.complete_period(window.month)

    def complete_period(self, period: str) -> None:
        """`period` was loaded as last `marked`."""
        if period in self._loading:
            self._months[period] = self._loading.pop(period)


def _pages(client: LevelFourClient, period: str, **params: Any) -> Iterator[BreakdownPage]:
    """Pages 1, 2, ... of `period` while the answer says there is more (`has_next`,
    else `total_pages`); see `PageNumberPaginator` for what ends in a paging error."""
    paginator = PageNumberPaginator(
        VENDOR,
        BREAKDOWN_PATH,
        MAX_PAGES,
        keys_of=lambda page: row_keys(page.items, ITEM_KEY),
        context=f"period {period}",
    )
    return paginate(partial(client.breakdown, period), paginator, params)


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
    params = {"page": 1, "page_size": TABLE_PAGE_SIZE, "sort_by": sort_by, "sort_order": "asc"}
    return _pages(client, period, format="table", **params)


def _unique_keys(pages: list[BreakdownPage]) -> set[Hashable]:
    return set().union(*(row_keys(page.items, ITEM_KEY) for page in pages))


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
    for name in money:  # summed in 256 bits: a decimal128 sum wraps around silently
        index = table.column_names.index(name)
        table = table.set_column(index, name, table.column(name).cast(pa.decimal256(76, 18)))
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


def period_range(start: str | None, end: str | None, reopen_months: int) -> PeriodRange:
    """The checked months of a sync (`ConfigError` naming the first bad value)."""
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


def period_keys(window: Window) -> list[str]:
    """The merge key values a month window covers: its period."""
    return [window.month]


def probe(pipeline_name: str | None = None) -> dict[str, str | None]:
    """Whether the configured key can read the breakdown: one request for one item."""
    connection = configured_connection(
        "levelfour", DEFAULT_BASE_URL, DEFAULT_REQUESTS_PER_MINUTE, pipeline_name, KEY_PREFIXES
    )
    client = LevelFourClient(connection)
    query = {"format": "table", "page": 1, "page_size": 1}
    return readable({"spending_breakdown": lambda: client.breakdown(current_period(), query)})


def current_period() -> str:
    """This month, as LevelFour names periods (YYYY-MM, UTC)."""
    return datetime.now(UTC).strftime("%Y-%m")
