"""Verification: StackSpend's daily rollups tell which synced days the API changed.

Every sync reads the rollups of its verification horizon (the whole synced
range by default, or the `verify_days` days up to the newest synced day): one
request per group_by for up to `MAX_SPAN_DAYS` days, since the endpoint is not
paged. A synced day is *changed* when its rollups differ from what the last
load of that day saw, or when the line items loaded for it no longer add up to
its provider rollups and its service rollups (so a restatement that landed
between reading a day's line items and its rollups cannot hide, a line item
moved to another service included). Changed days are re-read whole; days that
did not change cost no line-item request.

What each resource loaded per day is recorded in its dlt resource state,
committed with the load that loaded it:

    daily_rollups  days:          day -> digest of its rollup rows
    line_items     days:          day -> [sums by provider and "*" total, with
                                          "services": a digest of the sums by service,
                                          rollups digest seen, closed, restated_at]
                   repairs:       day -> [rollups digest, expected sums, restated_at]
                   unreconciled:  day -> what did not add up after a re-read

A day re-read because it changed that still does not add up is the API
disagreeing with itself: it is recorded as unreconciled and re-read again
only once its rollups change, never in a loop.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, MutableMapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any, NamedTuple

import dlt
import pyarrow as pa
import pyarrow.compute as pc

from sources.shared.checksums import (
    RecordedSums,
    digest,
    record_sums,
    rounded,
    same_sums,
    sums_differ,
)
from sources.shared.errors import ScopeError
from sources.shared.progress import SyncProgress, publish_verification
from sources.shared.windows import DayPlan, Window, split_range
from sources.stackspend.settings import DAILY_ROLLUPS_SCHEMA

if TYPE_CHECKING:
    from sources.stackspend.helpers import SyncRange

MAX_SPAN_DAYS = 366  # days of rollups asked for in one request
TOTAL = "*"  # the key of a day's total among its recorded sums
SERVICES = "services"  # the key of the digest of its sums by service (not an amount)
SERVICE = "service:"  # the prefix of a service's sum while a day is summed (not recorded)
_ROLLUP_FIELDS = ("group_by", "provider_type", "service", "category", "cost_usd")


@dataclass(frozen=True)
class DayRollups:
    """One day's rollups in short: their digest and what its line items must add up to."""

    digest: str
    expected: RecordedSums


class RollupSnapshot:
    """The daily rollups of a range of days as the API reports them now."""

    def __init__(self, window: Window, tables: list[pa.Table]) -> None:
        self.window = window
        self._table = (
            pa.concat_tables(tables, promote_options="permissive")
            if tables
            else DAILY_ROLLUPS_SCHEMA.empty_table()
        )
        self.days = _summarise(self._table, window)

    def covers(self, window: Window) -> bool:
        """Whether every day of `window` is in the snapshot."""
        return self.window.start <= window.start and window.end <= self.window.end

    def rows_of(self, days: Iterable[date]) -> pa.Table:
        """The snapshot's rollup rows of `days`."""
        wanted = pa.array(sorted(set(days)), pa.date32())
        return self._table.filter(pc.is_in(self._table.column("date"), wanted))


def read_snapshot(fetch: Callable[[Window], Iterator[pa.Table]], window: Window) -> RollupSnapshot:
    """The rollups of `window`: `fetch(span)` yields one span's tables, for spans of
    at most `MAX_SPAN_DAYS` days."""
    tables = [
        t for span in split_range(window.start, window.end, MAX_SPAN_DAYS) for t in fetch(span)
    ]
    return RollupSnapshot(window, tables)


def line_item_sums(table: pa.Table) -> list[tuple[date, str, Decimal]]:
    """Line items summed per day and provider (its slug; null as "") and per day and
    service (`SERVICE` + its name), the keys a day's rollups are recorded under: one
    aggregation by day, provider and service, folded both ways."""
    fields = ["usage_date", "provider_type", "provider_service"]
    grouped = table.group_by(fields, use_threads=False).aggregate([("net_amount_usd", "sum")])
    columns = (grouped.column(name).to_pylist() for name in (*fields, "net_amount_usd_sum"))
    sums: dict[tuple[date, str], Decimal] = {}
    for day, provider, service, amount in zip(*columns, strict=True):
        for key in (provider or "", SERVICE + (service or "")):
            sums[(day, key)] = sums.get((day, key), Decimal(0)) + (amount or Decimal(0))
    return [(day, key, amount) for (day, key), amount in sums.items()]


