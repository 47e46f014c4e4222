"""Building blocks shared by the sandbox APIs.

Nothing here knows a vendor's envelope or endpoints: the request log, the
sliding-window rate limiter, fault injection, opaque signed cursors, exact
JSON rendering of money and strict date parsing are the same for every
sandbox API, so each lives here once.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import math
import random
import re
import secrets
import threading
import time
from collections import Counter, OrderedDict, deque
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, Generic, TypeVar

from sandbox.http import Request, Response

K = TypeVar("K")
V = TypeVar("V")

_DAY_PATTERN = re.compile(r"\d{4}-\d{2}-\d{2}")
_SECRET_PARAMS = frozenset({"api_key", "apikey", "key", "token", "access_token"})


# --- dates -----------------------------------------------------------------


def utc_today() -> date:
    """Today's date in UTC."""
    return datetime.now(UTC).date()


def parse_day(text: str) -> date:
    """A real calendar day written exactly as YYYY-MM-DD; ValueError otherwise."""
    if not _DAY_PATTERN.fullmatch(text):
        raise ValueError(f"not a YYYY-MM-DD date: {text!r}")
    return date.fromisoformat(text)


def parse_timestamp(text: str) -> datetime:
    """An ISO 8601 timestamp as an aware UTC datetime; ValueError otherwise.

    Accepts `Z` or a numeric offset, fractional seconds, and a bare
    YYYY-MM-DD day (midnight UTC). A timestamp without an offset is read as UTC.
    """
    if _DAY_PATTERN.fullmatch(text):
        return datetime.combine(parse_day(text), datetime.min.time(), UTC)
    if len(text) < 16 or text[10] not in "Tt ":
        raise ValueError(f"not an ISO 8601 timestamp: {text!r}")
    value = datetime.fromisoformat(text)
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def format_timestamp(value: datetime) -> str:
    """An aware datetime as `YYYY-MM-DDTHH:MM:SSZ` in UTC."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def days_between(start: date, end: date) -> list[date]:
    """Every day from `start` to `end`, both inclusive."""
    return [start + timedelta(days=offset) for offset in range((end - start).days + 1)]


# --- exact JSON --------------------------------------------------------------


def format_micros(micros: int) -> str:
    """An amount held as integer millionths, as a fixed-point JSON number.

    Trailing zeros are dropped down to two decimals: 12480000 -> "12.48",
    1234567 -> "1.234567", -5000000 -> "-5.00". Never an exponent.
    """
    if micros < 0:
        return "-" + format_micros(-micros)
    whole, fraction = divmod(micros, 1_000_000)
    if fraction % 10_000 == 0:
        return f"{whole}.{fraction // 10_000:02d}"
    return f"{whole}.{f'{fraction:06d}'.rstrip('0')}"


def format_decimal(value: Decimal) -> str:
    """A Decimal as a fixed-point JSON number, exactly as held (no exponent)."""
    return format(value, "f")


def to_json(value: Any) -> str:
    """Compact JSON in which Decimals are written exactly, digit for digit.

    Handles dict, list/tuple, str, bool, int, None and Decimal; dates and
    datetimes are written as ISO strings (datetimes in UTC with `Z`).
    """
    if isinstance(value, Decimal):
        return format_decimal(value)
    if isinstance(value, dict):
        items = (f"{json.dumps(str(k))}:{to_json(v)}" for k, v in value.items())
        return "{" + ",".join(items) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(to_json(item) for item in value) + "]"
    if isinstance(value, datetime):
        return json.dumps(format_timestamp(value))
    if isinstance(value, date):
        return json.dumps(value.isoformat())
    return json.dumps(value)


def json_response(status: int, payload: Any, headers: Mapping[str, str] | None = None) -> Response:
    """A JSON response whose Decimals are rendered exactly."""
    return Response(status=status, body=to_json(payload).encode(), headers=dict(headers or {}))


def read_json_object(request: Request) -> dict[str, Any]:
    """The request body as a JSON object; ValueError when it is anything else."""
    try:
        body = request.json()
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError("the request body must be a JSON object") from exc
    if not isinstance(body, dict):
        raise ValueError("the request body must be a JSON object")
    return body


# --- determinism -------------------------------------------------------------


def seeded_rng(*parts: object) -> random.Random:
    """A Random seeded from `parts`; the same parts give the same stream in every process."""
    return random.Random(":".join(str(part) for part in parts))


# --- request log -------------------------------------------------------------


@dataclass(frozen=True)
class LoggedRequest:
    """One request as the log keeps it (credentials never included)."""

    time: float
    method: str
    path: str
    params: dict[str, list[str]]
    status: int


class RequestLog:
    """Thread-safe record of the requests an API answered.

    Counts by (path, status) are exact for the log's whole life; the detailed
    entries keep only the newest `max_entries`.
    """

    def __init__(self, max_entries: int = 100_000) -> None:
        self._lock = threading.Lock()
        self._entries: deque[LoggedRequest] = deque(maxlen=max_entries)
        self._counts: Counter[tuple[str, int]] = Counter()

    def record(self, request: Request, status: int) -> None:
        """Remember that `request` was answered with `status`."""
        params = {k: list(v) for k, v in request.query.items() if k.lower() not in _SECRET_PARAMS}
        entry = LoggedRequest(time.time(), request.method, request.path, params, status)
        with self._lock:
            self._entries.append(entry)
            self._counts[(request.path, status)] += 1

    def count(self, path: str | None = None, status: int | None = None) -> int:
        """How many requests matched `path` and `status` (None matches any)."""
        with self._lock:
            return sum(
                n
                for (p, s), n in self._counts.items()
                if (path is None or p == path) and (status is None or s == status)
            )

    def entries(self) -> list[LoggedRequest]:
        """The kept entries, oldest first."""
        with self._lock:
            return list(self._entries)

    def stats(self) -> dict[str, dict[str, int]]:
        """Counts as {path: {status: n}}, status written as a string."""
        with self._lock:
            result: dict[str, dict[str, int]] = {}
            for (path, status), n in sorted(self._counts.items()):
                result.setdefault(path, {})[str(status)] = n
            return result

    def reset(self) -> None:
        """Forget every request."""
        with self._lock:
            self._entries.clear()
            self._counts.clear()


# --- rate limiting -------------------------------------------------------------


class SlidingWindowRateLimiter:
    """At most `limit` accepted requests per key in any `window_seconds` window.

    `limit=None` means unlimited. Refused requests do not use up the window.
    """

    def __init__(
        self,
        limit: int | None,
        window_seconds: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit = limit
        self.window_seconds = window_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._accepted: dict[str, deque[float]] = {}

    def acquire(self, key: str) -> int | None:
        """Accept a request for `key` (None) or return whole seconds until a slot frees."""
        if self.limit is None:
            return None
        now = self._clock()
        with self._lock:
            times = self._accepted.setdefault(key, deque())
            while times and times[0] <= now - self.window_seconds:
                times.popleft()
            if len(times) < self.limit:
                times.append(now)
                return None
            return max(1, math.ceil(times[0] + self.window_seconds - now))

    def set_limit(self, limit: int | None) -> None:
        """Change the limit; the requests already accepted still count."""
        with self._lock:
            self.limit = limit

    def reset(self) -> None:
        """Forget every accepted request."""
        with self._lock:
            self._accepted.clear()


# --- fault injection -------------------------------------------------------------


@dataclass(frozen=True)
class Fault:
    """What to do to one request.

    `kind` is "error" (answer `status` instead: 429 or 5xx), "invalid_json"
    (200 with a body that is not JSON), "truncated" (200 whose JSON is cut;
    `cut_connection` says whether the connection drops mid-body or the body
    is just short with a matching Content-Length) or "slow" (answer after
    `delay_seconds`).
    """

    kind: str
    status: int = 200
    retry_after: int = 1
    cut_connection: bool = False
    delay_seconds: float = 0.0


@dataclass
class FaultSettings:
    """Random fault rates (each a probability per request) and the slow delay."""

    error_rate: float = 0.0
    invalid_json_rate: float = 0.0
    truncated_rate: float = 0.0
    slow_rate: float = 0.0
    slow_seconds: float = 0.5

    def validate(self) -> None:
        """ValueError unless every rate is in [0, 1], their sum at most 1, the delay >= 0."""
        rates = [self.error_rate, self.invalid_json_rate, self.truncated_rate, self.slow_rate]
        if any(not 0.0 <= rate <= 1.0 for rate in rates) or sum(rates) > 1.0:
            raise ValueError("fault rates must be between 0 and 1 and add up to at most 1")
        if self.slow_seconds < 0:
            raise ValueError("slow_seconds must be >= 0")


SCRIPTED_STATUSES = frozenset({429, 500, 502, 503, 504})


class FaultInjector:
    """Decides, deterministically from a seed, which requests fail and how.

    Scripted failures (`fail_next`) come first, in order; then each request
    draws once from the seeded generator against the cumulative rates.
    """

    def __init__(self, settings: FaultSettings | None = None, seed: int = 0) -> None:
        self._lock = threading.Lock()
        self._settings = settings or FaultSettings()
        self._settings.validate()
        self._seed = seed
        self._rng = seeded_rng("faults", seed)
        self._truncations = 0
        self._scripted: deque[Fault] = deque()

    @property
    def settings(self) -> FaultSettings:
        """A copy of the current settings."""
        with self._lock:
            return replace(self._settings)

    @property
    def seed(self) -> int:
        """The seed the random draws started from."""
        return self._seed

    def configure(self, seed: int | None = None, **rates: float) -> FaultSettings:
        """Change some settings (restarting the draws when `seed` is given)."""
        with self._lock:
            settings = replace(self._settings, **rates)
            settings.validate()
            self._settings = settings
            if seed is not None:
                self._seed = seed
                self._rng = seeded_rng("faults", seed)
                self._truncations = 0
            return replace(settings)

    def fail_next(self, count: int, status: int = 500, retry_after: int = 1) -> None:
        """Make the next `count` requests fail with `status` (429 or 5xx)."""
        if status not in SCRIPTED_STATUSES:
            raise ValueError(f"status must be one of {sorted(SCRIPTED_STATUSES)}")
        if count < 0 or retry_after < 0:
            raise ValueError("count and retry_after must be >= 0")
        with self._lock:
            self._scripted.extend(
                Fault("error", status=status, retry_after=retry_after) for _ in range(count)
            )

    def pending(self) -> int:
        """How many scripted failures are still queued."""
        with self._lock:
            return len(self._scripted)

    def clear(self) -> None:
        """Drop queued scripted failures and zero every rate."""
        with self._lock:
            self._scripted.clear()
            self._settings = replace(
                self._settings,
                error_rate=0.0,
                invalid_json_rate=0.0,
                truncated_rate=0.0,
                slow_rate=0.0,
            )

    def draw(self) -> Fault | None:
        """The fault for the next request, or None to answer it normally."""
        with self._lock:
            if self._scripted:
                return self._scripted.popleft()
            s = self._settings
            if not (s.error_rate or s.invalid_json_rate or s.truncated_rate or s.slow_rate):
                return None
            roll = self._rng.random()
            if roll < s.error_rate:
                return Fault("error", status=500)
            roll -= s.error_rate
            if roll < s.invalid_json_rate:
                return Fault("invalid_json")
            roll -= s.invalid_json_rate
            if roll < s.truncated_rate:
                self._truncations += 1
                return Fault("truncated", cut_connection=self._truncations % 2 == 1)
            roll -= s.truncated_rate
            if roll < s.slow_rate:
                return Fault("slow", delay_seconds=s.slow_seconds)
            return None


NOT_JSON_BODY = b"<html><head><title>502</title></head><body>upstream hiccup</body></html>"


def damage(response: Response, fault: Fault) -> Response:
    """Apply a body-level fault ("invalid_json", "truncated", "slow") to a good response."""
    if fault.kind == "invalid_json":
        return replace(response, body=NOT_JSON_BODY, truncate_to=None)
    if fault.kind == "truncated":
        half = max(1, len(response.body) // 2)
        if fault.cut_connection:
            return replace(response, truncate_to=half)
        return replace(response, body=response.body[:half])
    if fault.kind == "slow":
        return replace(response, delay_seconds=fault.delay_seconds)
    return response


# --- opaque cursors -------------------------------------------------------------


class CursorSigner:
    """Opaque pagination cursors: URL-safe base64 of HMAC-signed compact JSON.

    A cursor decodes only on the signer that issued it, and only unchanged.
    """

    _SIGNATURE_BYTES = 16

    def __init__(self, secret: bytes | None = None) -> None:
        self._secret = secret or secrets.token_bytes(32)

    def encode(self, payload: Mapping[str, Any]) -> str:
        """A cursor string carrying `payload` (JSON-safe values)."""
        raw = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
        token = raw + self._sign(raw)
        return base64.urlsafe_b64encode(token).rstrip(b"=").decode()

    def decode(self, cursor: str) -> dict[str, Any]:
        """The payload of a cursor this signer issued; ValueError otherwise."""
        try:
            token = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        except (binascii.Error, ValueError) as exc:
            raise ValueError("cursor is not valid base64") from exc
        raw, signature = token[: -self._SIGNATURE_BYTES], token[-self._SIGNATURE_BYTES :]
        if len(token) <= self._SIGNATURE_BYTES or not hmac.compare_digest(
            signature, self._sign(raw)
        ):
            raise ValueError("cursor signature does not match")
        payload = json.loads(raw)
        if not isinstance(payload, dict):
            raise ValueError("cursor payload is not an object")
        return payload

    def _sign(self, raw: bytes) -> bytes:
        return hmac.new(self._secret, raw, hashlib.sha256).digest()[: self._SIGNATURE_BYTES]


# --- caching -------------------------------------------------------------


class SizedLRU(Generic[K, V]):
    """A thread-safe LRU cache bounded by the total size of its values.

    The newest entry is always kept, even when it alone exceeds `budget`.
    """

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self._lock = threading.Lock()
        self._entries: OrderedDict[K, tuple[V, int]] = OrderedDict()
        self._total = 0

    def get_or_build(self, key: K, build: Callable[[], tuple[V, int]]) -> V:
        """The value cached for `key`; `build` (run outside the lock) returns (value, size)."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                self._entries.move_to_end(key)
                return entry[0]
        value, size = build()
        with self._lock:
            if key not in self._entries:
                self._entries[key] = (value, size)
                self._total += size
            while self._total > self.budget and len(self._entries) > 1:
                _, (_, dropped) = self._entries.popitem(last=False)
                self._total -= dropped
        return value

    def clear(self) -> None:
        """Drop every entry."""
        with self._lock:
            self._entries.clear()
            self._total = 0


