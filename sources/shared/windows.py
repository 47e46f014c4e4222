"""Date windows, the incremental plans of windowed resources, and the one driver
that reads a load's windows.

A resource reads its range in windows — spans of days (StackSpend) or whole
months (LevelFour) — and commits after each one, so a killed backfill resumes
where it stopped. Its position lives in dlt resource state (plain ISO strings,
so it round-trips through the warehouse); both plans keep the windows planned
but not yet loaded in `pending`.

`DayPlan` (also `synced_from`, `synced_through`, `newest_day`): a new sync plans
any days before `synced_from` the user now asks for, the last `lookback_days`
before `synced_through` again (the API restates recent days; counted back from
`newest_day` instead when the API's data ends earlier, since that is where
restatements land), and every day after it up to the end date. A sync that
finds windows still pending from an interrupted one finishes those first,
without reading their days twice.

`MonthPlan` (also `settled`, `periods`, `newest_period`): every month not settled;
a month is settled once loaded after it closed, except the current one and the
`reopen_months` before it.

`load_windows` reads as many pending windows as one load takes, yields their
tables (with markers emptying the keys that had no rows, see
`sources.shared.replace`) and commits each window as it is read.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Iterator, MutableMapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import pendulum
import pyarrow as pa
import pyarrow.compute as pc

from sources.shared import lookahead
from sources.shared.progress import SyncProgress
from sources.shared.replace import BATCH_ROWS, Replacement, concat

MONTH_DAYS = 31  # the most days a month window holds


@dataclass(frozen=True, order=True)
class Window:
    """An inclusive range of days."""

    start: date
    end: date

    def days(self) -> Iterator[date]:
        """Every day of the window, in order."""
        for offset in range(self.length):
            yield self.start + timedelta(days=offset)

    @property
    def length(self) -> int:
        """How many days the window holds."""
        return (self.end - self.start).days + 1

    @property
    def month(self) -> str:
        """The period (YYYY-MM) of a month window: the month of its first day."""
        return self.start.strftime("%Y-%m")

    def __contains__(self, day: object) -> bool:
        return isinstance(day, date) and self.start <= day <= self.end

    def __str__(self) -> str:
        return f"{self.start.isoformat()}..{self.end.isoformat()}"


def split_range(start: date, end: date, window_days: int) -> list[Window]:
    """`start`..`end` cut into consecutive windows of at most `window_days` days."""
    windows = []
    while start <= end:
        last = min(end, start + timedelta(days=window_days - 1))
        windows.append(Window(start, last))
        start = last + timedelta(days=1)
    return windows


def add_months(first_day: date, months: int) -> date:
    """The first day of the month `months` after (or before) `first_day`'s."""
    moved = pendulum.date(first_day.year, first_day.month, 1).add(months=months)
    return date(moved.year, moved.month, 1)


def month_window(first_day: date) -> Window:
    """The window of the month starting `first_day`."""
    last = pendulum.date(first_day.year, first_day.month, 1).end_of("month")
    return Window(first_day, date(last.year, last.month, last.day))


def runs_of(days: Iterable[date]) -> list[tuple[date, date]]:
    """Consecutive days grouped into (first, last) runs, oldest first."""
    runs: list[tuple[date, date]] = []
    for day in sorted(set(days)):
        if runs and day == runs[-1][1] + timedelta(days=1):
            runs[-1] = (runs[-1][0], day)
        else:
            runs.append((day, day))
    return runs


def take_windows(windows: Sequence[Window], max_days: int | None) -> int:
    """How many of `windows` one load reads: the first, then more while their days
    add up to at most `max_days` (all of them when `max_days` is None).

    Short windows (single days re-read because the API restated them) share a
    load instead of each paying for one.
    """
    if max_days is None:
        return len(windows)
    count, days = 0, 0
    for window in windows:
        if count and days + window.length > max_days:
            break
        count, days = count + 1, days + window.length
    return count


