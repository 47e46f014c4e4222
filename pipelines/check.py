"""`costsync check VENDOR [--workspace W]`: which resources each workspace's key can read.

One small request per resource and workspace, nothing loaded: the first thing
to run with a new key.
"""

from __future__ import annotations

import argparse

from dlt.common.configuration.exceptions import ConfigFieldMissingException

from sources.registry import VENDORS
from sources.shared.errors import ConfigError
from sources.shared.vendor import VendorSpec

EXIT_OK, EXIT_API = 0, 1


def command_check(args: argparse.Namespace) -> int:
    """Probe every chosen workspace; exit 0 when every key can read every resource."""
    vendor = VENDORS[args.vendor]
    names = [vendor.pipeline_name(w) for w in _workspaces(vendor, args.workspace)]
    found = {name: _probe(vendor, name) for name in names}
    for name, readable in found.items():
        print(f"{name}: " + ", ".join(_shown(r, why) for r, why in readable.items()))
    return EXIT_OK if all(why is None for r in found.values() for why in r.values()) else EXIT_API


def _workspaces(vendor: VendorSpec, chosen: str | None) -> list[str | None]:
    configured = vendor.workspaces()
    if chosen is not None and chosen not in configured:
        listed = ", ".join(configured) or "none"
        raise ConfigError(
            f"{vendor.section}.workspaces", f"lists no workspace {chosen!r} (configured: {listed})"
        )
    if chosen is not None:
        return [chosen]
    return [*configured] or [None]


def _probe(vendor: VendorSpec, pipeline_name: str) -> dict[str, str | None]:
    workspace = pipeline_name != vendor.name
    try:
        return vendor.probe(pipeline_name if workspace else None)
    except ConfigFieldMissingException as error:
        field = (error.fields or ["api_key"])[0]
        prefix = f"{pipeline_name.upper()}__" if workspace else ""
        env = f"{prefix}SOURCES__{vendor.name.upper()}__{field.upper()}"
        raise ConfigError(
            f"{pipeline_name}: {vendor.section}.{field}", f"is missing: set {env}"
        ) from None


def _shown(resource: str, why: str | None) -> str:
    return f"{resource} readable" if why is None else f"{resource} NOT readable ({why})"
