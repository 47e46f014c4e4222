"""The record each vendor exports for the pipelines: what it loads and how to run it.

Every `sources/<vendor>/__init__.py` ends with one `VendorSpec`; `sources.registry`
lists them. The CLI, status, the demo and the orchestrators read nothing else
about a vendor.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from dlt.sources import DltSource


@dataclass(frozen=True)
class VendorSpec:
    """One vendor costsync syncs.

    Attributes:
        name: the dlt source's name: the pipeline, dataset and config section
            (`sources.<name>`) are named after it.
        label: the vendor's name as it writes it, for messages.
        source: the `@dlt.source` function.
        resources: its resources (tables), in load order.
        scopes: the API scope each resource needs, where the API has scopes.
        date_args: the source arguments for `--start-date`/`--end-date` (days or None).
        describe_state: a resource's incremental position (its dlt state) in words.
        bigquery_hints: per resource, `bigquery_adapter` arguments (partition, cluster).
    """

    name: str
    label: str
    source: Callable[..., DltSource]
    resources: tuple[str, ...]
    date_args: Callable[[date | None, date | None], dict[str, Any]]
    describe_state: Callable[[str, Mapping[str, Any]], str]
    scopes: Mapping[str, str] = field(default_factory=dict)
    bigquery_hints: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    @property
    def section(self) -> str:
        """The config section, e.g. sources.stackspend."""
        return f"sources.{self.name}"

    @property
    def key_env(self) -> str:
        """The environment variable holding the API key."""
        return f"SOURCES__{self.name.upper()}__API_KEY"


def describe_days(state: Mapping[str, Any]) -> str:
    """The position of a resource read in windows of days (see `DayPlan`), in words."""
    if not state.get("synced_through"):
        return ""
    text = f"synced {state.get('synced_from')}..{state['synced_through']}"
    if state.get("pending"):
        text += f", {len(state['pending'])} window(s) pending"
    return text
