"""The StackSpend sandbox API, written from StackSpend's public API reference.

It serves the three documented read endpoints and the OpenTelemetry ingest
endpoint with the documented envelope, authentication, scopes, error codes,
validation and per-key rate limit, over deterministic virtual data
(see `sandbox.stackspend_data`). Knobs for tests, demos and benchmarks —
restatements, anomaly status moves, fault injection, rate limits, keys — are
methods here and, for a sandbox running in another process, admin endpoints
under `/_sandbox/stackspend/` (no auth; the server listens on loopback).

    with SandboxServer([StackSpendSandbox()]) as server:
        requests.get(server.url + LINE_ITEMS_PATH, headers={"X-API-Key": DEMO_KEY}, ...)
"""

from __future__ import annotations

import base64
import itertools
import json
import re
import threading
import urllib.parse
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from sandbox.amounts import AmountControls, AmountWriter
from sandbox.common import (
    CursorSigner,
    FaultInjector,
    FaultSettings,
    RequestLog,
    SandboxControls,
    SlidingWindowRateLimiter,
    as_int,
    as_list,
    as_str,
    check_rate_limit,
    damage,
    json_response,
    parse_day,
    parse_timestamp,
    read_json_object,
    to_json,
    utc_today,
)
from sandbox.http import Request, Response
from sandbox.stackspend_data import (
    ANOMALY_ORDERS,
    GROUP_BYS,
    RESTATEMENT_KINDS,
    SEVERITIES,
    STATUSES,
    AnomalyStore,
    LineItemStore,
)

LINE_ITEMS_PATH = "/api/v1/public/line-items"
ROLLUPS_PATH = "/api/v1/public/rollups/daily"
ANOMALIES_PATH = "/api/v1/public/anomalies"
OTEL_INGEST_PATH = "/api/v1/otel-ingest"
ADMIN_PREFIX = "/_sandbox/stackspend/"
DATA_PATHS = (LINE_ITEMS_PATH, ROLLUPS_PATH, ANOMALIES_PATH)

SCOPES: tuple[str, ...] = ("line_items:read", "rollups:read", "anomalies:read", "usage:write")
MONEY_FIELDS: tuple[str, ...] = ("net_amount_usd", "cost_usd", "actual_cost", "expected_cost")

DEMO_KEY = "ss_demo_key"
LINE_ITEMS_ONLY_KEY = "ss_demo_line_items_only"
NO_PLAN_KEY = "ss_demo_no_plan"
REVOKED_KEY = "ss_demo_revoked"
DEMO_KEYS: dict[str, str] = {
    DEMO_KEY: "every scope",
    LINE_ITEMS_ONLY_KEY: "line_items:read only (other endpoints answer INVALID_SCOPE)",
    NO_PLAN_KEY: "workspace without API access (PLAN_RESTRICTED)",
    REVOKED_KEY: "revoked (FORBIDDEN)",
}

PAGING_FAULTS: tuple[str | None, ...] = (None, "endless", "repeat", "trickle")
# How a key can be echoed, besides as sent: what the message shows in its place.
_KEY_SHOWN: dict[str, Callable[[str], str]] = {
    "url-encoded": lambda key: urllib.parse.quote(key, safe=""),
    "url-encoded-lower": lambda key: re.sub(
        "%[0-9A-F]{2}", lambda m: m.group().lower(), urllib.parse.quote(key, safe="")
    ),
    "url-encoded-path": lambda key: urllib.parse.quote(key),  # "/" left as it is
    "base64-bearer": lambda key: base64.b64encode(f"Bearer {key}".encode()).decode(),
    "html-unicode-escaped": lambda key: "".join(f"\\u{ord(c):04x}" for c in key),
}
KEY_ECHOES: tuple[str | None, ...] = (None, "raw", "json-escaped", "unicode-escaped", *_KEY_SHOWN)

DEFAULT_DAYS = 120
LINE_ITEMS_MAX_LIMIT = 1000
ANOMALIES_MAX_LIMIT = 500
DEFAULT_LIMIT = 50
DOCUMENTED_REQUESTS_PER_MINUTE = 60

