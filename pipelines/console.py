"""What the CLI prints: a live progress line, the run summary, one-line errors."""

from __future__ import annotations

import sys
from collections.abc import Callable
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from pipelines.runner import SyncResult
from sources.shared.errors import (
    AmountError,
    ApiError,
    AuthenticationError,
    ConfigError,
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

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress


class ProgressDisplay:
    """One live line per sync on a terminal (rich's progress: width-aware, redrawn in
    place), nothing when the stream is not a terminal (piped, cron).

    Each line: the sync, a bar and windows done of planned, rows, requests and the
    time left at the requests' pace.

        with ProgressDisplay() as display:
            runner.sync(prepared, progress=SyncProgress(listeners=[display.track("acme")]))
    """

    def __init__(self, console: Console | None = None) -> None:
        self.progress: Progress | None = None
        if console is None and not sys.stderr.isatty():
            return  # piped or under cron: nothing drawn, and rich is not even loaded
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn
        from rich.table import Column

        self.console = console or Console(stderr=True)
        self.progress = Progress(
            TextColumn("{task.description}", table_column=Column(no_wrap=True, ratio=2)),
            BarColumn(bar_width=None, table_column=Column(ratio=1)),
            TextColumn("{task.fields[detail]}", table_column=Column(no_wrap=True, ratio=3)),
            console=self.console,
            disable=not self.console.is_terminal,
            transient=True,
            expand=True,
        )

    def __enter__(self) -> ProgressDisplay:
        if self.progress is not None:
            self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.progress is not None:
            self.progress.stop()

    def track(self, label: str) -> Callable[[SyncProgress], None]:
        """A listener drawing one sync's line, labelled `label`."""
        if self.progress is None:
            return lambda progress: None
        shown = self.progress
        task = shown.add_task(label, total=None, detail="starting")

        def draw(progress: SyncProgress) -> None:
            done, planned = progress.windows
            left = progress.seconds_left()
            eta = f" · {_duration(left)} left" if left is not None else ""
            detail = (
                f"{done}/{planned} windows · {sum(progress.rows.values()):,} rows"
                f" · {progress.stats.requests:,} requests{eta}"
            )
            shown.update(task, completed=done, total=planned or None, detail=detail)

        return draw


def _duration(seconds: float) -> str:
    minutes, rest = divmod(int(seconds + 0.5), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{rest:02d}" if hours else f"{minutes}:{rest:02d}"


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
    if result.retries:
        slowed = (
            f", {result.rate_limited} of them asked to slow down" if result.rate_limited else ""
        )
        lines.append(f"  {result.retries} request(s) retried{slowed}")
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


def explain_api_error(
    error: ApiError,
    vendor: VendorSpec,
    resources: list[str] | None,
    workspace: str | None = None,
) -> str:
    """One line: what the API refused, and how to fix it."""
    return f"{error} — {_fix(error, vendor, resources, workspace)}"


def root_cause(error: BaseException) -> BaseException:
    """The first ApiError or ConfigError in the chain, else the innermost error."""
    seen: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and current not in seen:
        if isinstance(current, ApiError | ConfigError):
            return current
        seen.append(current)
        current = getattr(current, "exception", None) or current.__cause__ or current.__context__
    return seen[-1]


def _fix(
    error: ApiError, vendor: VendorSpec, resources: list[str] | None, workspace: str | None
) -> str:
    section = f"{vendor.pipeline_name(workspace)}.{vendor.section}" if workspace else vendor.section
    key = f"{section}.api_key ({vendor.key_env_of(workspace)})"
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
        return (
            "the API's answers changed shape; nothing was loaded from this window: run again"
            f" later, and report it to {vendor.label} if it persists"
        )
    return "nothing was loaded from this window"


def _scope_fix(error: ScopeError, vendor: VendorSpec, resources: list[str] | None) -> str:
    needing = [name for name, scope in vendor.scopes.items() if scope == error.scope]
    keep = [name for name in (resources or vendor.resources) if name not in needing]
    fix = f"{', '.join(needing) or 'this resource'} needs scope {error.scope}: add it to the key"
    if keep:
        fix += f", or leave it out with --resources {','.join(keep)}"
    return fix
