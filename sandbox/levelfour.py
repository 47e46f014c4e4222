"""The LevelFour sandbox API, written from LevelFour's spending breakdown reference.

It serves `GET /api/v1/spending/breakdown` in its four formats with the
documented query constraints, Bearer authentication with `l4_live_` /
`l4_test_` keys and a per-key rate limit, over deterministic virtual data
(see `sandbox.levelfour_data`). Errors are answered the way a FastAPI service
answers them: `{"detail": "..."}`, and for invalid query parameters a 422
whose `detail` lists every invalid parameter in pydantic's words. Knobs for
tests, demos and benchmarks — restatements, raw-format behaviour, fault
injection, rate limits, keys — are methods here and, for a sandbox running in
another process, admin endpoints under `/_sandbox/levelfour/` (no auth; the
server listens on loopback).

    with SandboxServer([LevelFourSandbox()]) as server:
        requests.get(server.url + BREAKDOWN_PATH, headers={"Authorization": f"Bearer {DEMO_KEY}"})

Every JSON success is `{"success": true, "timestamp": "<now>", "data": {...}}`:

- `table`: `data` is `{"period", "items", "pagination"}`; the items billed in
  the period (within `start`/`end`), sorted by `sort_by`/`sort_order`, then
  by the item's identity, `page_size` per page.
- `raw`: the same shape with every item of the whole period in identity
  order, all on one page — or, when the sandbox is set to page raw answers,
  `raw_page_size` per page selected by `page`, `has_next` true while more remain.
- `csv`: `text/csv`, a header row of the item fields, then every item of
  the whole period sorted as `table` sorts them; null is an empty field.
- `chart`: stacked-bar data, `data` is `{"period", "granularity", "group_by",
  "groups", "items", "pagination"}`: `groups` are the provider ids (or
  account ids) with cost in range, sorted; each item is one bar,
  `{"date": "YYYY-MM-DD", "total": n, "costs": {group: n, ...}}` holding
  every group (0.00 where it had none) — one per billed day (`daily`) or one
  for the month dated its first day (`monthly`); all on one page.

Where the reference is silent, the sandbox chooses:

- A day lies within `start`/`end` when it falls between their UTC dates,
  both inclusive; the range only narrows the period, and an empty range
  answers no items. `raw` and `csv` ignore it, as documented.
- `cost` sums the item's billed days: a whole month, or up to today (UTC) in
  today's month. `previous_cost` is the item's cost over the whole previous
  month (0 when it was not billed then); `change_percentage` is
  (cost - previous_cost) / previous_cost * 100 rounded half away from zero to
  2 decimals, null when `previous_cost` is 0. Items with no cost in range are left out.
- Sorting by `change_percentage` puts nulls last in either order.
- A repeated query parameter counts by its last value.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from sandbox.common import (
    FaultInjector,
    FaultSettings,
    RequestLog,
    SandboxControls,
    SlidingWindowRateLimiter,
    as_int,
    as_str,
    check_rate_limit,
    damage,
    format_decimal,
    format_micros,
    format_timestamp,
    json_response,
    parse_timestamp,
    read_json_object,
    to_json,
    utc_today,
)
from sandbox.http import Request, Response
from sandbox.levelfour_data import (
    GROUP_BYS,
    PROVIDERS,
    BreakdownRow,
    BreakdownStore,
    format_period,
    natural_order,
    parse_period,
)

API_PREFIX = "/api/v1/spending/"
BREAKDOWN_PATH = "/api/v1/spending/breakdown"
ADMIN_PREFIX = "/_sandbox/levelfour/"

KEY_PREFIXES: tuple[str, ...] = ("l4_live_", "l4_test_")
DEMO_KEY = "l4_test_demo_key"
LIVE_DEMO_KEY = "l4_live_demo_key"
REVOKED_KEY = "l4_test_demo_revoked"
DEMO_KEYS: dict[str, str] = {
    DEMO_KEY: "test key",
    LIVE_DEMO_KEY: "live key (same data)",
    REVOKED_KEY: "revoked (403 API key revoked)",
}

FORMAT_PATTERN = "^(table|chart|csv|raw)$"
GRANULARITY_PATTERN = "^(daily|monthly)$"
SORT_BY_PATTERN = "^(cost|service|region|account_id|change_percentage)$"
SORT_ORDER_PATTERN = "^(asc|desc)$"
PERIOD_PATTERN = r"^[1-9]\d{3}-(0[1-9]|1[0-2])$"
DEFAULT_PAGE_SIZE = 10
MAX_PAGE_SIZE = 100
DEFAULT_MONTHS = 6
DEFAULT_ITEMS_PER_MONTH = 60
RAW_NOT_AVAILABLE = "raw format is not available for this API key"

ITEM_FIELDS: tuple[str, ...] = (
    "service",
    "provider_id",
    "environment",
    "region",
    "account_id",
    "tag_key",
    "tag_value",
    "cost",
    "previous_cost",
    "change_percentage",
)

_KEY_PATTERN = re.compile(r"l4_(?:live|test)_[A-Za-z0-9_-]+")
_INTEGER_PATTERN = re.compile(r"\s*[+-]?\d+\s*")
_GATEWAY_PAGE = "<html><head><title>{0}</title></head><body><h1>{0}</h1></body></html>"
_GATEWAY_REASONS = {
    502: "502 Bad Gateway",
    503: "503 Service Unavailable",
    504: "504 Gateway Timeout",
}


class ApiError(Exception):
    """An error answer: HTTP status, FastAPI `detail` (text or a list of errors), headers."""

    def __init__(
        self, status: int, detail: str | list[dict[str, Any]], headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(detail if isinstance(detail, str) else "invalid query parameters")
        self.status = status
        self.detail = detail
        self.headers = headers or {}

    def response(self) -> Response:
        """The error as `{"detail": ...}`."""
        return json_response(self.status, {"detail": self.detail}, self.headers)


def success(data: dict[str, Any]) -> Response:
    """A 200 in the documented envelope, stamped with the current time."""
    now = format_timestamp(datetime.now(UTC))
    return json_response(200, {"success": True, "timestamp": now, "data": data})


def items_response(period: date, rows: list[BreakdownRow], page_info: dict[str, Any]) -> Response:
    """A 200 in the documented envelope listing `rows`, with pre-rendered item texts."""
    now = format_timestamp(datetime.now(UTC))
    items = ",".join(row.render() for row in rows)
    body = (
        f'{{"success":true,"timestamp":"{now}","data":{{"period":"{format_period(period)}"'
        f',"items":[{items}],"pagination":{to_json(page_info)}}}}}'
    )
    return Response(200, body.encode())


def pagination(total_items: int, page: int, page_size: int) -> dict[str, Any]:
    """The documented pagination block for `page` of `total_items` at `page_size` per page."""
    total_pages = math.ceil(total_items / page_size) if page_size else 0
    return {
        "total_items": total_items,
        "total_pages": total_pages,
        "current_page": page,
        "page_size": page_size,
        "has_next": page < total_pages,
        "has_previous": page > 1,
    }


@dataclass
class ApiKey:
    """A key the sandbox knows, and whether it has been revoked."""

    revoked: bool = False


@dataclass(frozen=True)
class BreakdownQuery:
    """The validated query of one breakdown request."""

    format: str
    period: date
    provider_id: str | None
    granularity: str
    group_by: str
    start: date | None
    end: date | None
    page: int
    page_size: int
    sort_by: str
    sort_order: str


class LevelFourSandbox(SandboxControls):
    """A fake-but-faithful LevelFour spending breakdown API over deterministic virtual data.

    Args:
        seed: drives every generated value (items, daily costs, restatements, faults).
        current_period: the newest month holding data, "YYYY-MM" (default: this UTC month).
        months: how many months hold data, ending with `current_period`.
        items_per_month: items per month before restatements.
        requests_per_minute: per-key limit over a sliding window (None: unlimited).
        rate_window_seconds: the window's length (60; shorter in tests).
        raw_enabled: whether `format=raw` is served (else 422 on `format`).
        raw_page_size: None serves raw as one page; an integer pages it by `page`.
        error_rate, invalid_json_rate, truncated_rate, slow_rate, slow_seconds: random faults
            (probabilities per request; delay of a slow answer).
        fault_seed: seed of the fault draws (default: `seed`).
        cache_items: how many generated items to keep in memory.
    """

    def __init__(
        self,
        *,
        seed: int = 0,
        current_period: str | None = None,
        months: int = DEFAULT_MONTHS,
        items_per_month: int = DEFAULT_ITEMS_PER_MONTH,
        requests_per_minute: int | None = None,
        rate_window_seconds: float = 60.0,
        raw_enabled: bool = True,
        raw_page_size: int | None = None,
        error_rate: float = 0.0,
        invalid_json_rate: float = 0.0,
        truncated_rate: float = 0.0,
        slow_rate: float = 0.0,
        slow_seconds: float = 0.5,
        fault_seed: int | None = None,
        cache_items: int = 1_000_000,
    ) -> None:
        newest = parse_period(current_period) if current_period else utc_today()
        self.seed = seed
        self._lock = threading.Lock()
        self._store = BreakdownStore(seed, newest, months, items_per_month, cache_items=cache_items)
        self.set_raw(raw_enabled, raw_page_size)
        self._rate_limiter = SlidingWindowRateLimiter(
            check_rate_limit(requests_per_minute), rate_window_seconds
        )
        rates = FaultSettings(
            error_rate, invalid_json_rate, truncated_rate, slow_rate, slow_seconds
        )
        self._faults = FaultInjector(rates, seed if fault_seed is None else fault_seed)
        self._log = RequestLog()
        self._drift: dict[str, Any] = {}
        self._keys: dict[str, ApiKey] = {
            DEMO_KEY: ApiKey(),
            LIVE_DEMO_KEY: ApiKey(),
            REVOKED_KEY: ApiKey(revoked=True),
        }

    # --- data range and ground truth ---------------------------------------

    @property
    def current_period(self) -> str:
        """The newest month holding data, and the default `period`."""
        return format_period(self._store.current_period)

    @property
    def items_per_month(self) -> int:
        """Items per month before restatements."""
        return self._store.items_per_month

    def periods(self) -> list[str]:
        """The months holding data, oldest first, as YYYY-MM."""
        return [format_period(p) for p in self._store.periods()]

    def breakdown(
        self,
        period: str | None = None,
        *,
        provider_id: str | None = None,
        start: date | str | None = None,
        end: date | str | None = None,
    ) -> list[dict[str, Any]]:
        """The items the API currently reports for `period` (default: the current one).

        Each dict holds `period` and the item fields (cost and previous_cost
        Decimal, change_percentage Decimal or None), in identity order.
        `start`/`end` (days or ISO 8601 timestamps) narrow the days summed.
        """
        month = parse_period(period or self.current_period)
        rows = self._store.rows(month, _day(start), _day(end), provider_id)
        return [{"period": format_period(month), **row.as_dict()} for row in rows]

    # --- knobs ---------------------------------------------------------------

    def restate_period(self, period: str) -> str:
        """Restate a month: costs move, ~10% of items go, a few new ones come. Repeatable."""
        self._store.restate(parse_period(period))
        return period

    def restate_current_month(self) -> str:
        """Restate the current month; its YYYY-MM."""
        return self.restate_period(self.current_period)

    def period_versions(self) -> dict[str, int]:
        """Restated months and how many times each was restated."""
        return {format_period(p): v for p, v in self._store.versions().items()}

    @property
    def raw_enabled(self) -> bool:
        """Whether `format=raw` is served."""
        return self._raw_settings[0]

    @property
    def raw_page_size(self) -> int | None:
        """Records per raw page (None: every record on one page)."""
        return self._raw_settings[1]

    def drift_field(self, name: str, value: Any) -> None:
        """Serve every item's field `name` as `value` (any JSON value, e.g. "12.48 USD"),
        as a changed API would, in the raw and table formats; `clear_drift` undoes it."""
        if name not in ITEM_FIELDS:
            raise ValueError(f"field must be one of {ITEM_FIELDS}")
        self._drift[name] = value

    def clear_drift(self) -> None:
        """Serve every field as documented again."""
        self._drift.clear()

    def set_raw(self, enabled: bool, page_size: int | None = None) -> None:
        """Serve `format=raw` or refuse it; page it `page_size` per page (None: one page)."""
        if page_size is not None and (
            isinstance(page_size, bool) or not isinstance(page_size, int) or page_size < 1
        ):
            raise ValueError("raw page_size must be an integer >= 1 or None")
        self._raw_settings = (bool(enabled), page_size)

    def add_key(self, key: str) -> None:
        """Accept `key` (it must start with l4_live_ or l4_test_)."""
        if not _KEY_PATTERN.fullmatch(key):
            raise ValueError(f"a key is {' or '.join(KEY_PREFIXES)} then letters, digits, _ or -")
        with self._lock:
            self._keys[key] = ApiKey()

    def revoke_key(self, key: str) -> None:
        """Revoke a known key: it is then answered with 403."""
        with self._lock:
            if key not in self._keys:
                raise KeyError(key)
            self._keys[key].revoked = True

    def set_rate_limit(self, requests_per_minute: int | None) -> None:
        """Change the per-key limit (None: unlimited)."""
        self._rate_limiter.set_limit(check_rate_limit(requests_per_minute))

    # --- HTTP ----------------------------------------------------------------

    def handle(self, request: Request) -> Response | None:
        """Answer a LevelFour API or admin request; None for any other path."""
        if request.path.startswith(ADMIN_PREFIX):
            return self._admin(request)
        if not request.path.startswith(API_PREFIX):
            return None
        try:
            response = self._serve(request)
        except ApiError as error:
            response = error.response()
        self._log.record(request, response.status)
        return response

    def _serve(self, request: Request) -> Response:
        if request.path != BREAKDOWN_PATH:
            raise ApiError(404, "Not Found")
        if request.method != "GET":
            raise ApiError(405, "Method Not Allowed", {"Allow": "GET"})
        key = _bearer_key(request)
        self._authorize(key)
        self._check_rate(key)
        fault = self._faults.draw()
        if fault is not None and fault.kind == "error":
            return self._fault_error(fault.status, fault.retry_after)
        if fault is not None and fault.kind == "invalid_json":
            return damage(success({}), fault)
        if fault is None:
            return self._breakdown(request)
        try:
            response = self._breakdown(request)
        except ApiError as error:
            response = error.response()
        return damage(response, fault)

    def _authorize(self, key: str) -> None:
        with self._lock:
            grant = self._keys.get(key)
        if grant is None:
            raise ApiError(401, "Invalid API key")
        if grant.revoked:
            raise ApiError(403, "API key revoked")

    def _check_rate(self, key: str) -> None:
        retry_after = self._rate_limiter.acquire(key)
        if retry_after is not None:
            raise _rate_limited(retry_after)

    @staticmethod
    def _fault_error(status: int, retry_after: int) -> Response:
        if status == 429:
            return _rate_limited(retry_after).response()
        if status == 500:
            plain = "text/plain; charset=utf-8"
            return Response(500, b"Internal Server Error", content_type=plain)
        page = _GATEWAY_PAGE.format(_GATEWAY_REASONS[status]).encode()
        return Response(status, page, content_type="text/html")

    # --- the breakdown, per format ----------------------------------------------

    def _breakdown(self, request: Request) -> Response:
        query = _parse_query(request, self._store.current_period)
        if query.format == "raw" and not self.raw_enabled:
            error = {"type": "value_error", "loc": ["query", "format"]}
            raise ApiError(422, [{**error, "msg": RAW_NOT_AVAILABLE, "input": "raw"}])
        response = _FORMATS[query.format](self, query)
        if self._drift and query.format in ("raw", "table"):
            response.body = _drifted(response.body, self._drift)
        return response

    def _table(self, query: BreakdownQuery) -> Response:
        rows = self._store.rows(query.period, query.start, query.end, query.provider_id)
        rows = sort_rows(rows, query.sort_by, query.sort_order)
        first = (query.page - 1) * query.page_size
        page_info = pagination(len(rows), query.page, query.page_size)
        return items_response(query.period, rows[first : first + query.page_size], page_info)

    def _raw(self, query: BreakdownQuery) -> Response:
        rows = self._store.rows(query.period, provider_id=query.provider_id)
        page_size = self.raw_page_size
        if page_size is None:
            return items_response(query.period, rows, pagination(len(rows), 1, len(rows)))
        on_page = rows[(query.page - 1) * page_size : query.page * page_size]
        return items_response(query.period, on_page, pagination(len(rows), query.page, page_size))

    def _csv(self, query: BreakdownQuery) -> Response:
        rows = self._store.rows(query.period, provider_id=query.provider_id)
        text = io.StringIO()
        writer = csv.writer(text, lineterminator="\r\n")
        writer.writerow(ITEM_FIELDS)
        for row in sort_rows(rows, query.sort_by, query.sort_order):
            writer.writerow(_csv_field(value) for value in row.as_dict().values())
        filename = f"levelfour-spending-breakdown-{format_period(query.period)}.csv"
        return Response(
            200,
            text.getvalue().encode(),
            headers={"Content-Disposition": f'attachment; filename="{filename}"'},
            content_type="text/csv; charset=utf-8",
        )

    def _chart(self, query: BreakdownQuery) -> Response:
        days, groups = self._store.daily_totals(
            query.period, query.start, query.end, query.provider_id, query.group_by
        )
        if not groups:
            buckets: list[tuple[date, dict[str, int]]] = []
        elif query.granularity == "daily":
            buckets = [(day, {g: c[i] for g, c in groups.items()}) for i, day in enumerate(days)]
        else:
            buckets = [(query.period, {g: sum(c) for g, c in groups.items()})]
        items = [
            {
                "date": day,
                "total": _money(sum(costs.values())),
                "costs": {group: _money(cost) for group, cost in costs.items()},
            }
            for day, costs in buckets
        ]
        return success(
            {
                "period": format_period(query.period),
                "granularity": query.granularity,
                "group_by": query.group_by,
                "groups": list(groups),
                "items": items,
                "pagination": pagination(len(items), 1, len(items)),
            }
        )

    # --- admin -------------------------------------------------------------------

    def _admin(self, request: Request) -> Response:
        action = request.path[len(ADMIN_PREFIX) :]
        handler = _ADMIN.get((request.method, action))
        if handler is None:
            return ApiError(404, f"No admin action {request.method} {request.path}.").response()
        try:
            body = read_json_object(request) if request.method == "POST" else {}
            return json_response(200, {"success": True, "data": handler(self, body)})
        except (ValueError, TypeError, KeyError) as exc:
            return ApiError(422, str(exc)).response()

    def _admin_restate(self, body: dict[str, Any]) -> dict[str, Any]:
        period = body.get("period")
        if period is None:
            restated = self.restate_current_month()
        else:
            restated = self.restate_period(as_str(period, "period"))
        return {"restated": restated, "version": self.period_versions()[restated]}

    def _admin_drift(self, body: dict[str, Any]) -> dict[str, Any]:
        if body.get("clear"):
            self.clear_drift()
        else:
            self.drift_field(as_str(body.get("field"), "field"), body.get("value"))
        return {"drift": dict(self._drift)}

    def _admin_rate_limit(self, body: dict[str, Any]) -> dict[str, Any]:
        if "requests_per_minute" not in body:
            raise ValueError("requests_per_minute is required (an integer >= 1, or null)")
        limit = body["requests_per_minute"]
        self.set_rate_limit(None if limit is None else as_int(limit, "requests_per_minute"))
        return {"requests_per_minute": self.requests_per_minute}

    def _admin_add_key(self, body: dict[str, Any]) -> dict[str, Any]:
        key = as_str(body.get("key"), "key")
        self.add_key(key)
        return {"key": key}

    def _admin_raw(self, body: dict[str, Any]) -> dict[str, Any]:
        enabled = body.get("enabled", self.raw_enabled)
        if not isinstance(enabled, bool):
            raise ValueError("enabled must be true or false")
        page_size = body.get("page_size", self.raw_page_size)
        self.set_raw(enabled, None if page_size is None else as_int(page_size, "page_size"))
        return {"enabled": self.raw_enabled, "page_size": self.raw_page_size}

    def _admin_info(self, body: dict[str, Any]) -> dict[str, Any]:
        return {
            "seed": self.seed,
            "current_period": self.current_period,
            "periods": self.periods(),
            "items_per_month": self.items_per_month,
            "restated": self.period_versions(),
            "requests_per_minute": self.requests_per_minute,
            "raw": {"enabled": self.raw_enabled, "page_size": self.raw_page_size},
            "demo_keys": dict(DEMO_KEYS),
        }


# --- sorting and rendering ---------------------------------------------------------


def _drifted(body: bytes, drift: dict[str, Any]) -> bytes:
    """A breakdown body with every item's fields in `drift` replaced."""
    document = json.loads(body, parse_float=Decimal)
    for item in document["data"]["items"]:
        item.update(drift)
    return to_json(document).encode()