class _Plan:
    """The windows a resource planned and has not loaded yet, in its state."""

    def __init__(self, state: MutableMapping[str, Any]) -> None:
        self._state = state

    def pending(self) -> list[Window]:
        """Windows planned and not yet loaded, oldest first."""
        return [Window(_day(s), _day(e)) for s, e in self._state.get("pending", [])]

    def _set_pending(self, windows: Iterable[Window]) -> list[Window]:
        ordered = sorted(set(windows))
        self._state["pending"] = [[w.start.isoformat(), w.end.isoformat()] for w in ordered]
        return ordered

    def _loaded(self, window: Window) -> None:
        self._set_pending(w for w in self.pending() if w != window)


class DayPlan(_Plan):
    """The plan of a resource read in windows of days (see the module docstring)."""

    @property
    def synced_from(self) -> date | None:
        """First day loaded so far, or None before the first load."""
        return _optional_day(self._state.get("synced_from"))

    @property
    def synced_through(self) -> date | None:
        """Last day loaded so far, or None before the first load."""
        return _optional_day(self._state.get("synced_through"))

    @property
    def newest_day(self) -> date | None:
        """The newest day the API had rows for, or None."""
        return _optional_day(self._state.get("newest_day"))

    def plan(self, start: date, end: date, lookback_days: int, window_days: int) -> list[Window]:
        """Add the windows a new sync of `start`..`end` must read; return all pending."""
        backfill = self._backfill_range(start)
        floor = backfill[-1][1] + timedelta(days=1) if backfill else start
        ranges = [*backfill, *self._tail_range(floor, end, lookback_days)]
        windows = self.pending()
        for first, last in ranges:
            windows.extend(split_range(first, last, window_days))
        return self._set_pending(windows)

    def add_days(self, days: Iterable[date], window_days: int) -> list[date]:
        """Plan `days` for re-reading, except those a pending window reads already.

        Returns the days added; consecutive ones share a window.
        """
        pending = self.pending()
        added = sorted({day for day in days if not any(day in w for w in pending)})
        runs = runs_of(added)
        self._set_pending([*pending, *(w for a, b in runs for w in split_range(a, b, window_days))])
        return added

    def complete(self, window: Window, days_with_rows: Sequence[date] = ()) -> None:
        """Record `window` as loaded; `days_with_rows` are its days the API had rows for."""
        if days_with_rows:
            newest = max(days_with_rows)
            self._state["newest_day"] = max(newest, self.newest_day or newest).isoformat()
        self._loaded(window)
        first, last = self.synced_from, self.synced_through
        self._state["synced_from"] = min(first or window.start, window.start).isoformat()
        self._state["synced_through"] = max(last or window.end, window.end).isoformat()

    def _backfill_range(self, start: date) -> list[tuple[date, date]]:
        known = [d for d in (self.synced_from, *(w.start for w in self.pending())) if d]
        if not known or start >= min(known):
            return []
        return [(start, min(known) - timedelta(days=1))]

    def _tail_range(self, floor: date, end: date, lookback_days: int) -> list[tuple[date, date]]:
        pending_end = max((w.end for w in self.pending()), default=None)
        synced = self.synced_through
        if pending_end and (synced is None or pending_end >= synced):
            first = pending_end + timedelta(days=1)  # resume: its days are being read already
        elif synced:
            newest = self.newest_day
            anchor = min(synced, newest) if newest else synced
            first = anchor + timedelta(days=1 - lookback_days)
        else:
            first = floor
        first = max(first, floor)
        return [(first, end)] if first <= end else []


