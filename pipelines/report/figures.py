"""The report's figures, each one SQL over the tables costsync loaded.

Every amount is summed in the warehouse, in DECIMAL, and arrives as an exact
`Decimal`; nothing is added up in Python. The SQL is the dialect DuckDB and
Postgres share.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from pipelines.report.datasets import Datasets, VendorDataset
from pipelines.report.warehouse import Warehouse

TOP_N = 10
OPEN_STATUSES = ("new", "acknowledged")
NONE = "(none)"

SPEND_BY_DAY_AND_PROVIDER = """
SELECT usage_date, COALESCE(provider_type, '(none)') AS provider,
    COALESCE(SUM(net_amount_usd) FILTER (WHERE net_amount_usd >= 0), 0) AS charges,
    COALESCE(SUM(net_amount_usd) FILTER (WHERE net_amount_usd < 0), 0) AS credits,
    COALESCE(SUM(net_amount_usd), 0) AS net
FROM {line_items}
GROUP BY 1, 2 ORDER BY 1, 2
"""
SPEND_BY_DAY = """
SELECT usage_date,
    COALESCE(SUM(net_amount_usd) FILTER (WHERE net_amount_usd >= 0), 0) AS charges,
    COALESCE(SUM(net_amount_usd) FILTER (WHERE net_amount_usd < 0), 0) AS credits,
    COALESCE(SUM(net_amount_usd), 0) AS net
FROM {line_items}
GROUP BY 1 ORDER BY 1
"""
SPEND_BY_PROVIDER = """
SELECT COALESCE(provider_type, '(none)') AS provider, COUNT(*) AS line_items,
    COALESCE(SUM(net_amount_usd) FILTER (WHERE net_amount_usd >= 0), 0) AS charges,
    COALESCE(SUM(net_amount_usd) FILTER (WHERE net_amount_usd < 0), 0) AS credits,
    COALESCE(SUM(net_amount_usd), 0) AS net
FROM {line_items}
GROUP BY 1 ORDER BY net DESC, provider
"""
SPEND_TOTAL = """
SELECT 'all providers', COUNT(*),
    COALESCE(SUM(net_amount_usd) FILTER (WHERE net_amount_usd >= 0), 0),
    COALESCE(SUM(net_amount_usd) FILTER (WHERE net_amount_usd < 0), 0),
    COALESCE(SUM(net_amount_usd), 0)
FROM {line_items}
"""
PERIOD = """
SELECT MIN(usage_date), MAX(usage_date),
    CAST(date_trunc('month', MAX(usage_date)) AS DATE),
    CAST(date_trunc('month', MAX(usage_date)) - INTERVAL '1 month' AS DATE)
FROM {line_items}
"""
# {name}: the text a row is ranked by; the latest month is the newest one with line items.
TOP_BY_NAME = """
WITH months AS (
    SELECT CAST(date_trunc('month', MAX(usage_date)) AS DATE) AS latest,
        CAST(date_trunc('month', MAX(usage_date)) - INTERVAL '1 month' AS DATE) AS previous
    FROM {line_items}
),
items AS (
    SELECT {name} AS name, net_amount_usd,
        CAST(date_trunc('month', usage_date) AS DATE) AS month
    FROM {line_items}
)
SELECT name,
    COALESCE(SUM(net_amount_usd), 0) AS total,
    COALESCE(SUM(net_amount_usd) FILTER (WHERE month = months.previous), 0) AS previous_month,
    COALESCE(SUM(net_amount_usd) FILTER (WHERE month = months.latest), 0) AS latest_month,
    COALESCE(SUM(net_amount_usd) FILTER (WHERE month = months.latest), 0)
        - COALESCE(SUM(net_amount_usd) FILTER (WHERE month = months.previous), 0) AS change
FROM items CROSS JOIN months
GROUP BY name ORDER BY total DESC, name
LIMIT {limit}
"""
SERVICE_NAME = "COALESCE(provider_type, '(none)') || ' / ' || COALESCE(provider_service, '(none)')"
PROJECT_NAME = "COALESCE(project_id, '(none)')"
ANOMALIES = """
SELECT CAST(detected_date AT TIME ZONE 'UTC' AS TIMESTAMP) AS detected_at,
    COALESCE(provider_type, '(none)'), COALESCE(service, '(none)'),
    COALESCE(severity, '(none)'), COALESCE(status, '(none)'),
    actual_cost, expected_cost, actual_cost - expected_cost AS excess, id
