"""Date windows and the incremental plan of a date-windowed resource.

A resource reads its date range in windows and commits after each one, so
a killed backfill resumes where it stopped. Its position lives in dlt
resource state (plain ISO strings, so it round-trips through the warehouse):

    synced_from, synced_through   the days already loaded
    newest_day                    the newest day the API had rows for
    pending                       windows planned but not yet loaded

A new sync plans: any days before `synced_from` the user now asks for, the
last `lookback_days` before `synced_through` again (the API restates recent
days; counted back from `newest_day` instead when the API's data ends
earlier, since that is where restatements land), and every day after it up
to the end date. A sync that finds windows
still pending from an interrupted one finishes those first, without reading
their days twice.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, MutableMapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any


@dataclass(frozen=True, order=True)
class Window:
    """An inclusive range of days."""

    start: date
    end: date

    def days(self) -> Iterator[date]:
        """Every day of the window, in order."""
        for offset in range((self.end - self.start).days + 1):
            yield self.start + timedelta(days=offset)

    @property
    def length(self) -> int:
        """How many days the window holds."""
        return (self.end - self.start).days + 1

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


class WindowPlan:
    """Reads and updates a resource's window plan inside its dlt resource state."""

    def __init__(self, state: MutableMapping[str, Any]) -> None:
        self._state = state

    @property
    def synced_from(self) -> date | None:
        """First day loaded so far, or None before the first load."""
        return _day(self._state.get("synced_from"))

    @property
    def synced_through(self) -> date | None:
        """Last day loaded so far, or None before the first load."""
        return _day(self._state.get("synced_through"))

    def pending(self) -> list[Window]:
        """Windows planned and not yet loaded, oldest first."""
        return [Window(_day(s), _day(e)) for s, e in self._state.get("pending", [])]

    def plan(self, start: date, end: date, lookback_days: int, window_days: int) -> list[Window]:
        """Add the windows a new sync of `start`..`end` must read; return all pending."""
        backfill = self._backfill_range(start)
        floor = backfill[-1][1] + timedelta(days=1) if backfill else start
        ranges = [*backfill, *self._tail_range(floor, end, lookback_days)]
        windows = self.pending()
        for first, last in ranges:
            windows.extend(split_range(first, last, window_days))
        windows.sort()
        self._state["pending"] = [[w.start.isoformat(), w.end.isoformat()] for w in windows]
        return windows

    def add_days(self, days: Iterable[date], window_days: int) -> list[date]:
        """Plan `days` for re-reading, except those a pending window reads already.

        Returns the days added; consecutive ones share a window.
        """
        pending = self.pending()
        added = sorted({day for day in days if not any(day in w for w in pending)})
        windows = [
            w for first, last in runs_of(added) for w in split_range(first, last, window_days)
        ]
        ordered = sorted([*pending, *windows])
        self._state["pending"] = [[w.start.isoformat(), w.end.isoformat()] for w in ordered]
        return added

    @property
    def newest_day(self) -> date | None:
        """The newest day the API had rows for, or None."""
        return _day(self._state.get("newest_day"))

    def complete(self, window: Window, days_with_rows: Sequence[date] = ()) -> None:
        """Record `window` as loaded; `days_with_rows` are its days the API had rows for."""
        if days_with_rows:
            newest = max(days_with_rows)
            self._state["newest_day"] = max(newest, self.newest_day or newest).isoformat()
        key = [window.start.isoformat(), window.end.isoformat()]
        self._state["pending"] = [w for w in self._state.get("pending", []) if w != key]
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


def _day(value: str | None) -> date | None:
    return date.fromisoformat(value) if value else None