_KEY_PATTERN = re.compile(r"[\x21-\x7e]+")
_BEARER_PATTERN = re.compile(r"(?i:bearer) +([^ ]+) *")
_SLUG_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


class ApiError(Exception):
    """An error answer: HTTP status, envelope `code` and `message`, extra headers."""

    def __init__(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}
        self.escape: str | None = None

    def response(self) -> Response:
        """The error in the documented envelope (with `escape`, its text JSON-escaped
        further than needed, as some servers do)."""
        payload = {"data": None, "error": {"code": self.code, "message": self.message}, "meta": {}}
        response = json_response(self.status, payload, self.headers)
        if self.escape == "html-unicode-escaped":
            page = (
                f"<html><body><h1>{self.status} {self.code}</h1><p>{self.message}</p></body></html>"
            )
            return Response(self.status, page.encode(), dict(self.headers), "text/html")
        if self.escape == "json-escaped":
            response.body = response.body.replace(b"/", b"\\/")
        elif self.escape == "unicode-escaped":
            text = json.dumps(self.message)
            escaped = "".join(f"\\u{ord(c):04x}" if c.isalnum() else c for c in self.message)
            response.body = response.body.replace(text.encode(), f'"{escaped}"'.encode())
        return response


def _validation(message: str) -> ApiError:
    return ApiError(422, "VALIDATION_ERROR", message)


def envelope(status: int, data: Any, meta: dict[str, Any] | None = None) -> Response:
    """A success answer in the documented envelope."""
    return json_response(status, {"data": data, "error": None, "meta": meta or {}})


@dataclass
class ApiKey:
    """A key's grants: its scopes, whether its workspace has API access, whether revoked."""

    scopes: frozenset[str]
    api_access: bool = True
    revoked: bool = False


@dataclass(frozen=True)
class _Route:
    method: str
    scope: str
    handler: Callable[[StackSpendSandbox, Request], Response]
    data: bool  # subject to fault injection


