"""The window plan: what each sync reads, resumes and re-reads."""

from __future__ import annotations

from datetime import date, timedelta

from sources.shared.windows import DayPlan, Window, split_range


def d(day: int) -> date:
    return date(2025, 1, 1) + timedelta(days=day - 1)


def test_split_range_covers_every_day_once() -> None:
    windows = split_range(d(1), d(70), 30)
    assert windows == [Window(d(1), d(30)), Window(d(31), d(60)), Window(d(61), d(70))]


def test_first_sync_plans_start_to_end() -> None:
    plan = DayPlan({})
    assert plan.plan(d(1), d(45), lookback_days=3, window_days=30) == [
        Window(d(1), d(30)),
        Window(d(31), d(45)),
    ]


def test_next_sync_rereads_the_lookback_days_then_new_days() -> None:
    state: dict = {}
    plan = DayPlan(state)
    for window in plan.plan(d(1), d(10), 3, 30):
        plan.complete(window)
    assert plan.plan(d(1), d(11), 3, 30) == [Window(d(8), d(11))]


def test_zero_lookback_reads_only_new_days() -> None:
    plan = DayPlan({"synced_from": d(1).isoformat(), "synced_through": d(10).isoformat()})
    assert plan.plan(d(1), d(12), 0, 30) == [Window(d(11), d(12))]


def test_interrupted_sync_resumes_at_the_next_window_without_rereading() -> None:
    state: dict = {}
    plan = DayPlan(state)
    windows = plan.plan(d(1), d(90), 3, 30)
    plan.complete(windows[0])  # killed after the first window
    assert plan.plan(d(1), d(91), 3, 30) == [
        Window(d(31), d(60)),
        Window(d(61), d(90)),
        Window(d(91), d(91)),
    ]


def test_an_earlier_start_date_backfills_only_the_missing_days() -> None:
    plan = DayPlan({"synced_from": d(10).isoformat(), "synced_through": d(20).isoformat()})
    assert plan.plan(d(1), d(20), 3, 30) == [Window(d(1), d(9)), Window(d(18), d(20))]


def test_lookback_never_overlaps_a_backfill() -> None:
    plan = DayPlan({"synced_from": d(10).isoformat(), "synced_through": d(12).isoformat()})
    assert plan.plan(d(1), d(12), 10, 30) == [Window(d(1), d(9)), Window(d(10), d(12))]


def test_complete_records_the_synced_range_and_drops_the_window() -> None:
    state: dict = {}
    plan = DayPlan(state)
    first, second = plan.plan(d(1), d(40), 3, 30)
    plan.complete(first)
    assert state["synced_from"] == "2025-01-01"
    assert state["synced_through"] == "2025-01-30"
    assert plan.pending() == [second]


def test_lookback_counts_back_from_the_newest_day_with_data() -> None:
    state: dict = {}
    plan = DayPlan(state)
    (window,) = plan.plan(d(1), d(30), 3, 30)
    plan.complete(window, [d(1), d(19), d(20)])  # the API's data ends on day 20
    assert plan.plan(d(1), d(31), 3, 30) == [Window(d(18), d(31))]