def sort_rows(rows: list[BreakdownRow], sort_by: str, sort_order: str) -> list[BreakdownRow]:
    """`rows` by `sort_by` in `sort_order`, ties in identity order; null changes last."""
    ordered = sorted(rows, key=lambda row: natural_order(row.key))
    descending = sort_order == "desc"
    if sort_by == "change_percentage":
        known = [row for row in ordered if row.previous_cost]
        known.sort(key=lambda row: row.change_percentage or 0, reverse=descending)
        return known + [row for row in ordered if not row.previous_cost]
    field: Callable[[BreakdownRow], Any] = {
        "cost": lambda row: row.cost,
        "service": lambda row: row.key.service,
        "region": lambda row: row.key.region,
        "account_id": lambda row: row.key.account_id,
    }[sort_by]
    ordered.sort(key=field, reverse=descending)  # stable: ties keep identity order
    return ordered


def _money(micros: int) -> Decimal:
    return Decimal(format_micros(micros))


def _csv_field(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return format_decimal(value)
    return str(value)


_FORMATS: dict[str, Callable[[LevelFourSandbox, BreakdownQuery], Response]] = {
    "table": LevelFourSandbox._table,
    "raw": LevelFourSandbox._raw,
    "csv": LevelFourSandbox._csv,
    "chart": LevelFourSandbox._chart,
}


# --- authentication and query parsing (FastAPI's and pydantic's words) ---------------


def _bearer_key(request: Request) -> str:
    """The key from `Authorization: Bearer <key>`; 401 when absent or malformed."""
    authorization = request.header("Authorization")
    scheme, _, credentials = (authorization or "").partition(" ")
    challenge = {"WWW-Authenticate": "Bearer"}
    if not (scheme and credentials):
        raise ApiError(401, "Not authenticated", challenge)
    if scheme.lower() != "bearer":
        raise ApiError(401, "Invalid authentication credentials", challenge)
    if not _KEY_PATTERN.fullmatch(credentials):
        raise ApiError(401, "Invalid API key format")
    return credentials


def _rate_limited(retry_after: int) -> ApiError:
    detail = f"Rate limit exceeded. Retry after {retry_after} seconds."
    return ApiError(429, detail, {"Retry-After": str(retry_after)})


class _QueryReader:
    """Reads query parameters, collecting every validation error instead of stopping."""

    def __init__(self, request: Request) -> None:
        self._query = request.query
        self.errors: list[dict[str, Any]] = []

    def _value(self, name: str) -> str | None:
        values = self._query.get(name)
        return values[-1] if values else None

    def _fail(self, name: str, kind: str, msg: str, value: str, ctx: dict[str, Any] | None) -> None:
        error: dict[str, Any] = {"type": kind, "loc": ["query", name], "msg": msg, "input": value}
        if ctx is not None:
            error["ctx"] = ctx
        self.errors.append(error)

    def pattern(self, name: str, pattern: str) -> str | None:
        value = self._value(name)
        if value is None:
            return None
        if re.fullmatch(pattern.removeprefix("^").removesuffix("$"), value) is None:
            message = f"String should match pattern '{pattern}'"
            self._fail(name, "string_pattern_mismatch", message, value, {"pattern": pattern})
            return None
        return value

    def month(self, name: str) -> date | None:
        value = self.pattern(name, PERIOD_PATTERN)
        return None if value is None else parse_period(value)

    def literal(self, name: str, allowed: tuple[str, ...]) -> str | None:
        value = self._value(name)
        if value is None or value in allowed:
            return value
        quoted = [f"'{option}'" for option in allowed]
        expected = ", ".join(quoted[:-1]) + f" or {quoted[-1]}" if len(quoted) > 1 else quoted[0]
        message = f"Input should be {expected}"
        self._fail(name, "literal_error", message, value, {"expected": expected})
        return None

    def integer(self, name: str, default: int, ge: int, le: int | None = None) -> int:
        value = self._value(name)
        if value is None:
            return default
        if not _INTEGER_PATTERN.fullmatch(value):
            message = "Input should be a valid integer, unable to parse string as an integer"
            self._fail(name, "int_parsing", message, value, None)
            return default
        number = int(value)
        if number < ge:
            message = f"Input should be greater than or equal to {ge}"
            self._fail(name, "greater_than_equal", message, value, {"ge": ge})
            return default
        if le is not None and number > le:
            message = f"Input should be less than or equal to {le}"
            self._fail(name, "less_than_equal", message, value, {"le": le})
            return default
        return number

    def timestamp(self, name: str) -> date | None:
        value = self._value(name)
        if value is None:
            return None
        try:
            return parse_timestamp(value).date()
        except ValueError:
            reason = "input is not an ISO 8601 date or date-time"
            message = f"Input should be a valid datetime, {reason}"
            self._fail(name, "datetime_parsing", message, value, {"error": reason})
            return None


def _parse_query(request: Request, default_period: date) -> BreakdownQuery:
    """The breakdown query, or a 422 listing every invalid parameter in documented order."""
    reader = _QueryReader(request)
    query_format = reader.pattern("format", FORMAT_PATTERN) or "table"
    period = reader.month("period")
    provider_id = reader.literal("provider_id", PROVIDERS)
    granularity = reader.pattern("granularity", GRANULARITY_PATTERN) or "daily"
    group_by = reader.literal("group_by", GROUP_BYS) or "provider"
    start, end = reader.timestamp("start"), reader.timestamp("end")
    page = reader.integer("page", 1, ge=1)
    page_size = reader.integer("page_size", DEFAULT_PAGE_SIZE, ge=1, le=MAX_PAGE_SIZE)
    sort_by = reader.pattern("sort_by", SORT_BY_PATTERN) or "cost"
    sort_order = reader.pattern("sort_order", SORT_ORDER_PATTERN) or "desc"
    if reader.errors:
        raise ApiError(422, reader.errors)
    return BreakdownQuery(
        query_format,
        period or default_period,
        provider_id,
        granularity,
        group_by,
        start,
        end,
        page,
        page_size,
        sort_by,
        sort_order,
    )


def _day(value: date | str | None) -> date | None:
    if isinstance(value, str):
        return parse_timestamp(value).date()
    return value


_ADMIN: dict[tuple[str, str], Callable[[LevelFourSandbox, dict[str, Any]], dict[str, Any]]] = {
    ("POST", "restate"): LevelFourSandbox._admin_restate,
    ("POST", "drift"): LevelFourSandbox._admin_drift,
    ("POST", "faults"): LevelFourSandbox._admin_faults,
    ("POST", "rate-limit"): LevelFourSandbox._admin_rate_limit,
    ("POST", "keys"): LevelFourSandbox._admin_add_key,
    ("POST", "keys/revoke"): LevelFourSandbox._admin_revoke_key,
    ("POST", "raw"): LevelFourSandbox._admin_raw,
    ("GET", "stats"): LevelFourSandbox._admin_stats,
    ("POST", "reset-requests"): LevelFourSandbox._admin_reset_requests,
    ("GET", "info"): LevelFourSandbox._admin_info,
}

__all__ = [
    "ADMIN_PREFIX",
    "API_PREFIX",
    "BREAKDOWN_PATH",
    "DEMO_KEY",
    "DEMO_KEYS",
    "ITEM_FIELDS",
    "KEY_PREFIXES",
    "LIVE_DEMO_KEY",
    "REVOKED_KEY",
    "ApiError",
    "LevelFourSandbox",
]
