"""Reading the next window while the current one is being loaded.

A sync loads one window per dlt load, and while dlt writes window N into the
warehouse nothing would be fetching. When a resource finishes extracting its
last window of a load, it starts reading the next pending window in a
background thread, into a bounded queue; the next load takes the tables from
there. Requests go through the same paced client, so the count is unchanged;
the waiting overlaps with the load. What is read ahead is only ever loaded by
the next load, with its own state commit: a crash loses nothing but the
read-ahead itself.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Hashable, Iterator
from typing import TYPE_CHECKING, cast

import pyarrow as pa

from sources.shared import cancel

if TYPE_CHECKING:
    from sources.shared.windows import Window

# Pages held while the load runs (~1000 rows, ~150 KB each). A load of a 30-day
# window takes about as long as reading 50 pages, and more would only hold memory.
MAX_TABLES_AHEAD = 50

_DONE = object()


class _Failure:
    def __init__(self, error: BaseException) -> None:
        self.error = error


class ReadAhead:
    """One window's tables, produced by a daemon thread into a bounded queue."""

    def __init__(self, read_window: Callable[[Window], Iterator[pa.Table]], window: Window) -> None:
        self.window = window
        self.owner = threading.get_ident()  # the sync's thread: syncs side by side each stop theirs
        self._queue: queue.Queue[object] = queue.Queue(maxsize=MAX_TABLES_AHEAD)
        self._stopped = threading.Event()
        self._thread = threading.Thread(
            target=self._produce, args=(read_window,), name="costsync-read-ahead", daemon=True
        )
        self._thread.start()

    def tables(self) -> Iterator[pa.Table]:
        """The window's tables in order; re-raises whatever stopped the reading."""
        while True:
            item = self._queue.get()
            if item is _DONE:
                return
            if isinstance(item, _Failure):
                raise item.error
            yield cast(pa.Table, item)

    def stop(self) -> None:
        """Abandon the read-ahead and let its thread end (not waited for when the whole
        process is stopping: the thread is a daemon)."""
        self._stopped.set()
        while self._thread.is_alive() and not cancel.stopping():
            try:
                self._queue.get(timeout=0.05)
            except queue.Empty:
                continue

    def _produce(self, read_window: Callable[[Window], Iterator[pa.Table]]) -> None:
        cancel.bind(self._stopped)  # its waits end when the read-ahead is abandoned
        try:
            for table in read_window(self.window):
                if self._stopped.is_set():
                    return
                self._queue.put(table)
            self._queue.put(_DONE)
        except BaseException as error:  # handed to the consumer, never dropped
            self._queue.put(_Failure(error))


_pending: dict[Hashable, ReadAhead] = {}
_lock = threading.Lock()


def start(
    key: Hashable, read_window: Callable[[Window], Iterator[pa.Table]], window: Window
) -> None:
    """Begin reading `window` ahead under `key` (e.g. the resource and base URL)."""
    with _lock:
        if (key, window) not in _pending:
            _pending[(key, window)] = ReadAhead(read_window, window)


def take(key: Hashable, window: Window) -> ReadAhead | None:
    """The read-ahead started for `window` under `key`, if any (it is handed over once)."""
    with _lock:
        return _pending.pop((key, window), None)


def stop_all() -> None:
    """Abandon every read-ahead this thread started (its sync ended or failed)."""
    owner = threading.get_ident()
    with _lock:
        mine = [key for key, ahead in _pending.items() if ahead.owner == owner]
        pending = [_pending.pop(key) for key in mine]
    for read_ahead in pending:
        read_ahead.stop()
