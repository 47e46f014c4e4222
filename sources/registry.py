"""Every vendor costsync syncs. Adding one: a folder under `sources/` (its source,
client and settings, ending with a `VendorSpec`), its sandbox, and a line here."""

from __future__ import annotations

from sources import levelfour, stackspend
from sources.shared.vendor import VendorSpec

VENDORS: dict[str, VendorSpec] = {
    spec.name: spec
    for spec in (
        stackspend.SPEC,
        levelfour.SPEC,
    )
}