class StackSpendSandbox(SandboxControls, AmountControls):
    """A fake-but-faithful StackSpend API over deterministic virtual data.

    Args:
        seed: drives every generated value (line items, anomalies, faults).
        start_date, end_date: the days that hold data (default: the 120 days ending today, UTC).
        line_items_per_day: items per day before restatements.
        anomaly_count: anomalies generated over the data range.
        anomaly_order: "asc" (oldest first), "desc" or "unordered" (seeded shuffle).
        requests_per_minute: per-key limit over a sliding window (None: unlimited).
        rate_window_seconds: the window's length (60 as documented; shorter in tests).
        retry_after_header: whether 429 answers carry a Retry-After header.
        error_rate, invalid_json_rate, truncated_rate, slow_rate, slow_seconds: random faults
            on the data endpoints (probabilities per request; delay of a slow answer).
        fault_seed: seed of the fault draws (default: `seed`).
        cache_rows: how many pre-rendered line-item rows to keep in memory.
        amount_notation: how money values are written, "plain", "exponent" or "mixed"
            (see `sandbox.amounts`).
    """

    def __init__(
        self,
        *,
        seed: int = 0,
        start_date: date | None = None,
        end_date: date | None = None,
        line_items_per_day: int = 40,
        anomaly_count: int = 120,
        anomaly_order: str = "asc",
        requests_per_minute: int | None = None,
        rate_window_seconds: float = 60.0,
        retry_after_header: bool = True,
        error_rate: float = 0.0,
        invalid_json_rate: float = 0.0,
        truncated_rate: float = 0.0,
        slow_rate: float = 0.0,
        slow_seconds: float = 0.5,
        fault_seed: int | None = None,
        cache_rows: int = 200_000,
        amount_notation: str = "plain",
    ) -> None:
        end = end_date or utc_today()
        start = start_date or end - timedelta(days=DEFAULT_DAYS - 1)
        self.seed = seed
        self._lock = threading.Lock()
        self._line_items = LineItemStore(seed, start, end, line_items_per_day, cache_rows)
        self._anomalies = AnomalyStore.generate(seed, start, end, anomaly_count)
        self.anomaly_order = anomaly_order
        self._rate_limiter = SlidingWindowRateLimiter(
            check_rate_limit(requests_per_minute), rate_window_seconds
        )
        self.retry_after_header = retry_after_header
        rates = FaultSettings(
            error_rate, invalid_json_rate, truncated_rate, slow_rate, slow_seconds
        )
        self._faults = FaultInjector(rates, seed if fault_seed is None else fault_seed)
        self._cursors = CursorSigner()
        self._log = RequestLog()
        self._keys: dict[str, ApiKey] = {
            DEMO_KEY: ApiKey(frozenset(SCOPES)),
            LINE_ITEMS_ONLY_KEY: ApiKey(frozenset({"line_items:read"})),
            NO_PLAN_KEY: ApiKey(frozenset(SCOPES), api_access=False),
            REVOKED_KEY: ApiKey(frozenset(SCOPES), revoked=True),
        }
        self.otel_payloads = 0
        self._skews: dict[date, Decimal] = {}
        self._paging_fault: str | None = None
        self._key_echo: str | None = None
        self._fresh_cursors = itertools.count()
        self._restate_on_rollups: list[tuple[date, str]] = []
        self._amounts = AmountWriter(MONEY_FIELDS, amount_notation)

    # --- data range and ground truth ---------------------------------------

    @property
    def start_date(self) -> date:
        """First day holding data."""
        return self._line_items.start

    @property
    def end_date(self) -> date:
        """Last day holding data."""
        return self._line_items.end

    @property
    def line_items_per_day(self) -> int:
        """Items per day before restatements."""
        return self._line_items.per_day

    def line_items(
        self, start: date | str | None = None, end: date | str | None = None
    ) -> list[dict[str, Any]]:
        """The items the API currently lists for [start, end] (default: the data range).

        Amounts are Decimals, usage_date a `date`; ordered by usage_date, then id.
        """
        first, last = self._range(start, end)
        return self._line_items.items(first, last)

    def line_item_count(
        self, start: date | str | None = None, end: date | str | None = None
    ) -> int:
        """How many items the API currently lists for [start, end]."""
        first, last = self._range(start, end)
        return self._line_items.count(first, last)

    def daily_rollups(
        self,
        start: date | str | None = None,
        end: date | str | None = None,
        group_by: str = "provider",
    ) -> list[dict[str, Any]]:
        """The rollup rows the API currently answers (cost_usd Decimal, date a `date`)."""
        if group_by not in GROUP_BYS:
            raise ValueError(f"group_by must be one of {GROUP_BYS}")
        first, last = self._range(start, end)
        return self._rollups(first, last, group_by)

    def anomalies(self, since: datetime | str | None = None) -> list[dict[str, Any]]:
        """Every anomaly detected strictly after `since`, oldest first (no limit)."""
        after = parse_timestamp(since) if isinstance(since, str) else since
        return [a.as_dict() for a in self._anomalies.query(since=after)]

    def _range(self, start: date | str | None, end: date | str | None) -> tuple[date, date]:
        first = parse_day(start) if isinstance(start, str) else start or self.start_date
        last = parse_day(end) if isinstance(end, str) else end or self.end_date
        return first, last

    # --- knobs ---------------------------------------------------------------

    def restate(self, days: Iterable[date | str], kind: str = "amounts") -> list[date]:
        """Restate each day. Kind "amounts": amounts change, ~10% of items go, a few new
        ones come. Kind "services": ~10% of items move to another service of their
        provider, amounts unchanged (every provider total and the day's total stay)."""
        return self._line_items.restate(
            (parse_day(d) if isinstance(d, str) else d for d in days), kind
        )

    def restate_last(self, n_days: int, kind: str = "amounts") -> list[date]:
        """Restate the last `n_days` days of the data range (a restatement of `kind`)."""
        if n_days < 0:
            raise ValueError("n_days must be >= 0")
        first = max(self.start_date, self.end_date - timedelta(days=n_days - 1))
        days = [first + timedelta(days=i) for i in range((self.end_date - first).days + 1)]
        return self.restate(days if n_days else [], kind)

    def skew_rollups(self, day: date | str, amount: Decimal | str) -> None:
        """Make `day`'s rollups disagree with its line items by `amount` (USD): the first
        row of each group_by is off by that much, as if the API's aggregates were stale.
        A later `restate` of the day keeps the skew; `amount` 0 removes it."""
        moment = parse_day(day) if isinstance(day, str) else day
        with self._lock:
            self._skews[moment] = Decimal(amount)

    def restate_before_next_rollups(self, day: date | str, kind: str = "amounts") -> None:
        """Restate `day` (a restatement of `kind`, as `restate`) just before the next
        rollups request is answered: a restatement landing between a client's read of
        the day's line items and of its rollups."""
        moment = parse_day(day) if isinstance(day, str) else day
        if not self.start_date <= moment <= self.end_date:
            raise ValueError(f"{moment.isoformat()} is outside the sandbox's data range")
        if kind not in RESTATEMENT_KINDS:
            raise ValueError(f"kind must be one of {', '.join(RESTATEMENT_KINDS)}")
        with self._lock:
            self._restate_on_rollups.append((moment, kind))

    def day_versions(self) -> dict[date, int]:
        """Restated days and how many times each was restated."""
        return self._line_items.versions()

    @property
    def anomaly_order(self) -> str:
        """Order of the anomalies endpoint: "asc", "desc" or "unordered"."""
        return self._anomaly_order

    @anomaly_order.setter
    def anomaly_order(self, order: str) -> None:
        if order not in ANOMALY_ORDERS:
            raise ValueError(f"anomaly_order must be one of {ANOMALY_ORDERS}")
        self._anomaly_order = order

    def move_anomaly_statuses(self, count: int) -> list[str]:
        """Change the status of `count` anomalies (deterministically); their ids."""
        if count < 0:
            raise ValueError("count must be >= 0")
        return self._anomalies.move_statuses(count)

    def add_anomalies(
        self,
        n: int,
        at: datetime,
        provider_type: str | None = None,
        severity: str | None = None,
        status: str | None = None,
    ) -> list[str]:
        """Add `n` anomalies all detected at `at` (an aware datetime), with the given
        provider, severity and status (default: drawn); their ids."""
        if n < 0 or at.tzinfo is None:
            raise ValueError("n must be >= 0 and `at` timezone-aware")
        if severity not in (None, *SEVERITIES) or status not in (None, *STATUSES):
            raise ValueError(f"severity is one of {SEVERITIES}, status one of {STATUSES}")
        return self._anomalies.add(n, at.astimezone(UTC), provider_type, severity, status)

    # --- hostile behaviours the docs allow or a broken server shows --------------

    def set_paging_fault(self, mode: str | None) -> None:
        """Make line-item paging misbehave: "endless" answers every page with no rows,
        `has_more` true and a fresh `next_cursor`; "repeat" answers the first page's rows
        again and again with a fresh cursor; "trickle" the same with only its first row;
        None pages as documented."""
        if mode not in PAGING_FAULTS:
            raise ValueError(f"paging fault must be one of {PAGING_FAULTS}")
        self._paging_fault = mode

    def echo_key_in_errors(self, form: str | None) -> None:
        """Quote the caller's key in 401/403 messages, in `form`: "raw", "json-escaped"
        (`/` written `\\/` in the JSON body), "unicode-escaped" (every character
        `\\uXXXX`), "url-encoded" (upper-case hex), "url-encoded-lower", "url-encoded-path"
        (`/` not encoded), "base64-bearer" (base64 of `Bearer <key>`), "html-unicode-escaped"
        (an HTML body, not JSON, writing each character `\\uXXXX`); None: never (as
        documented)."""
        if form not in KEY_ECHOES:
            raise ValueError(f"key echo form must be one of {KEY_ECHOES}")
        self._key_echo = form

    def add_key(self, key: str, scopes: Iterable[str] = SCOPES, api_access: bool = True) -> None:
        """Accept `key` with `scopes`; `api_access=False` means a workspace without API plan."""
        granted = frozenset(scopes)
        if not _KEY_PATTERN.fullmatch(key) or not granted <= set(SCOPES):
            raise ValueError(f"a key is printable ASCII without spaces; scopes are among {SCOPES}")
        with self._lock:
            self._keys[key] = ApiKey(granted, api_access)

    def revoke_key(self, key: str) -> None:
        """Revoke a known key: it is then answered with 403 FORBIDDEN."""
        with self._lock:
            if key not in self._keys:
                raise KeyError(key)
            self._keys[key].revoked = True

    def set_rate_limit(
        self, requests_per_minute: int | None, retry_after_header: bool | None = None
    ) -> None:
        """Change the per-key limit (None: unlimited) and optionally the Retry-After header."""
        self._rate_limiter.set_limit(check_rate_limit(requests_per_minute))
        if retry_after_header is not None:
            self.retry_after_header = retry_after_header

    # --- HTTP ----------------------------------------------------------------

    def handle(self, request: Request) -> Response | None:
        """Answer a StackSpend API or admin request; None for any other path."""
        if request.path.startswith(ADMIN_PREFIX):
            return self._admin(request)
        route = _ROUTES.get(request.path)
        if route is None:
            if not request.path.startswith("/api/v1/public/"):
                return None
            response = ApiError(404, "NOT_FOUND", f"No endpoint at {request.path}.").response()
        else:
            try:
                response = self.write_amounts(self._serve(route, request))
            except ApiError as error:
                response = error.response()
        self._log.record(request, response.status)
        return response

    def _serve(self, route: _Route, request: Request) -> Response:
        if request.method != route.method:
            message = f"{request.path} accepts {route.method} only."
            raise ApiError(405, "METHOD_NOT_ALLOWED", message, {"Allow": route.method})
        key = self._api_key(request)
        try:
            self._authorize(key, route.scope)
        except ApiError as error:
            raise self._echoing(error, key) from None
        self._check_rate(key)
        fault = self._faults.draw() if route.data else None
        if fault is not None and fault.kind == "error":
            raise self._fault_error(fault.status, fault.retry_after)
        if fault is not None and fault.kind == "invalid_json":
            return damage(envelope(200, None), fault)
        if fault is None:
            return route.handler(self, request)
        try:
            response = route.handler(self, request)
        except ApiError as error:
            response = error.response()
        return damage(response, fault)

    def _authorize(self, key: str, scope: str) -> None:
        with self._lock:
            grant = self._keys.get(key)
        if grant is None:
            raise ApiError(401, "UNAUTHORIZED", "Invalid API key.")
        if grant.revoked:
            raise ApiError(403, "FORBIDDEN", "This API key has been revoked.")
        if not grant.api_access:
            message = "Your workspace is not on a plan that includes API access."
            raise ApiError(403, "PLAN_RESTRICTED", message)
        if scope not in grant.scopes:
            message = f"This API key does not have the required scope: {scope}"
            raise ApiError(403, "INVALID_SCOPE", message)

    def _echoing(self, error: ApiError, key: str) -> ApiError:
        """`error` quoting `key` as `echo_key_in_errors` asks (unchanged when it does not)."""
        if self._key_echo is None:
            return error
        shown = _KEY_SHOWN.get(self._key_echo, lambda same: same)(key)
        quoted = ApiError(error.status, error.code, f"{error.message} (key {shown})")
        quoted.escape = self._key_echo
        return quoted

    @staticmethod
    def _api_key(request: Request) -> str:
        """The key from X-API-Key (preferred) or `Authorization: Bearer`; 401 if absent or bad."""
        key = request.header("X-API-Key")
        if key is None:
            authorization = request.header("Authorization")
            if authorization is None:
                raise ApiError(401, "UNAUTHORIZED", "No API key provided.")
            match = _BEARER_PATTERN.fullmatch(authorization)
            key = match.group(1) if match else ""
        if not _KEY_PATTERN.fullmatch(key):
            raise ApiError(401, "UNAUTHORIZED", "The API key is malformed.")
        return key

    def _check_rate(self, key: str) -> None:
        retry_after = self._rate_limiter.acquire(key)
        if retry_after is not None:
            raise self._rate_limited(self._rate_limiter.limit or 0, retry_after)

    def _rate_limited(self, limit: int, retry_after: int) -> ApiError:
        message = (
            f"You have exceeded {limit} requests per minute. Retry after {retry_after} seconds."
        )
        headers = {"Retry-After": str(retry_after)} if self.retry_after_header else {}
        return ApiError(429, "RATE_LIMITED", message, headers)

    def _fault_error(self, status: int, retry_after: int) -> ApiError:
        if status == 429:
            limit = self._rate_limiter.limit or DOCUMENTED_REQUESTS_PER_MINUTE
            return self._rate_limited(limit, retry_after)
        message = "An unexpected error occurred. Please retry."
        return ApiError(status, "INTERNAL_ERROR", message)

    # --- endpoints -------------------------------------------------------------

    def _get_line_items(self, request: Request) -> Response:
        start, end = _date_range(request)
        limit = _limit(request, LINE_ITEMS_MAX_LIMIT)
        if self._paging_fault is not None:
            return self._faulty_page(start, end, limit)
        after = self._cursor_position(request, start, end)
        page = self._line_items.page(start, end, after, limit)
        next_cursor = None
        if page.has_more and page.last is not None:
            day, serial = page.last
            next_cursor = self._cursors.encode(
                {"s": start.isoformat(), "e": end.isoformat(), "d": day.isoformat(), "n": serial}
            )
        meta = to_json({"next_cursor": next_cursor, "has_more": page.has_more})
        body = '{"data":[' + ",".join(page.rows) + '],"error":null,"meta":' + meta + "}"
        return Response(status=200, body=body.encode())

    def _faulty_page(self, start: date, end: date, limit: int) -> Response:
        """A page under `set_paging_fault`: more is always promised, under a new cursor."""
        rows = self._line_items.page(start, end, None, limit).rows
        served = {"repeat": rows, "trickle": rows[:1]}.get(self._paging_fault or "", [])
        cursor = self._cursors.encode({"fault": next(self._fresh_cursors)})
        meta = to_json({"next_cursor": cursor, "has_more": True})
        body = '{"data":[' + ",".join(served) + '],"error":null,"meta":' + meta + "}"
        return Response(status=200, body=body.encode())

    def _cursor_position(self, request: Request, start: date, end: date) -> tuple[date, int] | None:
        cursor = request.param("cursor")
        if cursor is None:
            return None
        try:
            payload = self._cursors.decode(cursor)
            if payload["s"] != start.isoformat() or payload["e"] != end.isoformat():
                raise ValueError("cursor belongs to another query")
            return parse_day(payload["d"]), int(payload["n"])
        except (ValueError, KeyError, TypeError) as exc:
            message = "cursor is not valid for this query; pass meta.next_cursor unchanged."
            raise _validation(message) from exc

    def _get_rollups(self, request: Request) -> Response:
        start, end = _date_range(request)
        group_by = request.param("group_by")
        if group_by is None:
            raise _validation("group_by is required.")
        if group_by not in GROUP_BYS:
            raise _validation("group_by must be one of: provider, service, category.")
        with self._lock:
            due, self._restate_on_rollups = self._restate_on_rollups, []
        for day, kind in due:
            self.restate([day], kind)
        return envelope(200, self._rollups(start, end, group_by))

    def _rollups(self, start: date, end: date, group_by: str) -> list[dict[str, Any]]:
        """The rollup rows answered for [start, end], skews applied."""
        rows = self._line_items.rollups(start, end, group_by)
        with self._lock:
            skews = dict(self._skews)
        skewed: set[date] = set()
        for row in rows:
            amount = skews.get(row["date"])
            if amount and row["date"] not in skewed:
                row["cost_usd"] += amount
                skewed.add(row["date"])
        return rows

    def _get_anomalies(self, request: Request) -> Response:
        limit = _limit(request, ANOMALIES_MAX_LIMIT)
        since = _since(request)
        provider_type = request.param("provider_type")
        if provider_type is not None and not _SLUG_PATTERN.fullmatch(provider_type):
            raise _validation("provider_type must be a provider slug, e.g. openai or aws.")
        severity = _choice(request, "severity", SEVERITIES)
        status = _choice(request, "status", STATUSES)
        found = self._anomalies.query(since, provider_type, severity, status, self.anomaly_order)
        answer = found[:limit]
        if self.anomaly_order == "newest-asc":
            answer.reverse()
        return envelope(200, [a.as_dict() for a in answer])

    def _post_otel_ingest(self, request: Request) -> Response:
        with self._lock:
            self.otel_payloads += 1
        return envelope(202, {"accepted": True})

    # --- admin -------------------------------------------------------------------

    def _admin(self, request: Request) -> Response:
        action = request.path[len(ADMIN_PREFIX) :]
        handler = _ADMIN.get((request.method, action))
        if handler is None:
            message = f"No admin action {request.method} {request.path}."
            return ApiError(404, "NOT_FOUND", message).response()
        try:
            body = read_json_object(request) if request.method == "POST" else {}
            return envelope(200, handler(self, body))
        except (ValueError, TypeError, KeyError) as exc:
            return _validation(str(exc)).response()

    def _admin_restate(self, body: dict[str, Any]) -> dict[str, Any]:
        kind = as_str(body.get("kind", "amounts"), "kind")
        if "dates" in body:
            dates = [as_str(d, "dates[]") for d in as_list(body["dates"], "dates")]
            days = self.restate(dates, kind)
        else:
            days = self.restate_last(as_int(body.get("days"), "days"), kind)
        return {"restated": [d.isoformat() for d in days], "kind": kind}

    def _admin_skew(self, body: dict[str, Any]) -> dict[str, Any]:
        day, amount = as_str(body.get("date"), "date"), as_str(body.get("amount"), "amount")
        try:
            self.skew_rollups(day, Decimal(amount))
        except InvalidOperation:
            raise ValueError('amount must be a decimal number, e.g. "12.34"') from None
        return {"date": day, "amount": amount}

    def _admin_restate_before_rollups(self, body: dict[str, Any]) -> dict[str, Any]:
        day, kind = as_str(body.get("date"), "date"), as_str(body.get("kind", "amounts"), "kind")
        self.restate_before_next_rollups(day, kind)
        return {"date": day, "kind": kind}

    def _admin_paging_fault(self, body: dict[str, Any]) -> dict[str, Any]:
        self.set_paging_fault(body.get("mode"))
        return {"mode": body.get("mode")}

    def _admin_echo_key(self, body: dict[str, Any]) -> dict[str, Any]:
        self.echo_key_in_errors(body.get("form"))
        return {"form": body.get("form")}

    def _admin_move(self, body: dict[str, Any]) -> dict[str, Any]:
        return {"moved": self.move_anomaly_statuses(as_int(body.get("count"), "count"))}

    def _admin_add_anomalies(self, body: dict[str, Any]) -> dict[str, Any]:
        at = parse_timestamp(as_str(body.get("at"), "at"))
        count = as_int(body.get("count"), "count")
        fixed = {k: body.get(k) for k in ("provider_type", "severity", "status")}
        return {"added": self.add_anomalies(count, at, **fixed)}

    def _admin_order(self, body: dict[str, Any]) -> dict[str, Any]:
        self.anomaly_order = as_str(body.get("order"), "order")
        return {"order": self.anomaly_order}

    def _admin_rate_limit(self, body: dict[str, Any]) -> dict[str, Any]:
        if "requests_per_minute" not in body:
            raise ValueError("requests_per_minute is required (an integer >= 1, or null)")
        limit = body["requests_per_minute"]
        header = body.get("retry_after_header")
        self.set_rate_limit(None if limit is None else as_int(limit, "requests_per_minute"), header)
        return {
            "requests_per_minute": self.requests_per_minute,
            "retry_after_header": self.retry_after_header,
        }

    def _admin_add_key(self, body: dict[str, Any]) -> dict[str, Any]:
        key = as_str(body.get("key"), "key")
        scopes = [
            as_str(s, "scopes[]") for s in as_list(body.get("scopes", list(SCOPES)), "scopes")
        ]
        api_access = bool(body.get("api_access", True))
        self.add_key(key, scopes, api_access)
        return {"key": key, "scopes": sorted(scopes), "api_access": api_access}

    def _admin_info(self, body: dict[str, Any]) -> dict[str, Any]:
        return {
            "seed": self.seed,
            "start_date": self.start_date.isoformat(),
            "end_date": self.end_date.isoformat(),
            "line_items_per_day": self.line_items_per_day,
            "restated": {d.isoformat(): v for d, v in self.day_versions().items()},
            "anomaly_order": self.anomaly_order,
            "requests_per_minute": self.requests_per_minute,
            "demo_keys": dict(DEMO_KEYS),
        }


