"""Cursor paging with one page of lookahead.

A cursor-paginated API hands out the next cursor inside each page. Parsing a
page takes about as long as fetching one, so the pager asks for page N+1 as
soon as page N's bytes arrive (its cursor is read off the body), while page N
is being parsed. The request count is unchanged; only the waiting overlaps.
If the cursor read early turns out different from the parsed one, the early
request is dropped and the right page is fetched.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Generic, TypeVar

from sources.shared import cancel
from sources.shared.paging import CursorPage, CursorPaginator

P = TypeVar("P", bound=CursorPage)
Peek = Callable[[bytes], None]
Fetch = Callable[[str | None, Peek], P]

LOOKAHEAD = 2  # pages requested ahead of the one being consumed


class _Pager(Generic[P]):
    def __init__(self, fetch: Fetch[P], peek_cursor: Callable[[bytes], str | None]) -> None:
        self.fetch = fetch
        self.peek_cursor = peek_cursor
        self.pool = ThreadPoolExecutor(max_workers=LOOKAHEAD, thread_name_prefix="costsync-pager")
        self.ahead: dict[str | None, Future[P]] = {}
        self.lock = threading.Lock()
        # its fetches stop waiting when it closes, or when the reading thread's work stops
        self.events = (threading.Event(), *cancel.bound())

    def request(self, cursor: str | None) -> Future[P]:
        with self.lock:
            future = self.ahead.pop(cursor, None)
        return future or self.pool.submit(self._fetch, cursor)

    def _fetch(self, cursor: str | None) -> P:
        cancel.bind(*self.events)
        return self.fetch(cursor, self.peek)

    def peek(self, body: bytes) -> None:
        cursor = self.peek_cursor(body)
        if cursor is None:
            return
        with self.lock:
            if cursor in self.ahead or len(self.ahead) >= LOOKAHEAD:
                return
            self.ahead[cursor] = self.pool.submit(self._fetch, cursor)

    def close(self) -> None:
        with self.lock:
            pending = list(self.ahead.values())
            self.ahead.clear()
        self.events[0].set()
        for future in pending:
            future.cancel()
        self.pool.shutdown(wait=not cancel.stopping(), cancel_futures=True)


def prefetched_pages(
    fetch: Fetch[P],
    peek_cursor: Callable[[bytes], str | None],
    paginator: CursorPaginator,
) -> Iterator[P]:
    """Pages from `fetch(cursor, peek)`, following `paginator` while it has a next page.

    `fetch` must call `peek(body)` with each raw body before parsing it;
    `peek_cursor(body)` returns the next cursor it can read off the bytes, or
    None (it must never raise). Errors surface when their page is consumed.
    """
    pager: _Pager[P] = _Pager(fetch, peek_cursor)
    try:
        cursor: str | None = None
        while True:
            page = pager.request(cursor).result()
            paginator.update_state(page)
            yield page
            if not paginator.has_next_page:
                return
            cursor = paginator.cursor
    finally:
        pager.close()
