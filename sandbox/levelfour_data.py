"""The LevelFour sandbox's data: monthly spending breakdown items built from daily costs.

Each month (a "period") holds items unique on (provider_id, account_id,
region, service, environment, tag_key, tag_value). An item's cost for the
month is the sum of its daily costs, so a date range inside the month sums a
sub-range of its days. Months are computed on demand from (seed, period,
version): version 0 picks `items_per_month` items from a pool shared by every
month (so most items recur and have a previous cost), and each restatement
derives the next version from the previous one (costs move, about 10% of the
items go, a few new ones come). Only a bounded LRU of months is kept.

Amounts are integers of millionths of a dollar until they are rendered, so
every sum is exact.
"""

from __future__ import annotations

import calendar
import functools
import itertools
import math
import re
import threading
from array import array
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any, NamedTuple

from sandbox.common import (
    SizedLRU,
    format_decimal,
    format_micros,
    seeded_rng,
    to_json,
    utc_today,
)

PROVIDERS: tuple[str, ...] = ("aws", "gcp", "azure", "k8s")
GROUP_BYS: tuple[str, ...] = ("provider", "account_id")

_PERIOD_PATTERN = re.compile(r"[1-9]\d{3}-(0[1-9]|1[0-2])")


class ItemKey(NamedTuple):
    """What makes a breakdown item unique within its period."""

    provider_id: str
    account_id: str
    region: str
    service: str
    environment: str | None
    tag_key: str | None
    tag_value: str | None


@dataclass(frozen=True)
class Provider:
    """One provider in the catalogue: its accounts (each with its regions) and services."""

    id: str
    weight: int
    accounts: tuple[tuple[str, tuple[str, ...]], ...]
    services: tuple[tuple[str, float, float], ...]  # name and typical daily USD range


_AWS_REGIONS = ("us-east-1", "us-west-2", "eu-west-1", "eu-central-1", "ap-southeast-2")
_GCP_REGIONS = ("us-central1", "us-east4", "europe-west1", "asia-northeast1")
_AZURE_REGIONS = ("eastus", "westus2", "westeurope", "northeurope", "southeastasia")

CATALOG: tuple[Provider, ...] = (
    Provider(
        "aws",
        40,
        tuple(
            (account, _AWS_REGIONS)
            for account in (
                "111122223333",
                "210987654321",
                "444455556666",
                "777788889999",
                "901234567890",
            )
        ),
        (
            ("Amazon EC2", 4.0, 900.0),
            ("Amazon S3", 0.15, 120.0),
            ("Amazon RDS", 3.0, 400.0),
            ("AWS Lambda", 0.0004, 25.0),
            ("Amazon CloudFront", 0.05, 60.0),
            ("Amazon DynamoDB", 0.02, 80.0),
            ("AWS Data Transfer", 0.001, 50.0),
            ("Amazon EKS", 2.4, 12.0),
        ),
    ),
    Provider(
        "gcp",
        25,
        tuple(
            (project, _GCP_REGIONS)
            for project in ("acme-prod-218934", "acme-data-553201", "acme-staging-790412")
        ),
        (
            ("Compute Engine", 3.0, 600.0),
            ("Cloud Storage", 0.05, 80.0),
            ("BigQuery", 0.5, 350.0),
            ("Cloud SQL", 2.0, 150.0),
            ("Vertex AI", 0.2, 240.0),
            ("Cloud Run", 0.0008, 30.0),
            ("Networking", 0.002, 40.0),
        ),
    ),
    Provider(
        "azure",
        20,
        tuple(
            (subscription, _AZURE_REGIONS)
            for subscription in (
                "3f2b8c1e-7d4a-4e9b-a6f0-1c2d3e4f5a6b",
                "8a7b6c5d-4e3f-4a1b-9c8d-7e6f5a4b3c2d",
                "c0ffee00-1234-4abc-8def-0123456789ab",
            )
        ),
        (
            ("Virtual Machines", 3.0, 700.0),
            ("Storage", 0.05, 90.0),
            ("Azure SQL Database", 2.0, 180.0),
            ("Azure OpenAI Service", 0.1, 300.0),
            ("Bandwidth", 0.001, 35.0),
            ("Azure Kubernetes Service", 2.4, 10.0),
            ("Azure Monitor", 0.01, 20.0),
        ),
    ),
    Provider(
        "k8s",
        15,
        (
            ("prod-eks-use1", ("us-east-1",)),
            ("prod-gke-euw1", ("europe-west1",)),
            ("staging-aks-eus", ("eastus",)),
        ),
        (
            ("checkout", 0.5, 60.0),
            ("payments-api", 0.5, 45.0),
            ("search", 0.3, 80.0),
            ("data-pipeline", 0.2, 120.0),
            ("ingress-nginx", 0.05, 8.0),
            ("monitoring", 0.1, 25.0),
            ("kube-system", 0.02, 6.0),
            ("__idle__", 0.01, 40.0),
        ),
    ),
)
_DAILY_RANGE = {(p.id, name): (low, high) for p in CATALOG for name, low, high in p.services}