class MonthPlan(_Plan):
    """The plan of a resource read one month at a time (see the module docstring)."""

    def __init__(self, state: MutableMapping[str, Any], current: date, reopen_months: int) -> None:
        super().__init__(state)
        self._current = current
        self._reopen_months = reopen_months
        self._open_from = add_months(current, -reopen_months)

    def plan(self, first: date, last: date) -> list[Window]:
        """Plan every unsettled month from `first` to `last` (first days); return all pending."""
        settled = set(self._state.get("settled", []))
        newest = self._state.get("newest_period")
        if newest and newest < self._current.strftime("%Y-%m"):
            # the API's data ends before this month: its newest months are the open ones
            reopen = add_months(date.fromisoformat(f"{newest}-01"), -self._reopen_months)
            settled = {p for p in settled if p < reopen.strftime("%Y-%m")}
        windows = self.pending()
        month = first
        while month <= last:
            if month.strftime("%Y-%m") not in settled:
                windows.append(month_window(month))
            month = add_months(month, 1)
        return self._set_pending(windows)

    def settled_between(self, first: date, last: date) -> list[str]:
        """The settled periods (closed, loaded once) from `first` to `last`, not pending."""
        pending = {w.month for w in self.pending()}
        low, high = first.strftime("%Y-%m"), last.strftime("%Y-%m")
        settled = self._state.get("settled", [])
        return [p for p in settled if low <= p <= high and p not in pending]

    def complete(self, window: Window, periods_with_items: Sequence[str] = ()) -> None:
        """Record a month as loaded; a closed one is settled for good."""
        if periods_with_items:
            newest = max(periods_with_items)
            self._state["newest_period"] = max(newest, self._state.get("newest_period") or newest)
        self._loaded(window)
        self._state["periods"] = sorted({*self._state.get("periods", []), window.month})
        if window.start < self._open_from:
            self._state["settled"] = sorted({*self._state.get("settled", []), window.month})


@dataclass(frozen=True)
class WindowReader:
    """How a windowed resource reads a window, and what it records as one loads.

    Attributes:
        read: the window's tables (conformed to the resource's layout).
        complete: `complete(window, keys)` records the window as loaded; `keys` are
            the key values (days, months) that had rows.
        observe: if given, sees every table of the window before it is yielded.
    """

    read: Callable[[Window], Iterator[pa.Table]]
    complete: Callable[[Window, list[Any]], None]
    observe: Callable[[pa.Table], None] | None = None


def load_windows(
    resource: str,
    windows: Sequence[Window],
    reader: WindowReader,
    replacement: Replacement,
    progress: SyncProgress,
    max_days: int | None = None,
    read_ahead_key: Hashable = None,
) -> Iterator[pa.Table]:
    """Read the first of `windows` that one load takes (`take_windows`), committing each.

    When `read_ahead_key` is given, the window the next load will read starts
    being read in the background as soon as this load's last window is read.
    """
    count = take_windows(windows, max_days)
    now, later = list(windows[:count]), list(windows[count:])
    progress.set_pending(resource, len(windows))
    for window in now:
        upcoming = later[0] if later and window == now[-1] and read_ahead_key else None
        yield from _load_window(
            resource, window, reader, replacement, progress, upcoming, read_ahead_key
        )
    progress.set_pending(resource, len(later))


def _load_window(
    resource: str,
    window: Window,
    reader: WindowReader,
    replacement: Replacement,
    progress: SyncProgress,
    upcoming: Window | None,
    read_ahead_key: Hashable,
) -> Iterator[pa.Table]:
    """One window's tables in batches, then markers for its emptied keys, then its commit."""
    progress.reading(resource, str(window))
    ahead = lookahead.take(read_ahead_key, window) if read_ahead_key else None
    tables = ahead.tables() if ahead else reader.read(window)
    seen: set[Any] = set()
    batch: list[pa.Table] = []
    for table in map(replacement.keyed, tables):
        seen.update(pc.unique(table.column(replacement.column)).to_pylist())
        progress.add_rows(resource, table.num_rows)
        batch.append(table)
        if sum(t.num_rows for t in batch) >= BATCH_ROWS:
            yield _observed(concat(batch), reader.observe)
            batch = []
    if upcoming is not None:
        lookahead.start(read_ahead_key, reader.read, upcoming)
    if batch:
        yield _observed(concat(batch), reader.observe)
    yield from replacement.emptied(replacement.keys_of(window), seen)
    reader.complete(window, sorted(seen))
    progress.window_done(resource)


def _observed(table: pa.Table, observe: Callable[[pa.Table], None] | None) -> pa.Table:
    if observe is not None:
        observe(table)
    return table


def _day(value: str) -> date:
    return date.fromisoformat(value)


def _optional_day(value: str | None) -> date | None:
    return date.fromisoformat(value) if value else None
