"""The vendors costsync syncs: each one's source, resources and config section."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

from dlt.sources import DltSource

from sources.levelfour import levelfour_source
from sources.stackspend import stackspend_source
from sources.stackspend.settings import RESOURCE_SCOPES as STACKSPEND_SCOPES


@dataclass(frozen=True)
class Vendor:
    """How the CLI drives one vendor's source."""

    name: str
    label: str
    source: Callable[..., DltSource]
    resources: tuple[str, ...]
    scopes: dict[str, str]
    date_args: Callable[[date | None, date | None], dict[str, Any]]

    @property
    def section(self) -> str:
        """The config section, e.g. sources.stackspend."""
        return f"sources.{self.name}"

    @property
    def key_env(self) -> str:
        """The environment variable holding the API key."""
        return f"SOURCES__{self.name.upper()}__API_KEY"


def _stackspend_dates(start: date | None, end: date | None) -> dict[str, Any]:
    args: dict[str, Any] = {}
    if start:
        args["start_date"] = start.isoformat()
    if end:
        args["end_date"] = end.isoformat()
    return args


STACKSPEND = Vendor(
    name="stackspend",
    label="StackSpend",
    source=stackspend_source,
    resources=("line_items", "daily_rollups", "anomalies"),
    scopes=STACKSPEND_SCOPES,
    date_args=_stackspend_dates,
)


def _levelfour_periods(start: date | None, end: date | None) -> dict[str, Any]:
    args: dict[str, Any] = {}
    if start:
        args["start_period"] = start.strftime("%Y-%m")
    if end:
        args["end_period"] = end.strftime("%Y-%m")
    return args


LEVELFOUR = Vendor(
    name="levelfour",
    label="LevelFour",
    source=levelfour_source,
    resources=("spending_breakdown",),
    scopes={},
    date_args=_levelfour_periods,
)

VENDORS: dict[str, Vendor] = {vendor.name: vendor for vendor in (STACKSPEND, LEVELFOUR)}