# --- parameter parsing (each failure names the parameter and the rule) ----------


def _required_day(request: Request, name: str) -> date:
    value = request.param(name)
    if value is None:
        raise _validation(f"{name} is required.")
    try:
        return parse_day(value)
    except ValueError as exc:
        raise _validation(f"{name} must be a real date in YYYY-MM-DD format.") from exc


def _date_range(request: Request) -> tuple[date, date]:
    start = _required_day(request, "start_date")
    end = _required_day(request, "end_date")
    if start > end:
        raise _validation("start_date must be on or before end_date.")
    return start, end


def _limit(request: Request, maximum: int) -> int:
    value = request.param("limit")
    if value is None:
        return DEFAULT_LIMIT
    if not re.fullmatch(r"[0-9]+", value) or not 1 <= int(value) <= maximum:
        raise _validation(f"limit must be an integer between 1 and {maximum}.")
    return int(value)


def _since(request: Request) -> datetime | None:
    value = request.param("since")
    if value is None:
        return None
    try:
        return parse_timestamp(value)
    except ValueError as exc:
        message = "since must be an ISO 8601 timestamp, e.g. 2025-01-16T08:23:00Z."
        raise _validation(message) from exc


def _choice(request: Request, name: str, allowed: tuple[str, ...]) -> str | None:
    value = request.param(name)
    if value is not None and value not in allowed:
        raise _validation(f"{name} must be one of: {', '.join(allowed)}.")
    return value