FROM {anomalies}
ORDER BY detected_at, id
"""
ANOMALY_TOTALS = """
SELECT COUNT(*),
    COUNT(*) FILTER (WHERE status IN ('new', 'acknowledged')),
    COALESCE(SUM(actual_cost - expected_cost), 0),
    COALESCE(SUM(actual_cost - expected_cost) FILTER (WHERE status IN ('new', 'acknowledged')), 0)
FROM {anomalies}
"""
LEVELFOUR_BY_MONTH_AND_SERVICE = """
SELECT period, COALESCE(service, '(none)') AS service,
    COALESCE(SUM(cost), 0) AS cost,
    COALESCE(SUM(previous_cost), 0) AS previous_cost,
    COALESCE(SUM(cost), 0) - COALESCE(SUM(previous_cost), 0) AS change
FROM {spending_breakdown}
GROUP BY 1, 2 ORDER BY 1, 2
"""
LEVELFOUR_BY_MONTH = """
SELECT period, 'all services',
    COALESCE(SUM(cost), 0), COALESCE(SUM(previous_cost), 0),
    COALESCE(SUM(cost), 0) - COALESCE(SUM(previous_cost), 0)
FROM {spending_breakdown}
GROUP BY 1 ORDER BY 1
"""
# The comparison of dbt/models/marts/stackspend_reconciliation.sql, one row per day:
# line items against the provider rollups per (day, provider), and against the
# service and category rollup totals per day.
RECONCILIATION_BY_DAY = """
WITH line_items AS (
    SELECT usage_date, provider_type AS provider, COUNT(*) AS line_item_count,
        SUM(net_amount_usd) AS cost
    FROM {line_items}
    GROUP BY usage_date, provider_type
),
rollups AS (
    SELECT "date" AS usage_date, group_by, provider_type AS provider, cost_usd
    FROM {daily_rollups}
),
provider_rollups AS (
    SELECT usage_date, provider, SUM(cost_usd) AS cost FROM rollups
    WHERE group_by = 'provider' GROUP BY usage_date, provider
),
service_rollups AS (
    SELECT usage_date, SUM(cost_usd) AS cost FROM rollups
    WHERE group_by = 'service' GROUP BY usage_date
),
category_rollups AS (
    SELECT usage_date, SUM(cost_usd) AS cost FROM rollups
    WHERE group_by = 'category' GROUP BY usage_date
),
provider_days AS (
    SELECT usage_date, provider FROM line_items
    UNION
    SELECT usage_date, provider FROM provider_rollups
),
by_day AS (
    SELECT provider_days.usage_date,
        SUM(line_items.line_item_count) AS line_item_count,
        SUM(line_items.cost) AS line_items_cost,
        SUM(provider_rollups.cost) AS provider_rollups_cost,
        COUNT(*) FILTER (
            WHERE COALESCE(line_items.cost, 0) <> COALESCE(provider_rollups.cost, 0)
        ) AS providers_differing
    FROM provider_days
    LEFT JOIN line_items
        ON line_items.usage_date = provider_days.usage_date
        AND line_items.provider IS NOT DISTINCT FROM provider_days.provider
    LEFT JOIN provider_rollups
        ON provider_rollups.usage_date = provider_days.usage_date
        AND provider_rollups.provider IS NOT DISTINCT FROM provider_days.provider
    GROUP BY provider_days.usage_date
),
days AS (
    SELECT usage_date FROM by_day
    UNION
    SELECT usage_date FROM service_rollups
    UNION
    SELECT usage_date FROM category_rollups
)
SELECT days.usage_date,
    COALESCE(by_day.line_item_count, 0),
    COALESCE(by_day.line_items_cost, 0),
    by_day.provider_rollups_cost,
    service_rollups.cost,
    category_rollups.cost,
    COALESCE(by_day.providers_differing, 0),
    COALESCE(by_day.line_items_cost, 0) - COALESCE(by_day.provider_rollups_cost, 0),
    COALESCE(by_day.line_items_cost, 0) - COALESCE(service_rollups.cost, 0),
    COALESCE(by_day.line_items_cost, 0) - COALESCE(category_rollups.cost, 0)