def closed(day: date, today: date) -> bool:
    """Whether `day`'s billing period (its calendar month) had ended by `today`."""
    return (day.year, day.month) < (today.year, today.month)


class RollupLedger:
    """What daily_rollups loaded per day (a digest of its rows), in its resource state."""

    def __init__(self, state: MutableMapping[str, Any]) -> None:
        self._days: dict[str, str] = state.setdefault("days", {})
        self._loading: list[pa.Table] = []

    def changed(
        self, snapshot: RollupSnapshot, horizon: Window, skip: Iterable[Window] = ()
    ) -> tuple[list[date], list[date]]:
        """The days of `horizon` (outside the windows to `skip`, read anyway) whose
        rollups differ from those loaded, and those never recorded."""
        skipped = list(skip)
        changed: list[date] = []
        unrecorded: list[date] = []
        for day in horizon.days():
            loaded = self._days.get(day.isoformat())
            if any(day in window for window in skipped) or loaded == snapshot.days[day].digest:
                continue
            (changed if loaded else unrecorded).append(day)
        return changed, unrecorded

    def record(self, snapshot: RollupSnapshot, days: Iterable[date]) -> None:
        """`days` were loaded from `snapshot`."""
        for day in days:
            self._days[day.isoformat()] = snapshot.days[day].digest

    def observe(self, table: pa.Table) -> None:
        """A table of the window being loaded."""
        self._loading.append(table.select(DAILY_ROLLUPS_SCHEMA.names))

    def complete(self, window: Window) -> None:
        """The window observed so far was loaded."""
        loaded = RollupSnapshot(window, self._loading)
        self._loading = []
        for day in window.days():
            self._days[day.isoformat()] = loaded.days[day].digest


class LineItemLedger:
    """What line_items loaded per day, the re-reads due and the days that do not add up."""

    def __init__(self, state: MutableMapping[str, Any], now: datetime) -> None:
        self._days: dict[str, list[Any]] = state.setdefault("days", {})
        self._repairs: dict[str, list[Any]] = state.setdefault("repairs", {})
        self.unreconciled: dict[str, dict[str, str]] = state.setdefault("unreconciled", {})
        self._today = now.date()
        self._now = now.isoformat()
        self._loading: dict[date, dict[str, Decimal]] = {}

    def changed(self, snapshot: RollupSnapshot, horizon: Window) -> list[date]:
        """The days of `horizon` the API changed since their line items were loaded.

        Days never recorded (a pipeline synced before verification existed)
        are recorded as the rollups show them now, not re-read.
        """
        return [day for day in horizon.days() if self._changed(day, snapshot.days[day])]

    def expect(self, snapshot: RollupSnapshot, days: Iterable[date]) -> None:
        """`days` will be re-read: remember what they must add up to, and whether
        the re-read restates a closed billing period (a correction)."""
        for day in days:
            previous = self._days.get(day.isoformat())
            restated = previous[3] if previous else None
            if previous and previous[2]:
                restated = self._now
            rollups = snapshot.days[day]
            self._repairs[day.isoformat()] = [rollups.digest, rollups.expected, restated]

    def restated_at(self, window: Window) -> dict[date, datetime]:
        """When each day of `window` was found restated after its period closed."""
        marks = {}
        for day in window.days():
            key = day.isoformat()
            when = (self._repairs.get(key) or self._days.get(key) or [None] * 4)[-1]
            if when:
                marks[day] = datetime.fromisoformat(when)
        return marks

    def observe(self, table: pa.Table) -> None:
        """A table of the window being loaded."""
        for day, key, amount in line_item_sums(table):
            sums = self._loading.setdefault(day, {})
            sums[key] = sums.get(key, Decimal(0)) + amount
            if not key.startswith(SERVICE):
                sums[TOTAL] = sums.get(TOTAL, Decimal(0)) + amount

    def complete(self, window: Window, snapshot: RollupSnapshot | None) -> None:
        """The window observed so far was loaded: record each of its days."""
        loaded, self._loading = self._loading, {}
        for day in window.days():
            self._record(day, record_day(loaded.get(day, {})), snapshot)

    def _changed(self, day: date, rollups: DayRollups) -> bool:
        key = day.isoformat()
        unreconciled = self.unreconciled.get(key)
        if unreconciled and unreconciled["rollups"] == rollups.digest:
            return False
        previous = self._days.get(key)
        if previous is None:
            self._days[key] = [rollups.expected, rollups.digest, closed(day, self._today), None]
            return False
        sums, seen = previous[0], previous[1]
        if unreconciled or not add_up(sums, rollups.expected):
            return True
        if seen is not None and seen != rollups.digest:
            return True
        previous[1] = rollups.digest
        return False

    def _record(self, day: date, sums: RecordedSums, snapshot: RollupSnapshot | None) -> None:
        key = day.isoformat()
        repair = self._repairs.pop(key, None)
        fresh = snapshot.days.get(day) if snapshot else None
        if repair is not None:
            seen, expected, restated = repair
        else:
            seen = fresh.digest if fresh else None
            expected = fresh.expected if fresh else None
            restated = (self._days.get(key) or [None] * 4)[3]
        self._days[key] = [sums, seen, closed(day, self._today), restated]
        if expected is None:
            return
        if add_up(sums, expected):
            self.unreconciled.pop(key, None)
        elif repair is not None:
            self.unreconciled[key] = _disagreement(seen, sums, expected)


