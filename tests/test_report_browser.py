"""The report in a real browser: Debian's headless Chromium, with networking off.

Playwright drives /usr/bin/chromium (never a browser it downloads). Every
request that is not the report's own file is blocked and recorded. Without
Chromium the browser test skips with the reason, except under CI=true.
"""

from __future__ import annotations

import contextlib
import io
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageStat
from playwright.sync_api import Page, Route, sync_playwright
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

from pipelines import report
from pipelines.report.figures import ReportData
from pipelines.report.page import plotly_js
from tests.conftest import Env

CHROMIUM = Path("/usr/bin/chromium")
# As root, on a machine whose only network is loopback (Chromium's background
# requests would otherwise be refused at every start).
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Per chart: the plotly graph, its SVG, its traces and its drawn marks (bars, markers, lines).
CHART_ELEMENTS = """() => [...document.querySelectorAll('[data-chart]')].map(chart => ({
    name: chart.dataset.chart,
    graphs: chart.querySelectorAll('.js-plotly-plot').length,
    svgs: chart.querySelectorAll('.js-plotly-plot svg.main-svg').length,
    traces: chart.querySelectorAll('.js-plotly-plot g.trace').length,
    bars: chart.querySelectorAll('.js-plotly-plot g.trace.bars g.point').length,
    markers: chart.querySelectorAll('.js-plotly-plot g.trace.scatter path.point').length,
    lines: chart.querySelectorAll('.js-plotly-plot g.trace.scatter path.js-line').length,
}))"""
ALL_CHARTS_DRAWN = """() => [...document.querySelectorAll('[data-chart]')]
    .every(chart => chart.querySelector('.js-plotly-plot svg.main-svg g.trace'))"""


@dataclass
class Rendered:
    """What Chromium did with the report."""

    requests: list[str] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    charts: list[dict[str, Any]] = field(default_factory=list)
    screenshot: bytes = b""
    chart_screenshots: dict[str, bytes] = field(default_factory=dict)


@pytest.fixture
def chromium() -> Path:
    """Debian's Chromium; missing, the test skips, except under CI=true (.ci/run installs it)."""
    if os.access(CHROMIUM, os.X_OK):
        return CHROMIUM
    reason = f"no Chromium at {CHROMIUM} (apt-get install -y chromium)"
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason}; CI=true requires the browser test to run")
    pytest.skip(reason)


@pytest.fixture
def written(env: Env) -> Iterator[tuple[Path, ReportData]]:
    """Both vendors synced from the sandbox and `costsync report` written from them."""
    for vendor in ("stackspend", "levelfour"):
        result = env.sync(vendor)
        assert result.code == 0, result.err
    output = env.duckdb_path.with_name("costsync_report.html")
    path, _, data = report.write_report("duckdb", str(env.duckdb_path), None, output)
    yield path, data


def render(chromium: Path, report_file: Path, profile: Path) -> Rendered:
    """Open the report in headless Chromium with networking off; what it requested and drew."""
    rendered = Rendered()
    url = report_file.as_uri()

    def only_the_file(route: Route) -> None:
        if route.request.url == url:
            route.continue_()
        else:
            rendered.blocked.append(route.request.url)
            route.abort("internetdisconnected")

    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            profile,  # a new, empty user data dir
            executable_path=str(chromium),
            headless=True,
            args=CHROMIUM_FLAGS,
            offline=True,
            service_workers="block",
            viewport={"width": 1280, "height": 900},
        )
        try:
            context.route("**/*", only_the_file)
            page = context.new_page()
            page.on("request", lambda request: rendered.requests.append(request.url))
            page.on(
                "console", lambda m: m.type == "error" and rendered.console_errors.append(m.text)
            )
            page.on("pageerror", lambda error: rendered.page_errors.append(str(error)))
            page.goto(url, wait_until="load")
            with contextlib.suppress(PlaywrightTimeoutError):  # the assertions say what is missing
                page.wait_for_function(ALL_CHARTS_DRAWN, timeout=30_000)
            _look(page, rendered)
        finally:
            context.close()
    return rendered