FROM days
LEFT JOIN by_day ON by_day.usage_date = days.usage_date
LEFT JOIN service_rollups ON service_rollups.usage_date = days.usage_date
LEFT JOIN category_rollups ON category_rollups.usage_date = days.usage_date
ORDER BY days.usage_date
"""
LAST_LOAD = """
SELECT MAX(CAST(inserted_at AT TIME ZONE 'UTC' AS TIMESTAMP)), COUNT(*)
FROM {loads} WHERE status = 0
"""
# Per table: its rows and the newest day (or month) they cover.
TABLE_EXTENT = {
    "line_items": "SELECT COUNT(*), CAST(MAX(usage_date) AS VARCHAR) FROM {table}",
    "daily_rollups": 'SELECT COUNT(*), CAST(MAX("date") AS VARCHAR) FROM {table}',
    "anomalies": (
        "SELECT COUNT(*), CAST(MAX(CAST(detected_date AT TIME ZONE 'UTC' AS DATE)) AS VARCHAR)"
        " FROM {table}"
    ),
    "spending_breakdown": "SELECT COUNT(*), MAX(period) FROM {table}",
}


@dataclass(frozen=True)
class DaySpend:
    """One day's line items: charges (>= 0), credits (< 0) and their net."""

    usage_date: date
    charges: Decimal
    credits: Decimal
    net: Decimal


@dataclass(frozen=True)
class ProviderDaySpend:
    """One provider's line items on one day."""

    usage_date: date
    provider: str
    charges: Decimal
    credits: Decimal
    net: Decimal


@dataclass(frozen=True)
class ProviderSpend:
    """One provider's line items over the whole period."""

    provider: str
    line_items: int
    charges: Decimal
    credits: Decimal
    net: Decimal


@dataclass(frozen=True)
class Ranked:
    """A service or project: its net spend over the period and in the last two months."""

    name: str
    total: Decimal
    previous_month: Decimal
    latest_month: Decimal
    change: Decimal


@dataclass(frozen=True)
class Period:
    """The days the line items cover and the two months compared."""

    first_day: date
    last_day: date
    latest_month: date
    previous_month: date

    @property
    def latest_month_is_partial(self) -> bool:
        """Whether the line items stop before the latest month's last day."""
        return (self.last_day + timedelta(days=1)).month == self.last_day.month


@dataclass(frozen=True)
class Anomaly:
    """An anomaly alert and its excess of actual over expected cost."""

    detected_at: datetime
    provider: str
    service: str
    severity: str
    status: str
    actual_cost: Decimal | None
    expected_cost: Decimal | None
    excess: Decimal | None
    id: str


@dataclass(frozen=True)
class AnomalyTotals:
    """How many anomalies, how many open (new or acknowledged), and their excess."""

    count: int
    open_count: int
    excess: Decimal
    open_excess: Decimal


@dataclass(frozen=True)
class MonthCost:
    """LevelFour cost of a month (of one service, or all), its previous_cost and the change."""

    period: str
    service: str
    cost: Decimal
    previous_cost: Decimal
    change: Decimal


@dataclass(frozen=True)
class ReconciledDay:
    """A day's line items against the day's provider, service and category rollups."""

    usage_date: date
    line_items: int
    line_items_cost: Decimal
    provider_rollups_cost: Decimal | None
    service_rollups_cost: Decimal | None
    category_rollups_cost: Decimal | None
    providers_differing: int
    provider_diff: Decimal
    service_diff: Decimal
    category_diff: Decimal

    @property
    def agrees(self) -> bool:
        """Whether every comparison of the day is exactly zero."""
        return self.providers_differing == 0 and not self.service_diff and not self.category_diff


@dataclass(frozen=True)
class TableSync:
    """A table's rows, the newest day (or month) in it and its dataset's last load."""

    dataset: str
    table: str
    rows: int
    data_through: str | None
    last_load_at: datetime | None
    loads: int


@dataclass
class StackSpendFigures:
    """StackSpend's figures; a part is None when its table is not loaded."""

    dataset: str
    period: Period | None = None
    by_day: list[DaySpend] | None = None
    by_day_and_provider: list[ProviderDaySpend] | None = None
    by_provider: list[ProviderSpend] | None = None
    total: ProviderSpend | None = None
    top_services: list[Ranked] | None = None
    top_projects: list[Ranked] | None = None
    anomalies: list[Anomaly] | None = None
    anomaly_totals: AnomalyTotals | None = None
    reconciliation: list[ReconciledDay] | None = None


@dataclass
class LevelFourFigures:
    """LevelFour's cost per month and service, and per month."""

    dataset: str
    by_month_and_service: list[MonthCost]
    by_month: list[MonthCost]