def _disagreement(seen: str, sums: RecordedSums, expected: RecordedSums) -> dict[str, str]:
    """What a day that does not add up reports: its totals and the largest difference."""
    return {
        "rollups": seen,
        "line_items_usd": sums.get(TOTAL, "0"),
        "service_rollups_usd": expected.get(TOTAL, "0"),
        "difference_usd": f"{sums_differ(_amounts(sums), _amounts(expected)):f}",
    }


def _summarise(table: pa.Table, window: Window) -> dict[date, DayRollups]:
    """Each day of `window` in short (days without rollups included)."""
    rows: dict[date, list[tuple[Any, ...]]] = {day: [] for day in window.days()}
    columns = [table.column(name).to_pylist() for name in ("date", *_ROLLUP_FIELDS)]
    for day, *fields in zip(*columns, strict=True):
        if day in rows:
            rows[day].append(tuple(fields))
    return {day: DayRollups(digest(found), _expected(found)) for day, found in rows.items()}


def _expected(rows: list[tuple[Any, ...]]) -> RecordedSums:
    """A day's provider rollups by provider, its service rollups by service (summed
    over providers, should a row name one) and their total. Service rollups that name
    no service at all give no sums by service: the line items are then held to the
    provider sums and the total only."""
    sums: dict[str, Decimal] = {}
    for group_by, provider, service, _category, cost in rows:
        amount = cost or Decimal(0)
        keys = {"provider": [provider or ""], "service": [SERVICE + (service or ""), TOTAL]}
        for key in keys.get(group_by, []):
            sums[key] = sums.get(key, Decimal(0)) + amount
    if not any(group_by == "service" and service for group_by, _, service, _, _ in rows):
        sums = {key: amount for key, amount in sums.items() if not key.startswith(SERVICE)}
    return record_day(sums)


def record_day(sums: dict[str, Decimal]) -> RecordedSums:
    """A day's sums as recorded: the amounts by provider and the total, and the sums by
    service (`SERVICE` keys) as one digest, however many services the day has."""
    services = [(key, amount) for key, amount in sums.items() if key.startswith(SERVICE)]
    recorded = record_sums({k: v for k, v in sums.items() if not k.startswith(SERVICE)})
    nonzero = [(key, amount) for key, amount in services if rounded(amount)]
    if nonzero:
        recorded[SERVICES] = digest(nonzero)
    return recorded


