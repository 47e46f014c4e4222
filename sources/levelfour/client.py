"""The LevelFour REST client: Bearer auth, FastAPI-style errors, pacing."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from sources.levelfour.settings import BREAKDOWN_PATH, BREAKDOWN_WIRE, VENDOR
from sources.shared.arrow_json import list_to_table, read_document
from sources.shared.connection import Connection
from sources.shared.errors import (
    ApiError,
    RateLimitedError,
    RequestValidationError,
    SchemaChangeError,
    error_for,
)
from sources.shared.http import ApiSession
from sources.shared.progress import RequestStats
from sources.shared.retry import retry_after_seconds


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

    def __init__(self, connection: Connection, stats: RequestStats | None = None) -> None:
        auth = {"Authorization": f"Bearer {connection.api_key}"}
        self.session = ApiSession(VENDOR, connection, auth, parse_error, stats)

    def breakdown(self, period: str, params: Mapping[str, Any]) -> BreakdownPage:
        """GET the breakdown of `period` (YYYY-MM); `params` adds format, page, page_size,
        sort_by."""
        return self.session.get(BREAKDOWN_PATH, {"period": period, **params}, _decode_breakdown)


def parse_error(status: int, headers: Mapping[str, str], text: str, endpoint: str) -> ApiError:
    """The typed error for a non-200 answer; a 422 names the parameter and the reason."""
    parameter, message = _detail(text)
    error = error_for(VENDOR, endpoint, status, message)
    if isinstance(error, RequestValidationError):
        error.parameter = parameter
    if isinstance(error, RateLimitedError):
        error.retry_after = retry_after_seconds(headers, message)
    return error


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
