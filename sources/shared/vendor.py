"""The record each vendor exports for the pipelines: what it loads and how to run it.

Every `sources/<vendor>/__init__.py` ends with one `VendorSpec`; `sources.registry`
lists them. The CLI, status, the demo and the orchestrators read nothing else
about a vendor.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import dlt
from dlt.sources import DltSource

from sources.shared.errors import ConfigError

# A workspace NAME is the pipeline `<vendor>_NAME` and its dataset.
WORKSPACE_NAME = re.compile(r"[a-z][a-z0-9_]{0,39}")


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
        probe: makes one small request per resource with the key configured for a pipeline
            (its name, or None: the vendor's own; dlt config,
            section `sources.<name>`) and says which it cannot read: {resource: reason}.
    """

    name: str
    label: str
    source: Callable[..., DltSource]
    resources: tuple[str, ...]
    date_args: Callable[[date | None, date | None], dict[str, Any]]
    describe_state: Callable[[str, Mapping[str, Any]], str]
    probe: Callable[[str | None], dict[str, str | None]]
    scopes: Mapping[str, str] = field(default_factory=dict)
    bigquery_hints: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def pipeline_name(self, workspace: str | None = None) -> str:
        """The pipeline (and default dataset) of `workspace`, e.g. stackspend_acme."""
        return f"{self.name}_{workspace}" if workspace else self.name

    def workspaces(self) -> list[str]:
        """The workspaces configured in `sources.<name>.workspaces` (none: [])."""
        key = f"{self.section}.workspaces"
        value: Any = dlt.config.get(key)
        if value is None:
            return []
        names = json.loads(value) if isinstance(value, str) else value
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise ConfigError(key, 'must be a list of names, e.g. ["acme", "globex"]')
        for name in names:
            check_workspace(key, name)
        if len(set(names)) != len(names):
            raise ConfigError(key, "names a workspace twice")
        return list(names)

    def key_env_of(self, workspace: str | None = None) -> str:
        """The environment variable holding `workspace`'s API key."""
        prefix = f"{self.pipeline_name(workspace).upper()}__" if workspace else ""
        return f"{prefix}SOURCES__{self.name.upper()}__API_KEY"

    @property
    def section(self) -> str:
        """The config section, e.g. sources.stackspend."""
        return f"sources.{self.name}"

    @property
    def key_env(self) -> str:
        """The environment variable holding the API key."""
        return f"SOURCES__{self.name.upper()}__API_KEY"


def check_workspace(key: str, name: str) -> str:
    """A workspace name: it names a pipeline and a dataset, so a plain identifier."""
    if not WORKSPACE_NAME.fullmatch(name):
        raise ConfigError(
            key,
            f"workspace {name[:40]!r} must be lower-case letters, digits and _, starting"
            " with a letter, at most 40 characters",
        )
    return name


def describe_days(state: Mapping[str, Any]) -> str:
    """The position of a resource read in windows of days (see `DayPlan`), in words."""
    if not state.get("synced_through"):
        return ""
    text = f"synced {state.get('synced_from')}..{state['synced_through']}"
    if state.get("pending"):
        text += f", {len(state['pending'])} window(s) pending"
    return text
