"""The report page: one HTML file with plotly.js inline, nothing fetched from outside."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import jinja2
import plotly.offline

from pipelines.report import charts
from pipelines.report.figures import LevelFourFigures, MonthCost, ReportData, StackSpendFigures


@dataclass(frozen=True)
class ServiceRow:
    """A LevelFour service's cost per month shown, and its latest month against previous_cost."""

    service: str
    costs: list[Decimal | None]
    latest: MonthCost | None


def render(data: ReportData) -> str:
    """The whole report page for `data`."""
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("pipelines.report", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters["money"] = charts.money
    environment.filters["month"] = month_label
    template = environment.get_template("report.html.j2")
    return template.render(
        data=data,
        plotly_js=plotly_js(),
        charts=stackspend_charts(data.stackspend) | levelfour_charts(data.levelfour),
        levelfour=levelfour_table(data.levelfour) if data.levelfour else None,
        current_period=datetime.now(UTC).strftime("%Y-%m"),
    )


def write(data: ReportData, output: Path) -> int:
    """Write the report to `output`; its size in bytes."""
    page = render(data).encode()
    output.write_bytes(page)
    return len(page)


def plotly_js() -> str:
    """plotly.js from the plotly package, to inline in a `<script>` element."""
    source = str(plotly.offline.get_plotlyjs())
    # An inline script ends at the first "</script"; plotly.js has none, keep it so.
    return source.replace("</script", "<\\/script")


def stackspend_charts(figures: StackSpendFigures | None) -> dict[str, str]:
    """The StackSpend charts there are figures for, by element id."""
    if figures is None:
        return {}
    found: dict[str, str] = {}
    if figures.by_day_and_provider and figures.by_day:
        daily = charts.daily_spend(figures.by_day_and_provider, figures.by_day)
        found["chart-daily-spend"] = charts.chart_html(daily, "chart-daily-spend")
    if figures.top_services:
        services = charts.ranked(figures.top_services, "service")
        found["chart-top-services"] = charts.chart_html(services, "chart-top-services")
    if figures.top_projects:
        projects = charts.ranked(figures.top_projects, "project")
        found["chart-top-projects"] = charts.chart_html(projects, "chart-top-projects")
    if figures.anomalies:
        timeline = charts.anomaly_timeline(figures.by_day, figures.anomalies)
        found["chart-anomalies"] = charts.chart_html(timeline, "chart-anomalies")
    return found


def levelfour_charts(figures: LevelFourFigures | None) -> dict[str, str]:
    """The LevelFour chart, when there are figures for it."""
    if figures is None or not figures.by_month_and_service:
        return {}
    by_month = charts.levelfour_by_month(figures.by_month_and_service)
    return {"chart-levelfour": charts.chart_html(by_month, "chart-levelfour")}


def levelfour_table(figures: LevelFourFigures) -> dict[str, object]:
    """Cost per service (rows) and month (columns); the latest month's change by service."""
    periods = [row.period for row in figures.by_month]
    cells = {(row.service, row.period): row for row in figures.by_month_and_service}
    latest = periods[-1] if periods else None
    services = sorted({row.service for row in figures.by_month_and_service})
    rows = [
        ServiceRow(
            service=service,
            costs=[cells[service, p].cost if (service, p) in cells else None for p in periods],
            latest=cells.get((service, latest)) if latest else None,
        )
        for service in services
    ]
    rows.sort(key=lambda row: (-(row.latest.cost if row.latest else Decimal(0)), row.service))
    return {"periods": periods, "rows": rows, "totals": figures.by_month}


def month_label(value: date) -> str:
    """A month as YYYY-MM."""
    return value.strftime("%Y-%m")
