"""The LevelFour REST client: Bearer auth, FastAPI-style errors, pacing."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from sources.levelfour.settings import BREAKDOWN_PATH, BREAKDOWN_WIRE, VENDOR
from sources.shared.arrow_json import list_to_table, read_document
from sources.shared.errors import (
    ApiError,
    AuthenticationError,
    ForbiddenError,
    RateLimitedError,
    RequestValidationError,
    SchemaChangeError,
    ServerError,
)
from sources.shared.http import ApiSession
from sources.shared.pacing import limiter_for
from sources.shared.progress import RequestStats
from sources.shared.retry import RetryPolicy, retry_after_seconds


@dataclass(frozen=True)
class BreakdownPage:
    """One answer of GET /spending/breakdown."""

    period: str | None
    items: pa.Table
    total_pages: int | None
    total_items: int | None
    has_next: bool | None  # None when the answer does not say


class LevelFourClient:
    """Calls the spending breakdown endpoint; items come back as Arrow tables."""

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
            {"Authorization": f"Bearer {api_key}"},
            limiter_for(base_url, api_key, requests_per_minute),
            parse_error,
            retry=retry,
            timeout_seconds=timeout_seconds,
            secrets=(api_key,),
            stats=stats,
        )

    def breakdown(self, period: str, params: Mapping[str, Any]) -> BreakdownPage:
        """GET the breakdown of `period` (YYYY-MM); `params` adds format, page, page_size,
        sort_by."""
        return self.session.get(BREAKDOWN_PATH, {"period": period, **params}, _decode_breakdown)


def parse_error(status: int, headers: Mapping[str, str], text: str, endpoint: str) -> ApiError:
    """The typed error for a non-200 answer; a 422 names the parameter and the reason."""
    parameter, message = _detail(text)
    args = (VENDOR, endpoint, status, message or f"HTTP {status}")
    if status == 401:
        return AuthenticationError(*args)
    if status == 403:
        return ForbiddenError(*args)
    if status == 422:
        return RequestValidationError(*args, parameter=parameter)
    if status == 429:
        return RateLimitedError(*args, retry_after=retry_after_seconds(headers, message))
    if status >= 500 or status == 408:
        return ServerError(*args)
    return ApiError(*args)


def _detail(text: str) -> tuple[str | None, str | None]:
    """(parameter, one-line message) from a FastAPI `detail` body, or the raw text."""
    try:
        body = json.loads(text)
    except ValueError:
        return None, text.strip()[:200] or None
    detail = body.get("detail") if isinstance(body, dict) else None
    if isinstance(detail, list) and detail:
        return _validation_detail(detail)
    if isinstance(detail, str):
        return None, detail
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        return None, str(error.get("message") or error)
    return None, text.strip()[:200] or None


def _validation_detail(detail: list[Any]) -> tuple[str | None, str]:
    parts, first = [], None
    for entry in detail:
        if not isinstance(entry, dict):
            parts.append(str(entry))
            continue
        location = [str(p) for p in entry.get("loc", []) if p not in ("query", "header", "body")]
        name = ".".join(location) or "request"
        first = first or name
        reason = entry.get("msg", "invalid value")
        if "input" in entry and entry["input"] is not None and name != "authorization":
            reason += f" (got {entry['input']!r})"
        parts.append(f"{name}: {reason}")
    return first, "; ".join(parts)


def _decode_breakdown(body: bytes) -> BreakdownPage:
    document = read_document(body, BREAKDOWN_WIRE, VENDOR, BREAKDOWN_PATH)
    data = document.get("data")
    if data is None or not data.is_valid or not data["items"].is_valid:
        message = "the answer has no data.items list (its shape differs from the docs)"
        raise SchemaChangeError(VENDOR, BREAKDOWN_PATH, 200, message)
    pagination = (data["pagination"].as_py() if data["pagination"].is_valid else None) or {}
    return BreakdownPage(
        period=data["period"].as_py(),
        items=list_to_table(data["items"]),
        total_pages=pagination.get("total_pages"),
        total_items=pagination.get("total_items"),
        has_next=pagination.get("has_next"),
    )
