"""What the CLI prints: a live progress line, the run summary, one-line errors."""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

from pipelines.runner import SyncResult
from pipelines.vendors import Vendor
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


def summary(result: SyncResult, where: str) -> str:
    """The success summary: rows per table and new incremental positions."""
    lines = [
        f"{result.pipeline_name} → {where}, dataset {result.dataset_name}: "
        f"{result.requests} requests, {result.loads} loads, {result.seconds:.1f} s"
    ]
    width = max((len(name) for name in result.rows), default=0)
    for name, count in result.rows.items():
        position = describe_position(result.positions.get(name, {}))
        lines.append(f"  {name:<{width}}  {count:>10,} rows  {position}".rstrip())
    if result.rate_limited:
        lines.append(f"  the API asked us to slow down {result.rate_limited} time(s)")
    return "\n".join(lines)


def describe_position(state: dict[str, Any]) -> str:
    """A resource's incremental position in words."""
    if state.get("synced_through"):
        text = f"synced {state.get('synced_from')}..{state['synced_through']}"
        if state.get("pending"):
            text += f", {len(state['pending'])} window(s) pending"
        return text
    if state.get("newest_detected_date"):
        return f"newest detected {state['newest_detected_date']}"
    if state.get("periods"):
        return f"periods {state['periods'][0]}..{state['periods'][-1]}"
    return ""


def explain_api_error(error: ApiError, vendor: Vendor, resources: list[str] | None) -> str:
    """One line: what the API refused, and how to fix it."""
    cause = str(error)
    return f"{cause} — {_fix(error, vendor, resources)}"


def _fix(error: ApiError, vendor: Vendor, resources: list[str] | None) -> str:
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


def _scope_fix(error: ScopeError, vendor: Vendor, resources: list[str] | None) -> str:
    needing = [name for name, scope in vendor.scopes.items() if scope == error.scope]
    keep = [name for name in (resources or vendor.resources) if name not in needing]
    fix = f"{', '.join(needing) or 'this resource'} needs scope {error.scope}: add it to the key"
    if keep:
        fix += f", or leave it out with --resources {','.join(keep)}"
    return fix