@dataclass
class ReportData:
    """Everything the report shows."""

    where: str
    generated_at: datetime
    stackspend: StackSpendFigures | None
    levelfour: LevelFourFigures | None
    syncs: list[TableSync]
    missing: list[str]


def build_report_data(warehouse: Warehouse, datasets: Datasets) -> ReportData:
    """Run every query of the report over the datasets found."""
    stackspend = datasets.get("stackspend")
    levelfour = datasets.get("levelfour")
    return ReportData(
        where=warehouse.where,
        generated_at=datetime.now(UTC).replace(microsecond=0, tzinfo=None),
        stackspend=stackspend_figures(warehouse, stackspend) if stackspend else None,
        levelfour=levelfour_figures(warehouse, levelfour) if levelfour else None,
        syncs=table_syncs(warehouse, datasets),
        missing=list(datasets.missing),
    )


def stackspend_figures(warehouse: Warehouse, source: VendorDataset) -> StackSpendFigures:
    """StackSpend's figures from the tables `source` holds."""
    figures = StackSpendFigures(dataset=source.dataset)
    names = {name: warehouse.table(source.dataset, name) for name in source.tables}
    if source.has("line_items"):
        _line_item_figures(warehouse, figures, names["line_items"])
    if source.has("anomalies"):
        sql = {"anomalies": names["anomalies"]}
        figures.anomalies = [Anomaly(*row) for row in warehouse.rows(ANOMALIES.format(**sql))]
        figures.anomaly_totals = AnomalyTotals(*warehouse.rows(ANOMALY_TOTALS.format(**sql))[0])
    if source.has("line_items") and source.has("daily_rollups"):
        by_day = RECONCILIATION_BY_DAY.format(**names)
        figures.reconciliation = [ReconciledDay(*row) for row in warehouse.rows(by_day)]
    return figures


def _line_item_figures(warehouse: Warehouse, figures: StackSpendFigures, table: str) -> None:
    def query(sql: str, **names: str) -> list[tuple[Any, ...]]:
        return warehouse.rows(sql.format(line_items=table, **names))

    period = query(PERIOD)[0]
    figures.period = Period(*period) if period[0] is not None else None
    figures.by_day = [DaySpend(*row) for row in query(SPEND_BY_DAY)]
    figures.by_day_and_provider = [
        ProviderDaySpend(*row) for row in query(SPEND_BY_DAY_AND_PROVIDER)
    ]
    figures.by_provider = [ProviderSpend(*row) for row in query(SPEND_BY_PROVIDER)]
    figures.total = ProviderSpend(*query(SPEND_TOTAL)[0])
    for attribute, name in (("top_services", SERVICE_NAME), ("top_projects", PROJECT_NAME)):
        rows = query(TOP_BY_NAME, name=name, limit=str(TOP_N))
        setattr(figures, attribute, [Ranked(*row) for row in rows])


def levelfour_figures(warehouse: Warehouse, source: VendorDataset) -> LevelFourFigures:
    """LevelFour's cost per month and service (LevelFour's own previous_cost for the change)."""
    table = warehouse.table(source.dataset, "spending_breakdown")
    by_service = warehouse.rows(LEVELFOUR_BY_MONTH_AND_SERVICE.format(spending_breakdown=table))
    by_month = warehouse.rows(LEVELFOUR_BY_MONTH.format(spending_breakdown=table))
    return LevelFourFigures(
        dataset=source.dataset,
        by_month_and_service=[MonthCost(*row) for row in by_service],
        by_month=[MonthCost(*row) for row in by_month],
    )


def table_syncs(warehouse: Warehouse, datasets: Datasets) -> list[TableSync]:
    """Per table read: its rows, newest day, and its dataset's last dlt load."""
    syncs = []
    for source in datasets.found.values():
        last_load_at, loads = _last_load(warehouse, source.dataset)
        for name in source.vendor.resources:
            if not source.has(name):
                continue
            sql = TABLE_EXTENT[name].format(table=warehouse.table(source.dataset, name))
            rows, through = warehouse.rows(sql)[0]
            syncs.append(TableSync(source.dataset, name, rows, through, last_load_at, loads))
    return syncs


def _last_load(warehouse: Warehouse, dataset: str) -> tuple[datetime | None, int]:
    if "_dlt_loads" not in warehouse.tables(dataset):
        return None, 0
    last, loads = warehouse.rows(LAST_LOAD.format(loads=warehouse.table(dataset, "_dlt_loads")))[0]
    return last, loads