_ENVIRONMENTS: tuple[tuple[str | None, int], ...] = (
    ("production", 45),
    ("staging", 20),
    ("development", 15),
    (None, 20),
)
_TAGS: tuple[tuple[str, str], ...] = (
    ("team", "platform"),
    ("team", "data"),
    ("team", "payments"),
    ("team", "growth"),
    ("team", "ml"),
    ("cost-center", "cc-1001"),
    ("cost-center", "cc-2040"),
    ("cost-center", "cc-3300"),
    ("project", "atlas"),
    ("project", "orion"),
    ("project", "helios"),
    ("owner", "sre@acme.example"),
)
_PROVIDER_WEIGHTS = tuple(itertools.accumulate(p.weight for p in CATALOG))
_ENVIRONMENT_NAMES = tuple(name for name, _ in _ENVIRONMENTS)
_ENVIRONMENT_WEIGHTS = tuple(itertools.accumulate(weight for _, weight in _ENVIRONMENTS))
_UNTAGGED_SHARE = 0.3
_SIBLING_SHARE = 0.25  # a new key reuses another's line with a different tag
_KEY_ATTEMPTS = 8
_WHOLE_CENTS_SHARE = 0.3
_PARTIAL_SHARE = 0.2  # items billed on only part of the month
_REMOVED_SHARE = 0.10  # a restatement drops about 10% of a month's items


# --- periods ----------------------------------------------------------------------


def parse_period(text: str) -> date:
    """The first day of a month written exactly as YYYY-MM; ValueError otherwise."""
    if not _PERIOD_PATTERN.fullmatch(text):
        raise ValueError(f"not a YYYY-MM month: {text!r}")
    return date(int(text[:4]), int(text[5:]), 1)


def format_period(month: date) -> str:
    """A month as YYYY-MM."""
    return f"{month.year:04d}-{month.month:02d}"