def add_up(sums: RecordedSums, expected: RecordedSums) -> bool:
    """Whether a day's line-item `sums` add up to its `expected` rollups. The sums by
    service count only where both carry them: a day recorded before they were has none."""
    if not same_sums(_amounts(sums), _amounts(expected)):
        return False
    if _before_services(sums) or _before_services(expected):
        return True
    return sums.get(SERVICES) == expected.get(SERVICES)


def _before_services(recorded: RecordedSums) -> bool:
    """A day with costs recorded without the digest of its sums by service."""
    return TOTAL in recorded and SERVICES not in recorded


def _amounts(recorded: RecordedSums) -> RecordedSums:
    return {key: value for key, value in recorded.items() if key != SERVICES}


def horizon(
    synced_from: date | None, synced_through: date | None, verify_days: int | None
) -> Window | None:
    """The days a sync verifies: the synced range, or its last `verify_days` days."""
    if synced_from is None or synced_through is None or verify_days == 0:
        return None
    first = synced_from
    if verify_days is not None:
        first = max(first, synced_through - timedelta(days=verify_days - 1))
    return Window(first, synced_through)


class Check(NamedTuple):
    """What one resource verifies: its days, and the rollups read for them."""

    days: Window
    rollups: RollupSnapshot


class Verifier:
    """Reads the rollups a sync verifies against, once for all its resources, and
    reports what was found (`progress.verification`, and the source state).

    The rollups are read up to the sync's end date, so they also serve the
    daily_rollups windows of this load: verification costs no extra request.
    """

    def __init__(
        self,
        fetch: Callable[[Window], Iterator[pa.Table]],
        sync: SyncRange,
        progress: SyncProgress,
    ) -> None:
        self._fetch = fetch
        self._sync = sync
        self._progress = progress
        self.rollups: RollupSnapshot | None = None
        self._report: dict[str, Any] = {}

    def horizon(self, plan: DayPlan) -> Window | None:
        """The days of `plan`'s synced range this sync verifies (None: none)."""
        return horizon(plan.synced_from, plan.synced_through, self._sync.verify_days)

    def check(self, plan: DayPlan) -> Check | None:
        """The days of `plan` to verify and the rollups to verify them against, read now
        (once for every resource); None: nothing to verify, or the key cannot read rollups."""
        days = self.horizon(plan)
        if days is None:
            return None
        snapshot = self._snapshot(Window(days.start, max(days.end, self._sync.end)))
        if snapshot is None:
            return None
        self._widen(days)
        return Check(days, snapshot)

    def found(self, changed: Iterable[date], reread: Iterable[date] = ()) -> None:
        """A resource found `changed` days and re-reads `reread`."""
        self._update(
            changed=sorted({*self._report.get("changed", []), *(d.isoformat() for d in changed)}),
            reread=sorted({*self._report.get("reread", []), *(d.isoformat() for d in reread)}),
        )

    def _snapshot(self, window: Window) -> RollupSnapshot | None:
        if self.rollups is not None and self.rollups.covers(window):
            return self.rollups
        if self.rollups is not None:
            window = Window(min(window.start, self.rollups.window.start), window.end)
        before = self._progress.stats.requests
        try:
            self.rollups = read_snapshot(self._fetch, window)
        except ScopeError as error:
            self._update(skipped=f"the key lacks {error.scope}", days=0)
            return None
        spent = self._progress.stats.requests - before
        self._update(requests=self._report.get("requests", 0) + spent)
        return self.rollups

    def _widen(self, days: Window) -> None:
        first = min(days.start.isoformat(), self._report.get("first", "9999"))
        last = max(days.end.isoformat(), self._report.get("last", ""))
        span = Window(date.fromisoformat(first), date.fromisoformat(last))
        self._update(first=first, last=last, days=span.length)

    def _update(self, **values: Any) -> None:
        self._report.update(values, at=self._sync.now.isoformat(timespec="seconds"))
        publish_verification(self._progress, self._report)


def known_providers() -> set[str]:
    """The providers the workspace has line-item costs for, from line_items' records
    (read inside a StackSpend resource)."""
    line_items = dlt.current.source_state().get("resources", {}).get("line_items", {})
    recorded = line_items.get("days", {}).values()
    return {key for day in recorded for key in day[0] if key not in ("", TOTAL, SERVICES)}