_ROUTES: dict[str, _Route] = {
    LINE_ITEMS_PATH: _Route("GET", "line_items:read", StackSpendSandbox._get_line_items, True),
    ROLLUPS_PATH: _Route("GET", "rollups:read", StackSpendSandbox._get_rollups, True),
    ANOMALIES_PATH: _Route("GET", "anomalies:read", StackSpendSandbox._get_anomalies, True),
    OTEL_INGEST_PATH: _Route("POST", "usage:write", StackSpendSandbox._post_otel_ingest, False),
}

_ADMIN: dict[tuple[str, str], Callable[[StackSpendSandbox, dict[str, Any]], dict[str, Any]]] = {
    ("POST", "restate"): StackSpendSandbox._admin_restate,
    ("POST", "rollups/skew"): StackSpendSandbox._admin_skew,
    ("POST", "rollups/restate-before"): StackSpendSandbox._admin_restate_before_rollups,
    ("POST", "paging-fault"): StackSpendSandbox._admin_paging_fault,
    ("POST", "echo-key"): StackSpendSandbox._admin_echo_key,
    ("POST", "anomalies/move"): StackSpendSandbox._admin_move,
    ("POST", "anomalies/add"): StackSpendSandbox._admin_add_anomalies,
    ("POST", "anomalies/order"): StackSpendSandbox._admin_order,
    ("POST", "faults"): StackSpendSandbox._admin_faults,
    ("POST", "rate-limit"): StackSpendSandbox._admin_rate_limit,
    ("POST", "keys"): StackSpendSandbox._admin_add_key,
    ("POST", "keys/revoke"): StackSpendSandbox._admin_revoke_key,
    ("GET", "stats"): StackSpendSandbox._admin_stats,
    ("POST", "reset-requests"): StackSpendSandbox._admin_reset_requests,
    ("GET", "info"): StackSpendSandbox._admin_info,
    ("POST", "amount-notation"): StackSpendSandbox._admin_amount_notation,
    ("POST", "amount-override"): StackSpendSandbox._admin_amount_override,
}

__all__ = [
    "ADMIN_PREFIX",
    "ANOMALIES_PATH",
    "DATA_PATHS",
    "DEMO_KEY",
    "DEMO_KEYS",
    "LINE_ITEMS_ONLY_KEY",
    "LINE_ITEMS_PATH",
    "MONEY_FIELDS",
    "NO_PLAN_KEY",
    "OTEL_INGEST_PATH",
    "REVOKED_KEY",
    "ROLLUPS_PATH",
    "SCOPES",
    "ApiError",
    "StackSpendSandbox",
]
