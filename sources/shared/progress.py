"""Progress a sync reports while it runs.

Resources update one `SyncProgress`; whoever runs the sync (the CLI) reads it
or subscribes to changes. Nothing here prints.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

Listener = Callable[["SyncProgress"], None]


@dataclass
class RequestStats:
    """Counters an API session keeps: requests sent, retries, 429s received."""

    requests: int = 0
    retries: int = 0
    rate_limited: int = 0
    requests_per_minute: int | None = None  # the pace requests keep to
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def count(self, endpoint: str) -> None:
        """Record one request sent to `endpoint` (safe from several threads)."""
        with self._lock:
            self.requests += 1


@dataclass
class SyncProgress:
    """Rows extracted, the window being read and windows left, per resource, and
    what the sync's verification found (see the vendors' verification)."""

    rows: dict[str, int] = field(default_factory=dict)
    window: dict[str, str] = field(default_factory=dict)
    pending_windows: dict[str, int] = field(default_factory=dict)
    windows_done: dict[str, int] = field(default_factory=dict)
    stats: RequestStats = field(default_factory=RequestStats)
    listeners: list[Listener] = field(default_factory=list)
    verification: dict[str, Any] = field(default_factory=dict)

    def add_rows(self, resource: str, count: int) -> None:
        """`count` more rows extracted for `resource`."""
        self.rows[resource] = self.rows.get(resource, 0) + count
        self._notify()

    def reading(self, resource: str, window: str) -> None:
        """`resource` started reading `window` (e.g. 2025-01-01..2025-01-30)."""
        self.window[resource] = window
        self._notify()

    def set_pending(self, resource: str, windows: int) -> None:
        """`resource` has `windows` windows left after this load."""
        self.pending_windows[resource] = windows

    def window_done(self, resource: str) -> None:
        """`resource` read one more of its pending windows."""
        self.windows_done[resource] = self.windows_done.get(resource, 0) + 1
        self.pending_windows[resource] = max(0, self.pending_windows.get(resource, 1) - 1)
        self._notify()

    @property
    def windows(self) -> tuple[int, int]:
        """Windows committed so far, and planned in all (done + left), over all resources."""
        done = sum(self.windows_done.values())
        return done, done + sum(self.pending_windows.values())

    def seconds_left(self) -> float | None:
        """How long the windows left will take at the requests' pace (None: unknown)."""
        done, planned = self.windows
        rate = self.stats.requests_per_minute
        if not done or not rate:
            return None
        return (planned - done) * (self.stats.requests / done) * 60.0 / rate

    @property
    def has_pending(self) -> bool:
        """True while some resource has windows left to load."""
        return any(self.pending_windows.values())

    def _notify(self) -> None:
        for listener in self.listeners:
            listener(self)


def publish_verification(progress: SyncProgress, report: dict[str, Any]) -> None:
    """Make `report` (what a sync's verification checked and found) the one the sync
    prints and, through the source's dlt state, the one `costsync status` shows.

    Keys: at, unit (day or month), days (how many were checked), first, last,
    requests, changed, reread, skipped (why nothing was checked).
    """
    import dlt

    progress.verification = dict(report)
    dlt.current.source_state()["last_verification"] = dict(report)


@dataclass(frozen=True)
class LoadScope:
    """How much of a sync one dlt load does; the runner passes one to each load's source
    (the sources' `load` argument).

    Attributes:
        resume_only: only finish windows already planned (the later loads of a sync).
        max_windows: windows each date-windowed resource reads (None: all of them).
        progress: where rows, windows and requests are reported.
    """

    resume_only: bool = False
    max_windows: int | None = None
    progress: SyncProgress = field(default_factory=SyncProgress)
