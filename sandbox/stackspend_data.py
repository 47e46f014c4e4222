"""The StackSpend sandbox's data: virtual line items, exact rollups, anomalies.

Line items are never stored as one big list. Each day's items are computed on
demand from (seed, day, version): version 0 is the day as first billed, and
each restatement derives the next version from the previous one (amounts
change, about 10% of items disappear, a few new ones appear; or, a restatement
of kind "services", about 10% of items move to another service of their
provider, every amount and the provider totals as they were). Serving keeps
only a bounded LRU of pre-rendered JSON rows per (day, version), so millions
of items cost no more memory than a few days' worth.

Amounts are integers of millionths of a dollar until they are rendered, so
every sum is exact.
"""

from __future__ import annotations

import functools
import itertools
import sys
import threading
from array import array
from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, NamedTuple

from sandbox.common import (
    SizedLRU,
    days_between,
    format_micros,
    seeded_rng,
    to_json,
)


class Service(NamedTuple):
    """One billable service in the catalogue, with its typical per-item cost range."""

    provider_type: str
    name: str
    category: str
    weight: int
    min_usd: float
    max_usd: float


CATALOG: tuple[Service, ...] = (
    Service("openai", "gpt-4o", "ai_inference", 10, 0.05, 60),
    Service("openai", "gpt-4o-mini", "ai_inference", 8, 0.01, 8),
    Service("openai", "o3-mini", "ai_inference", 4, 0.05, 25),
    Service("openai", "text-embedding-3-large", "ai_inference", 4, 0.01, 3),
    Service("openai", "dall-e-3", "ai_inference", 2, 0.04, 12),
    Service("anthropic", "claude-sonnet", "ai_inference", 9, 0.05, 50),
    Service("anthropic", "claude-opus", "ai_inference", 3, 0.2, 120),
    Service("anthropic", "claude-haiku", "ai_inference", 5, 0.01, 6),
    Service("aws", "ec2", "compute", 10, 0.5, 300),
    Service("aws", "s3", "storage", 7, 0.02, 40),
    Service("aws", "rds", "database", 5, 1, 150),
    Service("aws", "lambda", "compute", 5, 0.01, 15),
    Service("aws", "cloudfront", "networking", 3, 0.1, 30),
    Service("aws", "dynamodb", "database", 3, 0.1, 40),
    Service("aws", "athena", "analytics", 2, 0.05, 25),
    Service("aws", "data-transfer", "networking", 3, 0.05, 20),
    Service("gcp", "compute-engine", "compute", 6, 0.5, 200),
    Service("gcp", "cloud-storage", "storage", 4, 0.02, 25),
    Service("gcp", "bigquery", "analytics", 5, 0.1, 90),
    Service("gcp", "cloud-sql", "database", 3, 1, 80),
    Service("gcp", "vertex-ai", "ai_inference", 3, 0.1, 60),
    Service("gcp", "cloud-run", "compute", 3, 0.05, 20),
    Service("azure", "virtual-machines", "compute", 5, 0.5, 220),
    Service("azure", "blob-storage", "storage", 3, 0.02, 20),
    Service("azure", "sql-database", "database", 2, 1, 90),
    Service("azure", "azure-openai", "ai_inference", 3, 0.05, 45),
    Service("azure", "bandwidth", "networking", 2, 0.05, 15),
)
PROVIDERS: tuple[str, ...] = ("openai", "anthropic", "aws", "gcp", "azure")
CATEGORIES: tuple[str, ...] = (
    "ai_inference",
    "analytics",
    "compute",
    "database",
    "networking",
    "storage",
)
CATEGORY_OF_SERVICE: dict[str, str] = {s.name: s.category for s in CATALOG}
GROUP_BYS: tuple[str, ...] = ("provider", "service", "category")