def _look(page: Page, rendered: Rendered) -> None:
    rendered.charts = page.evaluate(CHART_ELEMENTS)
    rendered.screenshot = page.screenshot(full_page=True)
    for chart in page.locator("[data-chart]").all():
        name = chart.get_attribute("data-chart") or ""
        rendered.chart_screenshots[name] = chart.screenshot()


def not_blank(png: bytes) -> bool:
    """Whether a screenshot shows something: varied grey levels and many colours."""
    image = Image.open(io.BytesIO(png)).convert("RGB")
    spread = ImageStat.Stat(image.convert("L")).stddev[0]
    colours = image.getcolors(maxcolors=1 << 24) or []
    return spread > 10 and len(colours) > 50


def test_chromium_draws_every_chart_offline_without_errors(
    chromium: Path, written: tuple[Path, ReportData], tmp_path: Path
) -> None:
    report_file, data = written
    rendered = render(chromium, report_file, tmp_path / "chromium-profile")

    assert rendered.requests == [report_file.as_uri()]  # the file itself, nothing else
    assert rendered.blocked == []
    assert rendered.console_errors == []
    assert rendered.page_errors == []

    charts = {chart["name"]: chart for chart in rendered.charts}
    assert list(charts) == ["daily-spend", "top-services", "top-projects", "anomalies", "levelfour"]
    for chart in charts.values():
        assert (chart["graphs"], chart["svgs"] >= 1, chart["traces"] >= 1) == (1, True, True)
    ss, l4 = data.stackspend, data.levelfour
    assert ss is not None and l4 is not None
    assert ss.by_day_and_provider and ss.by_day and ss.anomalies
    # Every bar, marker and line of the figures is in the DOM.
    assert charts["daily-spend"]["bars"] == len(ss.by_day_and_provider) + len(ss.by_day)
    assert charts["daily-spend"]["lines"] == 1
    assert charts["top-services"]["bars"] == len(ss.top_services or []) == 10
    assert charts["top-projects"]["bars"] == len(ss.top_projects or []) == 10
    assert charts["anomalies"]["markers"] == len(ss.anomalies)
    assert charts["anomalies"]["lines"] == 1
    assert charts["levelfour"]["bars"] == len(l4.by_month_and_service)

    assert not_blank(rendered.screenshot)
    assert set(rendered.chart_screenshots) == set(charts)
    assert all(not_blank(png) for png in rendered.chart_screenshots.values())


class References(HTMLParser):
    """Every attribute that can point elsewhere, `<script>` sources and the page's CSS."""

    LINKING = {"src", "href", "srcset", "action", "data", "poster", "background"}

    def __init__(self, page: str) -> None:
        super().__init__()
        self.links: list[tuple[str, str, str | None]] = []
        self.tags: list[str] = []
        self.styles: list[str] = []
        self._in_style = False
        self.feed(page)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self._in_style = tag == "style"
        self.links += [(tag, name, value) for name, value in attrs if name in self.LINKING]

    def handle_endtag(self, tag: str) -> None:
        self._in_style = False if tag == "style" else self._in_style

    def handle_data(self, data: str) -> None:
        if self._in_style:
            self.styles.append(data)


def test_the_file_references_nothing_outside_itself(written: tuple[Path, ReportData]) -> None:
    report_file, _ = written
    page = report_file.read_text()
    found = References(page)
    assert found.links == []
    assert not {"link", "iframe", "img", "object", "embed", "base"} & set(found.tags)
    assert not any("url(" in css or "@import" in css or "@font-face" in css for css in found.styles)
    assert page.count(plotly_js()) == 1  # plotly.js inline, once
    assert found.tags.count("script") == 1 + page.count("data-chart=")
