"""The StackSpend REST client: auth header, envelope, typed errors, pacing."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

import pyarrow as pa

from sources.shared.arrow_json import list_to_table, read_document
from sources.shared.errors import (
    ApiError,
    AuthenticationError,
    ForbiddenError,
    PlanRestrictedError,
    RateLimitedError,
    RequestValidationError,
    SchemaChangeError,
    ScopeError,
    ServerError,
)
from sources.shared.http import ApiSession
from sources.shared.pacing import limiter_for
from sources.shared.progress import RequestStats
from sources.shared.retry import RetryPolicy, retry_after_seconds
from sources.stackspend.settings import (
    ANOMALIES_PAGE_LIMIT,
    ANOMALIES_PATH,
    ANOMALY_WIRE,
    ENDPOINT_RESOURCES,
    LINE_ITEM_WIRE,
    LINE_ITEMS_PAGE_LIMIT,
    LINE_ITEMS_PATH,
    PAGE_META_WIRE,
    RESOURCE_SCOPES,
    ROLLUP_WIRE,
    ROLLUPS_PATH,
    VENDOR,
)

_NEXT_CURSOR = re.compile(rb'"next_cursor"\s*:\s*("(?:[^"\\]|\\.)*")')
_NO_MORE = re.compile(rb'"has_more"\s*:\s*false')
_LINE_ITEMS_BODY = pa.schema([("data", pa.list_(LINE_ITEM_WIRE)), ("meta", PAGE_META_WIRE)])
_ROLLUPS_BODY = pa.schema([("data", pa.list_(ROLLUP_WIRE)), ("meta", PAGE_META_WIRE)])
_ANOMALIES_BODY = pa.schema([("data", pa.list_(ANOMALY_WIRE)), ("meta", PAGE_META_WIRE)])


_FIRST: Mapping[str, Any] = {}  # the paging parameters of a first page: none


@dataclass(frozen=True)
class Page:
    """One answer: its rows and, if the API says there is more, where it continues."""

    items: pa.Table
    next_cursor: str | None
    has_more: bool


class StackSpendClient:
    """Calls the three read endpoints; every answer comes back as an Arrow table."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        requests_per_minute: int,
        retry: RetryPolicy | None = None,
        timeout_seconds: float = 60.0,
        stats: RequestStats | None = None,
    ) -> None:
        self.session = ApiSession(
            VENDOR,
            base_url,
            {"X-API-Key": api_key},
            limiter_for(base_url, api_key, requests_per_minute),
            parse_error,
            retry=retry,
            timeout_seconds=timeout_seconds,
            secrets=(api_key,),
            stats=stats,
        )

    def line_items_page(
        self,
        start: date,
        end: date,
        paging: Mapping[str, Any] = _FIRST,
        peek: Callable[[bytes], None] | None = None,
    ) -> Page:
        """GET /line-items for `start`..`end` (inclusive), 1000 per page; `paging` holds
        the cursor of a later page. `peek` sees the raw body first (see
        `sources.shared.prefetch`)."""
        params = {
            "start_date": start.isoformat(),
            "end_date": end.isoformat(),
            "limit": LINE_ITEMS_PAGE_LIMIT,
            **paging,
        }
        return self.session.get(LINE_ITEMS_PATH, params, _decode_line_items, peek)

    def daily_rollups(
        self, start: date, end: date, group_by: str, paging: Mapping[str, Any] = _FIRST
    ) -> Page:
        """GET /rollups/daily for `start`..`end` grouped by `group_by` (the docs page it
        not; a `next_cursor` the API sends anyway is followed)."""
        params = {
            "start_date": start.isoformat(),
            "end_date": end.isoformat(),
            "group_by": group_by,
            **paging,
        }
        return self.session.get(ROLLUPS_PATH, params, _decode_rollups)

    def anomalies(
        self, since: str, filters: Mapping[str, str], paging: Mapping[str, Any] = _FIRST
    ) -> Page:
        """GET /anomalies detected after `since`, up to 500, narrowed by `filters`."""
        params = {"since": since, "limit": ANOMALIES_PAGE_LIMIT, **filters, **paging}
        return self.session.get(ANOMALIES_PATH, params, _decode_anomalies)


def parse_error(status: int, headers: Mapping[str, str], text: str, endpoint: str) -> ApiError:
    """The typed error for a non-200 answer, carrying the server's code and message."""
    code, message = _error_fields(text)
    args = (VENDOR, endpoint, status, message or f"HTTP {status}")
    if status == 401:
        return AuthenticationError(*args, code=code)
    if status == 403 and code == "INVALID_SCOPE":
        scope = RESOURCE_SCOPES.get(ENDPOINT_RESOURCES.get(endpoint, ""), "")
        return ScopeError(*args, code=code, scope=scope)
    if status == 403 and code == "PLAN_RESTRICTED":
        return PlanRestrictedError(*args, code=code)
    if status == 403:
        return ForbiddenError(*args, code=code)
    if status == 422:
        return RequestValidationError(*args, code=code)
    if status == 429:
        return RateLimitedError(*args, code=code, retry_after=retry_after_seconds(headers, message))
    if status >= 500 or status == 408:
        return ServerError(*args, code=code)
    return ApiError(*args, code=code)


def _error_fields(text: str) -> tuple[str | None, str | None]:
    try:
        error = json.loads(text).get("error") or {}
    except (ValueError, AttributeError):
        return None, text.strip()[:200] or None
    if not isinstance(error, dict):
        return None, str(error)
    return error.get("code"), error.get("message")


def _decode_line_items(body: bytes) -> Page:
    return _page(read_document(body, _LINE_ITEMS_BODY, VENDOR, LINE_ITEMS_PATH), LINE_ITEMS_PATH)


def _decode_rollups(body: bytes) -> Page:
    return _page(read_document(body, _ROLLUPS_BODY, VENDOR, ROLLUPS_PATH), ROLLUPS_PATH)


def _decode_anomalies(body: bytes) -> Page:
    return _page(read_document(body, _ANOMALIES_BODY, VENDOR, ANOMALIES_PATH), ANOMALIES_PATH)


def _page(document: dict[str, Any], endpoint: str) -> Page:
    """The rows and the paging of an envelope; `has_more` absent means "more" if a
    `next_cursor` is given."""
    data = document.get("data")
    if data is None or not data.is_valid:
        message = "the answer has no data array (its shape differs from the docs)"
        raise SchemaChangeError(VENDOR, endpoint, 200, message)
    meta = document.get("meta")
    meta = (meta.as_py() if meta is not None and meta.is_valid else None) or {}
    cursor = meta.get("next_cursor")
    has_more = meta.get("has_more")
    return Page(list_to_table(data), cursor, bool(cursor) if has_more is None else bool(has_more))


def peek_next_cursor(body: bytes) -> str | None:
    """The next cursor read off a line-items body's tail, or None; never raises."""
    tail = body[-2048:]
    match = _NEXT_CURSOR.search(tail)
    if match is None or _NO_MORE.search(tail) is not None:
        return None
    try:
        cursor = json.loads(match.group(1))
    except ValueError:
        return None
    return cursor if isinstance(cursor, str) and cursor else None
