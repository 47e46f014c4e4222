"""The report's charts: plotly figures drawn from the exact figures.

Charts plot floats; every amount a chart's hover labels show is the exact
decimal rounded to the cent (see `money`).
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import ROUND_HALF_UP, Decimal

import plotly.graph_objects as go
from plotly.colors import qualitative

from pipelines.report.figures import Anomaly, DaySpend, MonthCost, ProviderDaySpend, Ranked

CENT = Decimal("0.01")
HEIGHT = 380
CREDITS_COLOR = "#7f7f7f"
SEVERITY_COLORS = {"low": "#2ca02c", "medium": "#ff7f0e", "high": "#d62728", "critical": "#7b0d1e"}
PLOTLY_CONFIG = {"displaylogo": False, "responsive": True}
# 48 distinct colours: a LevelFour breakdown has tens of services, plotly's default ten
MANY_COLORS = [*qualitative.Dark24, *qualitative.Light24]


def money(value: Decimal | None, signed: bool = False) -> str:
    """An exact amount rounded half away from zero to the cent, e.g. 1,234.57 ("—" for None)."""
    if value is None:
        return "—"
    cents = value.quantize(CENT, rounding=ROUND_HALF_UP)
    if not cents:
        cents = Decimal("0.00")
    return f"{cents:+,.2f}" if signed and cents else f"{cents:,.2f}"


def chart_html(figure: go.Figure, chart_id: str) -> str:
    """The figure as a `<div>` and the script that draws it (plotly.js is in the page once)."""
    figure.update_layout(
        template="plotly_white",
        height=HEIGHT,
        margin={"l": 70, "r": 30, "t": 30, "b": 50},
        legend={"orientation": "h", "y": -0.18},
        font={"family": "system-ui, -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif"},
    )
    return str(
        figure.to_html(
            full_html=False,
            include_plotlyjs=False,
            div_id=chart_id,
            config=PLOTLY_CONFIG,
            default_height=f"{HEIGHT}px",
        )
    )


def daily_spend(by_provider: Sequence[ProviderDaySpend], by_day: Sequence[DaySpend]) -> go.Figure:
    """Charges per day stacked by provider; the day's credits apart, below zero; the net."""
    figure = go.Figure()
    for provider in sorted({row.provider for row in by_provider}):
        rows = [row for row in by_provider if row.provider == provider]
        _add_bar(figure, provider, [r.usage_date for r in rows], [r.charges for r in rows])
    figure.add_bar(
        name="credits",
        x=[row.usage_date for row in by_day],
        y=[float(row.credits) for row in by_day],
        marker_color=CREDITS_COLOR,
        customdata=[money(row.credits) for row in by_day],
        hovertemplate="credits: %{customdata} USD<extra></extra>",
    )
    figure.add_scatter(
        name="net",
        mode="lines",
        x=[row.usage_date for row in by_day],
        y=[float(row.net) for row in by_day],
        line={"color": "#222", "width": 1.5},
        customdata=[money(row.net) for row in by_day],
        hovertemplate="net: %{customdata} USD<extra></extra>",
    )
    figure.update_layout(barmode="relative", hovermode="x unified", yaxis_title="USD")
    return figure


def ranked(rows: Sequence[Ranked], what: str) -> go.Figure:
    """Horizontal bars of net spend over the period, largest on top."""
    shown = list(reversed(rows))
    figure = go.Figure(
        go.Bar(
            orientation="h",
            x=[float(row.total) for row in shown],
            y=[row.name for row in shown],
            customdata=[money(row.total) for row in shown],
            hovertemplate=f"{what} %{{y}}: %{{customdata}} USD<extra></extra>",
            marker_color="#1f77b4",
        )
    )
    figure.update_layout(xaxis_title="USD over the period", yaxis={"automargin": True})
    return figure


def anomaly_timeline(by_day: Sequence[DaySpend] | None, anomalies: Sequence[Anomaly]) -> go.Figure:
    """Each anomaly at its detection time, by its excess over expected, over the daily net."""
    figure = go.Figure()
    if by_day:
        figure.add_scatter(
            name="daily net spend",
            mode="lines",
            x=[row.usage_date for row in by_day],
            y=[float(row.net) for row in by_day],
            line={"color": "#9ab"},
            customdata=[money(row.net) for row in by_day],
            hovertemplate="%{x}: net %{customdata} USD<extra></extra>",
        )
    for severity in sorted({a.severity for a in anomalies}, key=_severity_rank):
        shown = [a for a in anomalies if a.severity == severity and a.excess is not None]
        figure.add_scatter(
            name=f"{severity} anomaly",
            mode="markers",
            yaxis="y2",
            x=[a.detected_at for a in shown],
            y=[float(a.excess or 0) for a in shown],
            marker={"size": 10, "color": SEVERITY_COLORS.get(severity, "#444")},
            customdata=[_anomaly_label(a) for a in shown],
            hovertemplate="%{customdata}<extra></extra>",
        )
    figure.update_layout(
        yaxis={"title": "daily net spend, USD", "rangemode": "tozero"},
        yaxis2={
            "title": "excess over expected, USD",
            "overlaying": "y",
            "side": "right",
            "tickmode": "auto",
            "showgrid": False,
            "rangemode": "tozero",
        },
    )
    return figure


def levelfour_by_month(rows: Sequence[MonthCost]) -> go.Figure:
    """LevelFour cost per month stacked by service."""
    figure = go.Figure()
    for service in sorted({row.service for row in rows}):
        shown = [row for row in rows if row.service == service]
        _add_bar(figure, service, [r.period for r in shown], [r.cost for r in shown])
    figure.update_layout(
        barmode="stack", xaxis={"type": "category"}, yaxis_title="USD", colorway=MANY_COLORS
    )
    return figure


def _severity_rank(severity: str) -> tuple[int, str]:
    order = list(SEVERITY_COLORS)
    return (order.index(severity) if severity in order else len(order), severity)


def _anomaly_label(anomaly: Anomaly) -> str:
    return (
        f"{anomaly.detected_at:%Y-%m-%d %H:%M} UTC {anomaly.provider} / {anomaly.service}"
        f"<br>{anomaly.severity}, {anomaly.status}: actual {money(anomaly.actual_cost)},"
        f" expected {money(anomaly.expected_cost)}, excess {money(anomaly.excess, signed=True)} USD"
    )


def _add_bar(figure: go.Figure, name: str, x: Sequence[object], amounts: Sequence[Decimal]) -> None:
    """One stacked series: plotted as floats, shown on hover as exact cents."""
    figure.add_bar(
        name=name,
        x=list(x),
        y=[float(amount) for amount in amounts],
        customdata=[money(amount) for amount in amounts],
        hovertemplate=f"{name}: %{{customdata}} USD<extra></extra>",
    )
