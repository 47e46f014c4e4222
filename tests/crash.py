"""Run the costsync CLI and SIGKILL it at a chosen point, for crash-safety tests.

    python -m tests.crash POINT[@N] costsync-args...

POINT names a function and when to die: on entry or on return of its n-th
call (`@N` overrides which call). Nothing in costsync knows about this: the harness patches the
functions in this process before handing over to the CLI.
"""

from __future__ import annotations

import functools
import importlib
import os
import signal
import sys
import threading
from collections.abc import Callable
from typing import Any

# point: (module:qualified.name, "before" | "after", on which call)
POINTS: dict[str, tuple[str, str, int]] = {
    "first-page": ("sources.stackspend.client:StackSpendClient.line_items_page", "after", 1),
    "mid-window": ("sources.stackspend.client:StackSpendClient.line_items_page", "after", 2),
    "parsing": ("sources.stackspend.client:read_document", "before", 3),
    "window-end": ("sources.shared.windows:DayPlan.complete", "before", 1),
    "month-end": ("sources.shared.windows:MonthPlan.complete", "before", 2),
    "rollups": ("sources.stackspend.client:StackSpendClient.daily_rollups", "after", 2),
    "anomalies": ("sources.stackspend.client:StackSpendClient.anomalies", "after", 1),
    "second-window": ("sources.stackspend.client:StackSpendClient.line_items_page", "after", 5),
    "before-normalize": ("dlt.pipeline.pipeline:Pipeline.normalize", "before", 1),
    "normalizing": ("dlt.normalize.normalize:Normalize.spool_files", "before", 1),
    "after-normalize": ("dlt.normalize.normalize:Normalize.spool_files", "after", 1),
    "before-load": ("dlt.load.load:Load.load_single_package", "before", 1),
    "first-load-job": ("dlt.load.load:Load.w_run_job", "after", 1),
    "merge-sql": ("dlt.destinations.sql_client:SqlClientBase.execute_many", "after", 1),
    "complete-package": ("dlt.load.load:Load.complete_package", "before", 1),
    "second-load": ("dlt.load.load:Load.complete_package", "before", 2),
    # after the warehouse committed a job, before dlt recorded it: the job runs again
    "job-unrecorded": ("dlt.common.destination.client:RunnableLoadJob._release", "before", 1),
    "levelfour-page": ("sources.levelfour.client:LevelFourClient.breakdown", "after", 2),
}
# the same point at later calls: each load job in turn is the one run twice
LATER_CALLS = ("job-unrecorded@2", "job-unrecorded@3")
LEVELFOUR_POINTS = (
    "levelfour-page",
    "month-end",
    "before-load",
    "merge-sql",
    "second-load",
    "job-unrecorded",
    "job-unrecorded@2",
)


def arm(point: str) -> None:
    """Patch the function `point` names so the process dies there."""
    name, _, count = point.partition("@")
    target, when, nth = POINTS[name]
    nth = int(count) if count else nth
    module_name, qualified = target.split(":")
    owner: Any = importlib.import_module(module_name)
    *path, attribute = qualified.split(".")
    for part in path:
        owner = getattr(owner, part)
    setattr(owner, attribute, _killing(getattr(owner, attribute), when, nth))


def _killing(function: Callable[..., Any], when: str, nth: int) -> Callable[..., Any]:
    calls = 0
    lock = threading.Lock()

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        with lock:
            calls += 1
            due = calls == nth
        if due and when == "before":
            os.kill(os.getpid(), signal.SIGKILL)
        result = function(*args, **kwargs)
        if due and when == "after":
            os.kill(os.getpid(), signal.SIGKILL)
        return result

    return wrapper


if __name__ == "__main__":
    arm(sys.argv[1])
    from pipelines.cli import main

    main(sys.argv[2:])