_PROJECTS = (
    "proj_3k9x2a",
    "proj_7fq1md",
    "proj_a81zc4",
    "proj_b5r0te",
    "proj_c2wv9h",
    "proj_d6ns3j",
    "proj_k4pl8q",
    "proj_m9ty2u",
    "proj_r1ge7w",
    "proj_x0bj5n",
)
_EMAILS = (
    "alice@example.com",
    "bob@example.com",
    "carol@example.com",
    "dan@example.com",
    "erin@example.com",
    "frank@example.com",
    "grace@example.com",
    "heidi@example.com",
    "ivan@example.com",
    "judy@example.com",
    "mallory@example.com",
    "oscar@example.com",
)
# Per provider: share of items without a user, and currencies billed in.
_NULL_EMAIL_SHARE = {"openai": 0.15, "anthropic": 0.15, "aws": 0.6, "gcp": 0.6, "azure": 0.6}
_CURRENCIES = {
    "openai": (("USD", 1.0),),
    "anthropic": (("USD", 1.0),),
    "aws": (("USD", 1.0),),
    "gcp": (("USD", 0.8), ("EUR", 0.2)),
    "azure": (("USD", 0.6), ("EUR", 0.25), ("GBP", 0.15)),
}
_TAILS_PER_PROVIDER = 256
_CREDIT_PER_1024 = 31  # about 3% of amounts are credits (negative)
_REMOVED_PER_1000 = 100  # a restatement drops about 10% of a day's items
_MOVED_PER_1000 = 100  # a "services" restatement moves about 10% of them
RESTATEMENT_KINDS: tuple[str, ...] = ("amounts", "services")


class Tail(NamedTuple):
    """The fields of a line item after its amount."""

    currency_original: str
    project_id: str
    user_email: str | None


def _build_tails() -> tuple[tuple[Tail, ...], tuple[str, ...]]:
    rng = seeded_rng("stackspend", "tails")
    tails: list[Tail] = []
    for provider in PROVIDERS:
        currencies, weights = zip(*_CURRENCIES[provider], strict=True)
        for _ in range(_TAILS_PER_PROVIDER):
            currency = rng.choices(currencies, weights)[0]
            email = None if rng.random() < _NULL_EMAIL_SHARE[provider] else rng.choice(_EMAILS)
            tails.append(Tail(currency, rng.choice(_PROJECTS), email))
    rendered = tuple(
        f',"currency_original":"{t.currency_original}","project_id":"{t.project_id}"'
        f',"user_email":{to_json(t.user_email)}}}'
        for t in tails
    )
    return tuple(tails), rendered


_TAILS, _TAIL_JSON = _build_tails()
# Per catalogue service: the other services of its provider.
_SIBLINGS = tuple(
    tuple(j for j, o in enumerate(CATALOG) if o.provider_type == s.provider_type and o != s)
    for s in CATALOG
)
_TAIL_BASE = tuple(PROVIDERS.index(s.provider_type) * _TAILS_PER_PROVIDER for s in CATALOG)
_AMOUNT_BITS = 11  # 2048 distinct amounts per service


@functools.cache
def _amount_table() -> tuple[tuple[int, ...], tuple[str, ...]]:
    """Per service, 2048 amounts (millionths) and their JSON texts, built on first use.

    Amounts are skewed towards the low end of the service's range; a quarter
    are whole cents and about 3% are credits (negative). Rendering them once
    here keeps serving fast.
    """
    micros: list[int] = []
    for service in CATALOG:
        low = round(service.min_usd * 1_000_000)
        span = round((service.max_usd - service.min_usd) * 1_000_000)
        for k in range(1 << _AMOUNT_BITS):
            scatter = (k * 2654435761) >> 7
            u = (k << 5) | (scatter & 31)  # 16 bits
            amount = low + (span * u * u >> 32)
            if k % 4 == 0:
                amount -= amount % 10_000
            micros.append(-amount if (scatter >> 5) & 1023 < _CREDIT_PER_1024 else amount)
    return tuple(micros), tuple(format_micros(m) for m in micros)


