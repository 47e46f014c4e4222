"""Paginators: one class per paging style, on dlt's `BasePaginator` contract.

As in `dlt.sources.helpers.rest_client.paginators`, a paginator reads each answer
(`update_state`), says whether there is a next page (`has_next_page`) and puts
into the next request what fetches it (`update_request`). Here the answers are
the vendor clients' decoded pages (their rows already Arrow tables), and a
request is its query parameters. Each paginator refuses to loop or to guess:
what cannot be followed safely raises `PagingError`, never an endless loop.

    paginator = CursorPaginator(VENDOR, endpoint)
    for page in paginate(lambda params: client.get_page(params), paginator): ...
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Hashable, Iterator, MutableMapping, Sequence
from typing import Any, NoReturn, Protocol, TypeVar

import pyarrow as pa

from sources.shared.errors import PagingError

MAX_EMPTY_PAGES = 3  # pages in a row with no rows that still say there is more
# Pages in a row that bring under 1% of the page size asked for and still say there is
# more: an API trickling one row a page would otherwise take a million requests a window.
MAX_SHORT_PAGES = 20


class CursorPage(Protocol):
    """An answer paged by cursor: its rows, and where it continues."""

    @property
    def items(self) -> pa.Table: ...

    @property
    def next_cursor(self) -> str | None: ...

    @property
    def has_more(self) -> bool: ...


class NumberedPage(Protocol):
    """An answer paged by number: its rows, and whether (or how far) it continues."""

    @property
    def items(self) -> pa.Table: ...

    @property
    def has_next(self) -> bool | None: ...

    @property
    def total_pages(self) -> int | None: ...


P = TypeVar("P")
Params = MutableMapping[str, Any]


class Paginator(ABC):
    """dlt's BasePaginator contract over decoded pages and query parameters."""

    def __init__(self, vendor: str, endpoint: str, max_pages: int, context: str = "") -> None:
        self.vendor = vendor
        self.endpoint = endpoint
        self.max_pages = max_pages
        self.context = context  # what is being paged, for messages (e.g. "period 2025-01")
        self.pages = 0
        self._has_next_page = True

    @property
    def has_next_page(self) -> bool:
        """Whether the last answer said there is more."""
        return self._has_next_page

    def init_request(self, params: Params) -> None:  # noqa: B027 (optional, as in dlt)
        """Set up the first request's parameters."""

    @abstractmethod
    def update_state(self, page: Any) -> None:
        """Read `page`: is there a next one, and how is it asked for?"""

    @abstractmethod
    def update_request(self, params: Params) -> None:
        """Put into `params` what asks for the next page."""

    def _count(self) -> None:
        self.pages += 1
        if self.pages > self.max_pages:
            self.fail(f"{self.pages} pages and still more, more than the query can hold")

    def fail(self, reason: str) -> NoReturn:
        """Stop: the paging cannot be followed safely."""
        message = f"{self.context}: {reason}" if self.context else reason
        raise PagingError(self.vendor, self.endpoint, 200, message)


class CursorPaginator(Paginator):
    """`meta.next_cursor` while `meta.has_more`: a cursor seen before, more without a
    cursor, `MAX_EMPTY_PAGES` empty pages in a row that promise more, `MAX_SHORT_PAGES`
    in a row under 1% of `page_size` that promise more, or more than `max_pages` pages
    end in `PagingError`."""

    def __init__(
        self,
        vendor: str,
        endpoint: str,
        max_pages: int,
        context: str = "",
        cursor_param: str = "cursor",
        page_size: int | None = None,
    ) -> None:
        super().__init__(vendor, endpoint, max_pages, context)
        self.cursor_param = cursor_param
        self.cursor: str | None = None
        self._seen: set[str] = set()
        self._empty = 0
        self._short = 0
        self._short_rows = max(1, (page_size or 0) // 100)

    def update_state(self, page: CursorPage) -> None:
        rows = page.items.num_rows
        self._empty = self._empty + 1 if rows == 0 else 0
        self._short = self._short + 1 if rows < self._short_rows else 0
        self._has_next_page = page.has_more
        if not page.has_more:
            return
        self._count()
        if self._empty >= MAX_EMPTY_PAGES:
            self.fail(f"{self._empty} pages in a row brought no rows but said has_more")
        if self._short >= MAX_SHORT_PAGES:
            self.fail(
                f"{self._short} pages in a row brought fewer than {self._short_rows} rows "
                "each but said has_more"
            )
        cursor = page.next_cursor
        if not cursor:
            self.fail("has_more is true but no next_cursor")
        elif cursor in self._seen:
            self.fail("next_cursor repeats an earlier one (a paging loop)")
        self._seen.add(cursor)
        self.cursor = cursor

    def update_request(self, params: Params) -> None:
        params[self.cursor_param] = self.cursor


class PageNumberPaginator(Paginator):
    """`page=1, 2, …` while the answer says there is more (`has_next`, else
    `total_pages`). The number is counted here, not taken from the answer; a page
    repeating the one before, or an empty page that claims more, ends in `PagingError`.
    `keys_of(page)` names a page's rows, to tell a repeated page."""

    def __init__(
        self,
        vendor: str,
        endpoint: str,
        max_pages: int,
        keys_of: Callable[[Any], set[Hashable]],
        context: str = "",
        page_param: str = "page",
    ) -> None:
        super().__init__(vendor, endpoint, max_pages, context)
        self.page_param = page_param
        self.number = 1
        self._keys_of = keys_of
        self._previous: set[Hashable] | None = None

    def update_state(self, page: NumberedPage) -> None:
        keys = self._keys_of(page)
        if self._previous is not None and keys and keys == self._previous:
            self.fail(f"page {self.number} repeats page {self.number - 1}")
        more = page.has_next
        if more is None:
            more = page.total_pages is not None and self.number < page.total_pages
        self._has_next_page = more
        if not more:
            return
        self._count()
        if not keys:
            self.fail(f"page {self.number} is empty but says there is more")
        self._previous = keys

    def update_request(self, params: Params) -> None:
        self.number += 1
        params[self.page_param] = self.number


def paginate(
    fetch: Callable[[Params], P], paginator: Paginator, params: Params | None = None
) -> Iterator[P]:
    """Every page: `fetch(params)`, then again with `params` updated, while there is more."""
    request: Params = dict(params or {})
    paginator.init_request(request)
    while True:
        page = fetch(request)
        paginator.update_state(page)
        yield page
        if not paginator.has_next_page:
            return
        paginator.update_request(request)


def row_keys(items: pa.Table, columns: Sequence[str]) -> set[Hashable]:
    """The key tuples of `items`' rows (for `PageNumberPaginator.keys_of`)."""
    return set(zip(*(items.column(c).to_pylist() for c in columns), strict=True))
