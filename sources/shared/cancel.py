"""Waits that end when the work they serve is abandoned.

A sync reads in background threads (pages requested ahead, the next window
read ahead), and those threads wait: for the pacer's next slot, or for as
long as a 429 asks (up to minutes). When the sync stops — it failed, it was
interrupted — the threads must not sit out those waits, nor send another
request afterwards. A thread binds the event that abandons its work; `wait`
returns early with `Cancelled` once that event or the process-wide stop
(`stop_everything`, on Ctrl-C) is set.
"""

from __future__ import annotations

import threading
import time

_everything = threading.Event()
_bound = threading.local()
_SLICE_SECONDS = 0.25  # how often a long wait looks at its thread's own event


class Cancelled(Exception):
    """The work this thread was doing was abandoned while it waited."""


def stop_everything() -> None:
    """Abandon every wait in the process (an interrupted command)."""
    _everything.set()


def stopping() -> bool:
    """Whether the process is stopping (`stop_everything` was called)."""
    return _everything.is_set()


def reset() -> None:
    """Let waits run again (a later command in the same process)."""
    _everything.clear()


def bind(*events: threading.Event) -> None:
    """Abandon this thread's waits once any of `events` is set (none: only on a process
    stop)."""
    _bound.events = events


def bound() -> tuple[threading.Event, ...]:
    """The events this thread's waits end on (a thread it starts can share them)."""
    events: tuple[threading.Event, ...] = getattr(_bound, "events", ())
    return events


def wait(seconds: float) -> None:
    """Sleep `seconds`, or raise `Cancelled` as soon as this thread's work is abandoned.

    The main thread sleeps plainly: Ctrl-C interrupts it there.
    """
    if threading.current_thread() is threading.main_thread():
        time.sleep(seconds)
        return
    end = time.monotonic() + seconds
    while (left := end - time.monotonic()) > 0:
        _everything.wait(min(left, _SLICE_SECONDS))
        _check()
    _check()


def _check() -> None:
    if _everything.is_set() or any(event.is_set() for event in bound()):
        raise Cancelled