@functools.cache
def _service_picker() -> tuple[int, ...]:
    """65536 slots, each a service's index shifted past the amount bits, in weight proportion."""
    total = sum(s.weight for s in CATALOG)
    bounds = list(itertools.accumulate(s.weight * 65536 // total for s in CATALOG))
    return tuple(
        min(bisect_right(bounds, slot), len(CATALOG) - 1) << _AMOUNT_BITS for slot in range(65536)
    )


class _SerialTexts:
    """Zero-padded serial numbers as text, rendered once and shared by every day."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._texts: list[str] = []

    def upto(self, count: int) -> list[str]:
        """A list whose item n is serial n's text, for every n < count."""
        with self._lock:
            if len(self._texts) < count:
                self._texts.extend(f"{n:08d}" for n in range(len(self._texts), count))
            return self._texts


_SERIAL_TEXTS = _SerialTexts()


# --- one day's line items ------------------------------------------------------


@dataclass
class DayModel:
    """One day's line items in one version, as parallel columns sorted by serial."""

    serials: list[int]
    services: list[int]  # index into CATALOG
    micros: list[int]  # net_amount_usd in millionths
    amounts: list[str]  # net_amount_usd as JSON text
    tails: list[int]  # index into the tail table
    next_serial: int

    @classmethod
    def empty(cls, next_serial: int = 0) -> DayModel:
        """A day without items."""
        return cls([], [], [], [], [], next_serial)

    def append(self, serial: int, service: int, micros: int, amount: str, tail: int) -> None:
        """Add one item after the others."""
        self.serials.append(serial)
        self.services.append(service)
        self.micros.append(micros)
        self.amounts.append(amount)
        self.tails.append(tail)


def _draw(rng: Any, first_serial: int, count: int) -> DayModel:
    """`count` new items numbered from `first_serial`, from 40 random bits each.

    Of each item's 32-bit word, bits 0-15 pick the service and 16-26 its
    amount; its random byte picks currency, project and user.
    """
    amount_micros, amount_text = _amount_table()
    pick, mask = _service_picker(), (1 << _AMOUNT_BITS) - 1
    words = array("I", rng.randbytes(4 * count))
    if sys.byteorder == "big":
        words.byteswap()  # the same items on every platform
    amounts = [pick[w & 0xFFFF] | ((w >> 16) & mask) for w in words]
    services = [a >> _AMOUNT_BITS for a in amounts]
    tail_bytes = rng.randbytes(count)
    return DayModel(
        serials=list(range(first_serial, first_serial + count)),
        services=services,
        micros=[amount_micros[a] for a in amounts],
        amounts=[amount_text[a] for a in amounts],
        tails=[_TAIL_BASE[s] | t for s, t in zip(services, tail_bytes, strict=True)],
        next_serial=first_serial + count,
    )


def generate_day(
    seed: int, day: date, per_day: int, version: int, moves: frozenset[int] = frozenset()
) -> DayModel:
    """The line items of `day` in `version` (0 = before any restatement); the versions
    in `moves` were restatements of kind "services"."""
    model = _draw(seeded_rng("stackspend", seed, day, 0), 0, per_day)
    for step in range(1, version + 1):
        rng = seeded_rng("stackspend", seed, day, step)
        model = _move_services(model, rng) if step in moves else _restate(model, rng)
    return model


def _move_services(model: DayModel, rng: Any) -> DayModel:
    """The next version: ~10% of items (at least one) on another service of their
    provider, with the same amount; ids, provider totals and the day's total unchanged."""
    services = list(model.services)
    chosen = [i for i in range(len(services)) if rng.getrandbits(32) % 1000 < _MOVED_PER_1000]
    for i in chosen or ([rng.randrange(len(services))] if services else []):
        others = _SIBLINGS[services[i]]
        if others:
            services[i] = rng.choice(others)
    return DayModel(
        list(model.serials),
        services,
        list(model.micros),
        list(model.amounts),
        list(model.tails),
        model.next_serial,
    )


def _restate(model: DayModel, rng: Any) -> DayModel:
    """The next version: every amount moved by up to ±15%, ~10% dropped, a few added."""
    kept = DayModel.empty(model.next_serial)
    columns = zip(model.serials, model.services, model.micros, model.tails, strict=True)
    for serial, service, micros, tail in columns:
        bits = rng.getrandbits(32)
        if bits % 1000 < _REMOVED_PER_1000:
            continue
        change = (bits >> 10) % 300 - 150
        moved = micros * (1000 + (change if change < 0 else change + 1)) // 1000
        if moved == micros:
            moved += 1 if micros >= 0 else -1
        kept.append(serial, service, moved, format_micros(moved), tail)
    added = _draw(rng, model.next_serial, 1 + rng.randrange(max(1, len(model.serials) // 50)))
    columns = zip(
        added.serials, added.services, added.micros, added.amounts, added.tails, strict=True
    )
    for item in columns:
        kept.append(*item)
    kept.next_serial = added.next_serial
    return kept


def line_item_id(day: date, serial: int) -> str:
    """The stable, globally unique id of a line item."""
    return f"li_{day:%Y%m%d}_{serial:08d}"


def render_rows(day: date, model: DayModel) -> list[str]:
    """Each item of the day as its JSON object text, in id order."""
    head = f'{{"id":"li_{day:%Y%m%d}_'
    mids = [
        f'","usage_date":"{day.isoformat()}","provider_type":"{s.provider_type}"'
        f',"provider_service":"{s.name}","net_amount_usd":'
        for s in CATALOG
    ]
    serial_texts, tail_json = _SERIAL_TEXTS.upto(model.next_serial), _TAIL_JSON
    columns = zip(model.serials, model.services, model.amounts, model.tails, strict=True)
    return [f"{head}{serial_texts[n]}{mids[s]}{a}{tail_json[t]}" for n, s, a, t in columns]


def item_dicts(day: date, model: DayModel) -> list[dict[str, Any]]:
    """Each item of the day as a dict (Decimal amount, `date` usage_date)."""
    items = []
    columns = zip(model.serials, model.services, model.amounts, model.tails, strict=True)
    for serial, service, amount, tail in columns:
        extra = _TAILS[tail]
        items.append(
            {
                "id": line_item_id(day, serial),
                "usage_date": day,
                "provider_type": CATALOG[service].provider_type,
                "provider_service": CATALOG[service].name,
                "net_amount_usd": Decimal(amount),
                "currency_original": extra.currency_original,
                "project_id": extra.project_id,
                "user_email": extra.user_email,
            }
        )
    return items


@dataclass(frozen=True)
class RenderedDay:
    """A day's rows ready to serve: serials (for cursor positions) and JSON texts."""

    serials: array[int]
    rows: list[str]


@dataclass(frozen=True)
class DaySums:
    """Per catalogue service: the day's exact total (millionths) and item count."""

    micros: tuple[int, ...]
    counts: tuple[int, ...]


def sum_day(model: DayModel) -> DaySums:
    """Exact per-service totals of one day's items."""
    micros = [0] * len(CATALOG)
    counts = [0] * len(CATALOG)
    for service, amount in zip(model.services, model.micros, strict=True):
        micros[service] += amount
        counts[service] += 1
    return DaySums(tuple(micros), tuple(counts))


@dataclass(frozen=True)
class Page:
    """One page of line items: row texts, the last row's (day, serial), whether more follow."""

    rows: list[str]
    last: tuple[date, int] | None
    has_more: bool


class LineItemStore:
    """Every line item of the data range, computed per (day, version) on demand."""

    def __init__(
        self, seed: int, start: date, end: date, per_day: int, cache_rows: int = 200_000
    ) -> None:
        if start > end:
            raise ValueError("start_date must be on or before end_date")
        if per_day < 0:
            raise ValueError("line_items_per_day must be >= 0")
        self.seed = seed
        self.start = start
        self.end = end
        self.per_day = per_day
        self._lock = threading.Lock()
        self._versions: dict[date, int] = {}
        self._moves: dict[date, frozenset[int]] = {}  # versions of kind "services"
        self._sums: dict[tuple[date, int], DaySums] = {}
        self._rendered: SizedLRU[tuple[date, int], RenderedDay] = SizedLRU(cache_rows)

    def version(self, day: date) -> int:
        """How many times `day` has been restated."""
        with self._lock:
            return self._versions.get(day, 0)

    def versions(self) -> dict[date, int]:
        """The restated days and their versions."""
        with self._lock:
            return dict(sorted(self._versions.items()))

    def restate(self, days: Iterable[date], kind: str = "amounts") -> list[date]:
        """Bump the version of each day (once per day, however often listed) with a
        restatement of `kind` (one of `RESTATEMENT_KINDS`)."""
        if kind not in RESTATEMENT_KINDS:
            raise ValueError(f"kind must be one of {', '.join(RESTATEMENT_KINDS)}")
        chosen = sorted(set(days))
        outside = [d for d in chosen if not self.start <= d <= self.end]
        if outside:
            raise ValueError(f"{outside[0].isoformat()} is outside the sandbox's data range")
        with self._lock:
            for day in chosen:
                version = self._versions[day] = self._versions.get(day, 0) + 1
                if kind == "services":
                    self._moves[day] = self._moves.get(day, frozenset()) | {version}
        return chosen

    def model(self, day: date) -> DayModel:
        """The current items of `day` (none outside the data range)."""
        if not self.start <= day <= self.end:
            return DayModel.empty()
        with self._lock:
            version, moves = self._versions.get(day, 0), self._moves.get(day, frozenset())
        return generate_day(self.seed, day, self.per_day, version, moves)

    def sums(self, day: date) -> DaySums:
        """Exact per-service totals of `day`'s current items (cached per version)."""
        key = (day, self.version(day))
        with self._lock:
            cached = self._sums.get(key)
        if cached is None:
            cached = sum_day(self.model(day))
            with self._lock:
                self._sums[key] = cached
        return cached

    def rendered(self, day: date) -> RenderedDay:
        """`day`'s current items as JSON texts, from the LRU when possible."""
        version = self.version(day)

        def build() -> tuple[RenderedDay, int]:
            model = self.model(day)
            with self._lock:
                self._sums.setdefault((day, version), sum_day(model))
            rows = render_rows(day, model)
            return RenderedDay(array("q", model.serials), rows), max(1, len(rows))

        return self._rendered.get_or_build((day, version), build)

    def page(self, start: date, end: date, after: tuple[date, int] | None, limit: int) -> Page:
        """Up to `limit` items of [start, end] after position `after`, in (day, id) order."""
        first, last = max(start, self.start), min(end, self.end)
        day = first if after is None else max(first, after[0])
        rows: list[str] = []
        position: tuple[date, int] | None = None
        while day <= last:
            rendered = self.rendered(day)
            index = 0
            if after is not None and day == after[0]:
                index = bisect_right(rendered.serials, after[1])
            if index < len(rendered.rows):
                if len(rows) == limit:
                    return Page(rows, position, True)
                taken = rendered.rows[index : index + limit - len(rows)]
                rows.extend(taken)
                position = (day, rendered.serials[index + len(taken) - 1])
                if index + len(taken) < len(rendered.rows):
                    return Page(rows, position, True)
            day += timedelta(days=1)
        return Page(rows, position, False)

    def items(self, start: date, end: date) -> list[dict[str, Any]]:
        """Every current item of [start, end] as dicts, in (day, id) order."""
        return [
            item for day in days_between(start, end) for item in item_dicts(day, self.model(day))
        ]

    def count(self, start: date, end: date) -> int:
        """How many items [start, end] currently holds."""
        first, last = max(start, self.start), min(end, self.end)
        if first > last:
            return 0
        return sum(sum(self.sums(day).counts) for day in days_between(first, last))

    def rollups(self, start: date, end: date, group_by: str) -> list[dict[str, Any]]:
        """Exact daily totals per group, ordered by date then group."""
        first, last = max(start, self.start), min(end, self.end)
        if first > last:
            return []
        return [
            row
            for day in days_between(first, last)
            for row in _group(day, self.sums(day), group_by)
        ]


def _group(day: date, sums: DaySums, group_by: str) -> list[dict[str, Any]]:
    """One day's per-service sums folded into rollup rows for `group_by`."""
    totals: dict[tuple[str | None, str | None, str | None], int] = {}
    for service, micros, count in zip(CATALOG, sums.micros, sums.counts, strict=True):
        if not count:
            continue
        if group_by == "provider":
            key = (service.provider_type, None, None)
        elif group_by == "service":
            key = (service.provider_type, service.name, None)
        else:
            key = (None, None, service.category)
        totals[key] = totals.get(key, 0) + micros
    return [
        {
            "date": day,
            "cost_usd": Decimal(format_micros(micros)),
            "provider_type": provider,
            "service": name,
            "category": category,
        }
        for (provider, name, category), micros in sorted(
            totals.items(), key=lambda kv: tuple(part or "" for part in kv[0])
        )
    ]


# --- anomalies -------------------------------------------------------------

SEVERITIES: tuple[str, ...] = ("low", "medium", "high", "critical")
STATUSES: tuple[str, ...] = ("new", "acknowledged", "resolved", "false_positive", "dismissed")
ALERT_TYPES: tuple[str, ...] = ("spend_spike", "usage_drop", "new_service", "budget_threshold")
# "newest-asc": an answer holds the newest matches (up to the limit), oldest first.
ANOMALY_ORDERS: tuple[str, ...] = ("asc", "desc", "unordered", "newest-asc")

# Per alert type: its share of anomalies and the actual/expected ratio range (per mille).
_ALERT_SHAPES = {
    "spend_spike": (5, 1300, 4500),
    "usage_drop": (2, 100, 700),
    "new_service": (1, 5000, 40000),
    "budget_threshold": (2, 1050, 1600),
}
_STATUS_WEIGHTS = (5, 2, 2, 1, 1)
_BATCH_SIZES = (1, 1, 2, 2, 3, 4)  # anomalies found by one detection run share its timestamp


@dataclass
class Anomaly:
    """One anomaly alert; `status` is the only field that changes."""

    id: str
    provider_type: str
    service: str
    detected_date: datetime
    actual_cost: Decimal
    expected_cost: Decimal
    deviation_percent: Decimal
    severity: str
    alert_type: str
    status: str

    def as_dict(self) -> dict[str, Any]:
        """The anomaly's fields in the API's order."""
        return {
            "id": self.id,
            "provider_type": self.provider_type,
            "service": self.service,
            "detected_date": self.detected_date,
            "actual_cost": self.actual_cost,
            "expected_cost": self.expected_cost,
            "deviation_percent": self.deviation_percent,
            "severity": self.severity,
            "alert_type": self.alert_type,
            "status": self.status,
        }


def _severity(deviation: Decimal) -> str:
    size = abs(deviation)
    if size < 30:
        return "low"
    if size < 80:
        return "medium"
    return "high" if size < 200 else "critical"


def draw_anomaly(
    rng: Any, anomaly_id: str, detected: datetime, provider_type: str | None = None
) -> Anomaly:
    """A plausible anomaly detected at `detected` (for `provider_type` when given)."""
    services = [s for s in CATALOG if provider_type in (None, s.provider_type)]
    service = rng.choice(services) if services else CATALOG[0]
    weights = [shape[0] for shape in _ALERT_SHAPES.values()]
    alert_type = rng.choices(ALERT_TYPES, weights)[0]
    _, low, high = _ALERT_SHAPES[alert_type]
    expected_cents = (
        rng.randint(100, 1000) if alert_type == "new_service" else rng.randint(500, 200_000)
    )
    actual_cents = expected_cents * rng.randint(low, high) // 1000
    expected = Decimal(expected_cents).scaleb(-2)
    actual = Decimal(actual_cents).scaleb(-2)
    deviation = ((actual - expected) * 100 / expected).quantize(Decimal("0.1"))
    return Anomaly(
        id=anomaly_id,
        provider_type=provider_type or service.provider_type,
        service=service.name,
        detected_date=detected,
        actual_cost=actual,
        expected_cost=expected,
        deviation_percent=deviation,
        severity=_severity(deviation),
        alert_type=alert_type,
        status=rng.choices(STATUSES, _STATUS_WEIGHTS)[0],
    )


@dataclass
class AnomalyStore:
    """The anomaly alerts: generated once from the seed, then moved and added to."""

    seed: int
    items: list[Anomaly] = field(default_factory=list)
    moves: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def generate(cls, seed: int, start: date, end: date, count: int) -> AnomalyStore:
        """`count` anomalies in detection batches spread over [start, end]."""
        rng = seeded_rng("stackspend", seed, "anomalies")
        span = (end - start).days + 1
        drawn: list[Anomaly] = []
        while len(drawn) < count:
            day = start + timedelta(days=rng.randrange(span))
            hour, minute = rng.randrange(24), rng.randrange(60)
            detected = datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC)
            for _ in range(min(rng.choice(_BATCH_SIZES), count - len(drawn))):
                drawn.append(draw_anomaly(rng, "", detected))
        drawn.sort(key=lambda a: a.detected_date)
        items = [replace(a, id=f"anom_{index:05d}") for index, a in enumerate(drawn, start=1)]
        return cls(seed=seed, items=items)

    def add(
        self,
        count: int,
        at: datetime,
        provider_type: str | None = None,
        severity: str | None = None,
        status: str | None = None,
    ) -> list[str]:
        """Add `count` anomalies all detected at `at` (with the given severity and
        status, if any); their ids."""
        with self._lock:
            rng = seeded_rng("stackspend", self.seed, "added", len(self.items))
            first = len(self.items) + 1
            added = [
                replace(
                    anomaly,
                    severity=severity or anomaly.severity,
                    status=status or anomaly.status,
                )
                for offset in range(count)
                if (anomaly := draw_anomaly(rng, f"anom_{first + offset:05d}", at, provider_type))
            ]
            self.items.extend(added)
        return [a.id for a in added]

    def move_statuses(self, count: int) -> list[str]:
        """Give `count` anomalies (chosen deterministically) a different status; their ids."""
        with self._lock:
            self.moves += 1
            rng = seeded_rng("stackspend", self.seed, "moves", self.moves)
            chosen = sorted(rng.sample(range(len(self.items)), min(count, len(self.items))))
            for index in chosen:
                current = self.items[index].status
                self.items[index].status = rng.choice([s for s in STATUSES if s != current])
            return [self.items[index].id for index in chosen]

    def query(
        self,
        since: datetime | None = None,
        provider_type: str | None = None,
        severity: str | None = None,
        status: str | None = None,
        order: str = "asc",
    ) -> list[Anomaly]:
        """Matching anomalies (detected strictly after `since`) in `order`, as copies."""
        with self._lock:
            found = [
                replace(a)
                for a in self.items
                if (since is None or a.detected_date > since)
                and provider_type in (None, a.provider_type)
                and severity in (None, a.severity)
                and status in (None, a.status)
            ]
        found.sort(key=lambda a: (a.detected_date, a.id))
        if order in ("desc", "newest-asc"):
            found.reverse()
        elif order == "unordered":
            seeded_rng("stackspend", self.seed, "order").shuffle(found)
        return found