class SandboxControls:
    """Knobs and the request log every sandbox API shares.

    Subclasses set `_rate_limiter` (SlidingWindowRateLimiter), `_faults`
    (FaultInjector) and `_log` (RequestLog).
    """

    _rate_limiter: SlidingWindowRateLimiter
    _faults: FaultInjector
    _log: RequestLog

    @property
    def requests_per_minute(self) -> int | None:
        """The per-key limit (None: unlimited)."""
        return self._rate_limiter.limit

    def configure_faults(self, seed: int | None = None, **settings: float) -> FaultSettings:
        """Change fault rates / slow_seconds; a `seed` restarts the draws."""
        return self._faults.configure(seed, **settings)

    def fail_next(self, n: int, status: int = 500, retry_after: int = 1) -> None:
        """Make the next `n` data requests (after auth) fail with `status`: 5xx or 429."""
        self._faults.fail_next(n, status, retry_after)

    def clear_faults(self) -> None:
        """No more faults: rates zeroed, scripted failures dropped."""
        self._faults.clear()

    @property
    def requests(self) -> list[LoggedRequest]:
        """The API requests answered so far (admin requests are not logged)."""
        return self._log.entries()

    def request_count(self, path: str | None = None, status: int | None = None) -> int:
        """How many API requests matched `path` and `status` (None matches any)."""
        return self._log.count(path, status)

    def request_stats(self) -> dict[str, dict[str, int]]:
        """Request counts as {path: {status: n}}."""
        return self._log.stats()

    def reset_requests(self) -> None:
        """Forget the logged requests (the rate limiter's window is kept)."""
        self._log.reset()

    # --- admin endpoints both APIs answer alike -------------------------------

    def _admin_faults(self, body: dict[str, Any]) -> dict[str, Any]:
        if body.get("clear"):
            self.clear_faults()
        names = set(asdict(FaultSettings()))
        rates = {name: float(body[name]) for name in names if body.get(name) is not None}
        seed = body.get("seed")
        settings = self.configure_faults(None if seed is None else as_int(seed, "seed"), **rates)
        if body.get("fail_next"):
            status = as_int(body.get("fail_status", 500), "fail_status")
            retry_after = as_int(body.get("retry_after", 1), "retry_after")
            self.fail_next(as_int(body["fail_next"], "fail_next"), status, retry_after)
        return {**asdict(settings), "seed": self._faults.seed, "pending": self._faults.pending()}

    def _admin_reset_requests(self, body: dict[str, Any]) -> dict[str, Any]:
        self.reset_requests()
        return {"reset": True}

    def _admin_revoke_key(self, body: dict[str, Any]) -> dict[str, Any]:
        key = as_str(body.get("key"), "key")
        try:
            self.revoke_key(key)
        except KeyError as exc:
            raise ValueError(f"unknown key {key!r}") from exc
        return {"key": key, "revoked": True}

    def _admin_stats(self, body: dict[str, Any]) -> dict[str, Any]:
        return {"requests": self.request_stats(), "total": self.request_count()}


def check_rate_limit(requests_per_minute: int | None) -> int | None:
    """A per-key limit: an integer >= 1, or None for unlimited."""
    if requests_per_minute is not None and (
        isinstance(requests_per_minute, bool)
        or not isinstance(requests_per_minute, int)
        or requests_per_minute < 1
    ):
        raise ValueError("requests_per_minute must be an integer >= 1 or None")
    return requests_per_minute


def as_int(value: Any, name: str) -> int:
    """`value` if it is an integer (not a bool), else ValueError naming `name`."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be an integer")
    return value


def as_str(value: Any, name: str) -> str:
    """`value` if it is a string, else ValueError naming `name`."""
    if not isinstance(value, str):
        raise ValueError(f"{name} must be a string")
    return value


def as_list(value: Any, name: str) -> list[Any]:
    """`value` if it is a list, else ValueError naming `name`."""
    if not isinstance(value, list):
        raise ValueError(f"{name} must be a list")
    return value
