"""What the CLI prints: a live progress line, the run summary, one-line errors."""

from __future__ import annotations

import sys
import time
from decimal import Decimal
from typing import Any, TextIO

from pipelines.runner import SyncResult
from sources.shared.errors import (
    AmountError,
    ApiError,
    AuthenticationError,
    ForbiddenError,
    PagingError,
    PlanRestrictedError,
    RateLimitedError,
    RequestValidationError,
    RetriesExhaustedError,
    SchemaChangeError,
    ScopeError,
)
from sources.shared.progress import SyncProgress
from sources.shared.vendor import VendorSpec


class ProgressLine:
    """Redraws one status line on a terminal; prints nothing when not a terminal."""

    def __init__(self, label: str, stream: TextIO = sys.stderr, every_seconds: float = 0.2) -> None:
        self.label = label
        self.stream = stream
        self.enabled = stream.isatty()
        self.every_seconds = every_seconds
        self._drawn_at = 0.0
        self._width = 0

    def __call__(self, progress: SyncProgress) -> None:
        now = time.monotonic()
        if not self.enabled or now - self._drawn_at < self.every_seconds:
            return
        self._drawn_at = now
        parts = [f"{name} {progress.window.get(name, '')}".strip() for name in progress.window]
        rows = sum(progress.rows.values())
        requests = progress.stats.requests
        line = f"{self.label}: {' | '.join(parts)} · {rows:,} rows · {requests} requests"
        self.stream.write("\r" + line.ljust(self._width))
        self.stream.flush()
        self._width = len(line)

    def clear(self) -> None:
        """Erase the line before the summary is printed."""
        if self.enabled and self._width:
            self.stream.write("\r" + " " * self._width + "\r")
            self.stream.flush()


def summary(result: SyncResult, where: str, vendor: VendorSpec) -> str:
    """The success summary: rows per table and new incremental positions."""
    lines = [
        f"{result.pipeline_name} → {where}, dataset {result.dataset_name}: "
        f"{result.requests} requests, {result.loads} loads, {result.seconds:.1f} s"
    ]
    width = max((len(name) for name in result.rows), default=0)
    for name, count in result.rows.items():
        position = vendor.describe_state(name, result.positions.get(name, {}))
        lines.append(f"  {name:<{width}}  {count:>10,} rows  {position}".rstrip())
    lines += describe_verification(result.verification, unreconciled_days(result.positions))
    if result.rate_limited:
        lines.append(f"  the API asked us to slow down {result.rate_limited} time(s)")
    return "\n".join(lines)


def describe_verification(
    report: dict[str, Any], unreconciled: dict[str, dict[str, str]]
) -> list[str]:
    """What a sync's verification checked, found and re-read, and the days that do not
    add up, in words (nothing when the sync verified nothing)."""
    lines = []
    if report.get("skipped"):
        lines.append(f"  verification skipped: {report['skipped']}")
    elif report.get("days"):
        unit = report.get("unit", "day")
        checked = f"{report['days']} {unit}{'s' if report['days'] != 1 else ''}"
        span = f" ({report['first']}..{report['last']})" if report.get("first") else ""
        found = _listed(report.get("changed", []), "changed")
        if report.get("reread"):
            found += f", {len(report['reread'])} re-read"
        requests = report.get("requests", 0)
        lines.append(f"  verified {checked}{span} with {requests} requests: {found}")
    for day, sums in sorted(unreconciled.items()):
        lines.append(
            f"  unreconciled {day}: line items {_usd(sums['line_items_usd'])}, service rollups"
            f" {_usd(sums['service_rollups_usd'])}, largest difference"
            f" {_usd(sums['difference_usd'])} (re-read again once its rollups change)"
        )
    return lines


def _usd(amount: str) -> str:
    return f"{Decimal(amount).normalize():f} USD"


def unreconciled_days(positions: dict[str, dict[str, Any]]) -> dict[str, dict[str, str]]:
    """The days whose line items do not add up to their rollups, from the positions."""
    return dict(positions.get("line_items", {}).get("unreconciled", {}))


def _listed(days: list[str], what: str) -> str:
    if not days:
        return f"none {what}"
    shown = ", ".join(days[:5]) + (f" and {len(days) - 5} more" if len(days) > 5 else "")
    return f"{len(days)} {what} ({shown})"


def explain_api_error(error: ApiError, vendor: VendorSpec, resources: list[str] | None) -> str:
    """One line: what the API refused, and how to fix it."""
    cause = str(error)
    return f"{cause} — {_fix(error, vendor, resources)}"


def _fix(error: ApiError, vendor: VendorSpec, resources: list[str] | None) -> str:
    key = f"{vendor.section}.api_key ({vendor.key_env})"
    if isinstance(error, ScopeError):
        return _scope_fix(error, vendor, resources)
    if isinstance(error, PlanRestrictedError):
        return f"the {vendor.label} workspace's plan has no API access; upgrade the plan"
    if isinstance(error, ForbiddenError):
        return f"the key was revoked or deleted; create a new one and set {key}"
    if isinstance(error, AuthenticationError):
        return f"{vendor.label} did not accept the key; check {key}"
    if isinstance(error, RequestValidationError):
        return "check the dates and settings passed (--start-date, --end-date, config)"
    if isinstance(error, RetriesExhaustedError) and isinstance(error.last, RateLimitedError):
        return f"lower {vendor.section}.requests_per_minute, or retry later"
    if isinstance(error, RetriesExhaustedError):
        return "the API kept failing; nothing was loaded from this window, run again later"
    if isinstance(error, AmountError):
        return "refused rather than stored inexactly; nothing was loaded from this window"
    if isinstance(error, PagingError | SchemaChangeError):
        return "the API's answers changed shape; nothing was loaded from this window"
    return "nothing was loaded from this window"


def _scope_fix(error: ScopeError, vendor: VendorSpec, resources: list[str] | None) -> str:
    needing = [name for name, scope in vendor.scopes.items() if scope == error.scope]
    keep = [name for name in (resources or vendor.resources) if name not in needing]
    fix = f"{', '.join(needing) or 'this resource'} needs scope {error.scope}: add it to the key"
    if keep:
        fix += f", or leave it out with --resources {','.join(keep)}"
    return fix