def add_months(month: date, count: int) -> date:
    """The first day of the month `count` months after `month` (negative: before)."""
    index = month.year * 12 + month.month - 1 + count
    return date(index // 12, index % 12 + 1, 1)


def month_length(month: date) -> int:
    """How many days `month` has."""
    return calendar.monthrange(month.year, month.month)[1]


# --- drawing items ------------------------------------------------------------------


def _draw_fresh_key(rng: Any) -> ItemKey:
    provider = rng.choices(CATALOG, cum_weights=_PROVIDER_WEIGHTS)[0]
    account, regions = rng.choice(provider.accounts)
    service = rng.choice(provider.services)[0]
    environment = rng.choices(_ENVIRONMENT_NAMES, cum_weights=_ENVIRONMENT_WEIGHTS)[0]
    tag_key, tag_value = _draw_tag(rng)
    return ItemKey(
        provider.id, account, rng.choice(regions), service, environment, tag_key, tag_value
    )


def _draw_tag(rng: Any) -> tuple[str | None, str | None]:
    if rng.random() < _UNTAGGED_SHARE:
        return None, None
    return rng.choice(_TAGS)


def draw_key(rng: Any, taken: set[ItemKey], siblings: list[ItemKey]) -> ItemKey:
    """A key not in `taken`; sometimes one of `siblings`' lines under another tag."""
    for _ in range(_KEY_ATTEMPTS):
        if siblings and rng.random() < _SIBLING_SHARE:
            tag_key, tag_value = _draw_tag(rng)
            key = rng.choice(siblings)._replace(tag_key=tag_key, tag_value=tag_value)
        else:
            key = _draw_fresh_key(rng)
        if key not in taken:
            return key
    # The catalogue is nearly used up: tag the line with a resource id of its own.
    base, serial = _draw_fresh_key(rng), len(taken)
    while True:
        key = base._replace(tag_key="resource-id", tag_value=f"r-{serial:07d}")
        if key not in taken:
            return key
        serial += 1


@functools.lru_cache(maxsize=1 << 18)
def _base_amount(seed: int, key: ItemKey) -> tuple[int, bool]:
    """The key's typical daily cost (millionths) and whether it bills whole cents."""
    rng = seeded_rng("levelfour", seed, "base", *key)
    low, high = _DAILY_RANGE[(key.provider_id, key.service)]
    usd = math.exp(rng.uniform(math.log(low), math.log(high)))
    return max(1, round(usd * 1_000_000)), rng.random() < _WHOLE_CENTS_SHARE


def draw_daily(rng: Any, seed: int, key: ItemKey, days: int) -> array[int]:
    """The key's daily costs (millionths) over a month of `days` days; 0 on unbilled days."""
    base, whole_cents = _base_amount(seed, key)
    random = rng.random
    month_factor = 800 + int(random() * 451)
    first, last = 0, days - 1
    if random() < _PARTIAL_SHARE:
        first = rng.randrange(days)
        last = rng.randrange(first, days)
    scale = base * month_factor
    amounts = [scale * (900 + (b * 201 >> 8)) // 1_000_000 for b in rng.randbytes(last - first + 1)]
    if whole_cents:
        amounts = [max(10_000, a - a % 10_000) for a in amounts]
    daily = array("q", bytes(8 * days))
    daily[first : last + 1] = array("q", [a or 1 for a in amounts])
    return daily


def _move(rng: Any, amount: int) -> int:
    """`amount` moved by 0.1% to 15% either way (never unchanged, never below 1)."""
    if amount == 0:
        return 0
    change = int(rng.random() * 300) - 150
    change += change >= 0
    moved = max(1, amount * (1000 + change) // 1000)
    return moved if moved != amount else amount + 1


def natural_order(key: ItemKey) -> tuple[tuple[bool, str], ...]:
    """Sort key of an item key: field by field, null before any text."""
    return tuple((value is not None, value or "") for value in key)


# --- one month -----------------------------------------------------------------------


@dataclass(frozen=True)
class MonthModel:
    """One month's items in one version: daily costs per key, keys in natural order."""

    period: date
    daily: dict[ItemKey, array[int]]

    @classmethod
    def of(cls, period: date, daily: dict[ItemKey, array[int]]) -> MonthModel:
        """A model with its keys put in natural order."""
        ordered = sorted(daily.items(), key=lambda kv: natural_order(kv[0]))
        return cls(period, dict(ordered))


def generate_month(
    seed: int, period: date, pool: list[ItemKey], per_month: int, version: int
) -> MonthModel:
    """The items of `period` in `version` (0 = before any restatement)."""
    days = month_length(period)
    rng = seeded_rng("levelfour", seed, format_period(period), 0)
    chosen = sorted(rng.sample(range(len(pool)), per_month))
    model = MonthModel.of(period, {pool[i]: draw_daily(rng, seed, pool[i], days) for i in chosen})
    for step in range(1, version + 1):
        step_rng = seeded_rng("levelfour", seed, format_period(period), "restate", step)
        model = restate_month(seed, model, step_rng)
    return model


def restate_month(seed: int, model: MonthModel, rng: Any) -> MonthModel:
    """The next version: every daily cost moved, ~10% of items dropped, a few new ones."""
    kept: dict[ItemKey, array[int]] = {}
    for key, daily in model.daily.items():
        if rng.random() < _REMOVED_SHARE:
            continue
        kept[key] = array("q", (_move(rng, amount) for amount in daily))
    taken = set(model.daily)
    siblings = list(kept)
    days = month_length(model.period)
    for _ in range(1 + rng.randrange(max(1, len(model.daily) // 25))):
        key = draw_key(rng, taken, siblings)
        taken.add(key)
        kept[key] = draw_daily(rng, seed, key, days)
    return MonthModel.of(model.period, kept)


# --- queries --------------------------------------------------------------------------


class BreakdownRow(NamedTuple):
    """One item of a breakdown answer: its key, cost and previous month's cost (millionths)."""

    key: ItemKey
    cost: int
    previous_cost: int

    def as_dict(self) -> dict[str, Any]:
        """The item's fields in the API's order (money as Decimal)."""
        return {
            "service": self.key.service,
            "provider_id": self.key.provider_id,
            "environment": self.key.environment,
            "region": self.key.region,
            "account_id": self.key.account_id,
            "tag_key": self.key.tag_key,
            "tag_value": self.key.tag_value,
            "cost": Decimal(format_micros(self.cost)),
            "previous_cost": Decimal(format_micros(self.previous_cost)),
            "change_percentage": self.change_percentage,
        }

    @property
    def change_percentage(self) -> Decimal | None:
        """The change from the previous cost in percent, as the API writes it."""
        return change_percentage(self.cost, self.previous_cost)

    def render(self) -> str:
        """The item as the JSON object text the API sends (same fields as `as_dict`)."""
        change = self.change_percentage
        return (
            f'{_key_json(self.key)},"cost":{format_micros(self.cost)}'
            f',"previous_cost":{format_micros(self.previous_cost)}'
            f',"change_percentage":{"null" if change is None else format_decimal(change)}}}'
        )


@functools.lru_cache(maxsize=1 << 18)
def _key_json(key: ItemKey) -> str:
    """A key's fields in the API's order, as an unclosed JSON object."""
    fields = {
        "service": key.service,
        "provider_id": key.provider_id,
        "environment": key.environment,
        "region": key.region,
        "account_id": key.account_id,
        "tag_key": key.tag_key,
        "tag_value": key.tag_value,
    }
    return to_json(fields)[:-1]


def change_percentage(cost: int, previous_cost: int) -> Decimal | None:
    """(cost - previous) / previous in percent, rounded half away from zero to 2 decimals.

    None when there is no previous cost to compare with.
    """
    if previous_cost == 0:
        return None
    numerator = (cost - previous_cost) * 10_000
    hundredths, remainder = divmod(abs(numerator), abs(previous_cost))
    if 2 * remainder >= abs(previous_cost):
        hundredths += 1
    sign = -1 if (numerator < 0) != (previous_cost < 0) else 1
    return Decimal(sign * hundredths).scaleb(-2)


class BreakdownStore:
    """Every month of the data range, computed per (period, version) on demand.

    `today` tells which days of the current month already hold costs.
    """

    def __init__(
        self,
        seed: int,
        current_period: date,
        months: int,
        items_per_month: int,
        today: Callable[[], date] = utc_today,
        cache_items: int = 1_000_000,
    ) -> None:
        if months < 1:
            raise ValueError("months must be >= 1")
        if items_per_month < 0:
            raise ValueError("items_per_month must be >= 0")
        self.seed = seed
        self.current_period = current_period.replace(day=1)
        self.first_period = add_months(self.current_period, 1 - months)
        self.items_per_month = items_per_month
        self._today = today
        self._lock = threading.Lock()
        self._versions: dict[date, int] = {}
        self._pool: list[ItemKey] | None = None
        self._models: SizedLRU[tuple[date, int], MonthModel] = SizedLRU(cache_items)

    def periods(self) -> list[date]:
        """The months holding data, oldest first."""
        count = (self.current_period.year - self.first_period.year) * 12
        count += self.current_period.month - self.first_period.month + 1
        return [add_months(self.first_period, i) for i in range(count)]

    def holds(self, period: date) -> bool:
        """Whether `period` is within the data range."""
        return self.first_period <= period <= self.current_period

    def version(self, period: date) -> int:
        """How many times `period` has been restated."""
        with self._lock:
            return self._versions.get(period, 0)

    def versions(self) -> dict[date, int]:
        """The restated months and their versions."""
        with self._lock:
            return dict(sorted(self._versions.items()))

    def restate(self, period: date) -> int:
        """Restate `period` once more; its new version."""
        if not self.holds(period):
            raise ValueError(f"{format_period(period)} is outside the sandbox's data range")
        with self._lock:
            self._versions[period] = self._versions.get(period, 0) + 1
            return self._versions[period]

    def model(self, period: date) -> MonthModel:
        """The current items of `period` (none outside the data range)."""
        if not self.holds(period):
            return MonthModel(period, {})
        version = self.version(period)

        def build() -> tuple[MonthModel, int]:
            model = generate_month(self.seed, period, self.pool(), self.items_per_month, version)
            return model, max(1, len(model.daily))

        return self._models.get_or_build((period, version), build)

    def pool(self) -> list[ItemKey]:
        """The keys every month's first version picks its items from."""
        with self._lock:
            if self._pool is None:
                size = self.items_per_month + max(1, self.items_per_month // 8)
                rng = seeded_rng("levelfour", self.seed, "pool")
                pool: list[ItemKey] = []
                taken: set[ItemKey] = set()
                for _ in range(size):
                    key = draw_key(rng, taken, pool)
                    taken.add(key)
                    pool.append(key)
                self._pool = pool
            return self._pool

    def billed_days(self, period: date) -> list[date]:
        """The days of `period` that hold costs: all of them, or up to today in today's month."""
        today = self._today()
        days = month_length(period)
        if (period.year, period.month) == (today.year, today.month):
            days = today.day
        return [period + timedelta(days=offset) for offset in range(days)]

    def _span(self, period: date, start: date | None, end: date | None) -> range:
        """Day indexes of `period` that hold costs and fall within [start, end]."""
        days = self.billed_days(period)
        first = 0 if start is None else max(0, (start - period).days)
        last = len(days) - 1 if end is None else min(len(days) - 1, (end - period).days)
        return range(first, last + 1)

    def totals(self, period: date) -> dict[ItemKey, int]:
        """Each item's cost over the billed days of `period`."""
        span = self._span(period, None, None)
        return {
            key: total
            for key, daily in self.model(period).daily.items()
            if (total := sum(daily[span.start : span.stop]))
        }

    def rows(
        self,
        period: date,
        start: date | None = None,
        end: date | None = None,
        provider_id: str | None = None,
    ) -> list[BreakdownRow]:
        """The items billed in `period` within [start, end], in natural order.

        `previous_cost` is the same item's cost over the whole previous month.
        """
        span = self._span(period, start, end)
        if not span:
            return []
        previous = self.totals(add_months(period, -1))
        rows = []
        for key, daily in self.model(period).daily.items():
            if provider_id is not None and key.provider_id != provider_id:
                continue
            cost = sum(daily[span.start : span.stop])
            if cost:
                rows.append(BreakdownRow(key, cost, previous.get(key, 0)))
        return rows

    def daily_totals(
        self,
        period: date,
        start: date | None,
        end: date | None,
        provider_id: str | None,
        group_by: str,
    ) -> tuple[list[date], dict[str, list[int]]]:
        """Billed days within [start, end] and, per group, its cost on each of them."""
        span = self._span(period, start, end)
        days = [period + timedelta(days=index) for index in span]
        groups: dict[str, list[int]] = {}
        for key, daily in self.model(period).daily.items():
            if provider_id is not None and key.provider_id != provider_id:
                continue
            costs = daily[span.start : span.stop]
            if not any(costs):
                continue
            group = key.provider_id if group_by == "provider" else key.account_id
            into = groups.setdefault(group, [0] * len(days))
            for index, amount in enumerate(costs):
                into[index] += amount
        return days, dict(sorted(groups.items()))
