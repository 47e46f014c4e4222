"""When the API's answers change shape: new fields, changed types, broken paging."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from functools import partial
from typing import Any

import pytest

from sandbox.common import to_json
from sandbox.http import Request, Response
from sandbox.stackspend import ANOMALIES_PATH, LINE_ITEMS_PATH, StackSpendSandbox
from tests.conftest import TODAY, Env
from tests.stackspend.test_sync import START, counts, state_of
from tests.warehouse import PostgresWarehouse, rows, table_exists

Rewrite = Callable[[dict[str, Any]], dict[str, Any]]


class Drifting:
    """The StackSpend sandbox with its line-item pages rewritten by `rewrite`."""

    def __init__(self, app: StackSpendSandbox) -> None:
        self.app = app
        self.rewrite: Rewrite | None = None
        self.replay_cursor: str | None = None

    def handle(self, request: Request) -> Response | None:
        if self.replay_cursor and request.param("cursor") == self.replay_cursor:
            query = {k: v for k, v in request.query.items() if k != "cursor"}
            request = dataclasses.replace(request, query=query)
        response = self.app.handle(request)
        if self.rewrite and response and request.path == LINE_ITEMS_PATH and response.status == 200:
            body = self.rewrite(json.loads(response.body, parse_float=Decimal))
            response.body = to_json(body).encode()
        return response

    def __getattr__(self, name: str) -> Any:
        return getattr(self.app, name)


@pytest.fixture
def stackspend_app() -> Drifting:
    return Drifting(
        StackSpendSandbox(seed=7, start_date=START, end_date=TODAY, line_items_per_day=150)
    )


def each_item(change: Callable[[dict[str, Any]], None]) -> Rewrite:
    def rewrite(body: dict[str, Any]) -> dict[str, Any]:
        for item in body["data"]:
            change(item)
        return body

    return rewrite


def test_a_new_field_becomes_a_new_column_old_rows_null(env: Env) -> None:
    assert env.sync().code == 0
    env.stackspend.rewrite = each_item(lambda item: item.update(region="us-east-1", tier=2))
    assert env.sync().code == 0
    cutoff = (TODAY - timedelta(days=2)).isoformat()
    found = rows(
        env.duckdb_path,
        f"SELECT usage_date >= DATE '{cutoff}' AS reread, COUNT(*), COUNT(region),"
        " COUNT(tier), MIN(region) FROM stackspend.line_items GROUP BY ALL ORDER BY reread",
    )
    (old, old_count, old_regions, old_tiers, _), (new, new_count, regions, tiers, region) = found
    assert (old, old_regions, old_tiers) == (False, 0, 0) and old_count > 0
    assert (new, regions, tiers, region) == (True, new_count, new_count, "us-east-1")


@pytest.mark.parametrize("changed", ["12.48 USD", {"amount": "12.48"}, [1, 2]])
def test_a_field_that_changes_type_fails_with_a_schema_message(env: Env, changed: object) -> None:
    assert env.sync().code == 0
    before, state_before = counts(env), state_of(env)
    env.stackspend.rewrite = each_item(lambda item: item.update(net_amount_usd=changed))
    result = env.sync()
    assert result.code == 1
    assert "field 'net_amount_usd' is now" in result.err and "expected a number" in result.err
    assert "changed shape" in result.err
    assert len(result.err.strip().splitlines()) == 1
    assert counts(env) == before and state_of(env) == state_before


def test_has_more_without_a_next_cursor_is_a_clear_error(env: Env) -> None:
    def no_cursor(body: dict[str, Any]) -> dict[str, Any]:
        body["meta"] = {"has_more": True, "next_cursor": None}
        return body

    env.stackspend.rewrite = no_cursor
    result = env.sync()
    assert result.code == 1
    assert "has_more is true but no next_cursor" in result.err


def test_a_cursor_that_repeats_is_a_clear_error_not_an_endless_loop(env: Env) -> None:
    def same_cursor(body: dict[str, Any]) -> dict[str, Any]:
        body["meta"] = {"has_more": True, "next_cursor": "again"}
        return body

    env.stackspend.rewrite = same_cursor
    env.stackspend.replay_cursor = "again"
    result = env.sync()
    assert result.code == 1
    assert "next_cursor repeats an earlier one" in result.err
    assert env.stackspend.request_count(LINE_ITEMS_PATH) <= 4


def test_a_line_item_moved_to_a_reread_day_leaves_its_old_day(env: Env) -> None:
    assert env.sync().code == 0
    first_day = f"SELECT MIN(id) FROM stackspend.line_items WHERE usage_date = DATE '{START}'"
    (moved,) = rows(env.duckdb_path, first_day)
    today = TODAY.isoformat()

    def move(body: dict[str, Any]) -> dict[str, Any]:
        todays = [item for item in body["data"] if item["usage_date"] == today]
        if todays:
            body["data"].append({**todays[0], "id": moved[0], "net_amount_usd": Decimal("7.5")})
        return body

    env.stackspend.rewrite = move
    assert env.sync().code == 0
    found = rows(
        env.duckdb_path,
        f"SELECT usage_date, net_amount_usd FROM stackspend.line_items WHERE id = '{moved[0]}'",
    )
    assert [(str(day), amount) for day, amount in found] == [(today, Decimal("7.5"))]
    duplicates = rows(
        env.duckdb_path, "SELECT COUNT(*) - COUNT(DISTINCT id) FROM stackspend.line_items"
    )
    assert duplicates == [(0,)]


def served_again_later(amount: Decimal) -> tuple[Rewrite, list[str]]:
    """A rewrite that serves each page's first line item again, with `amount`, at the end
    of the next page; returns it and the ids it served twice."""
    repeated: list[str] = []
    previous: list[dict[str, Any]] = []

    def rewrite(body: dict[str, Any]) -> dict[str, Any]:
        if previous:
            body["data"].append({**previous[0], "net_amount_usd": amount})
            repeated.append(previous[0]["id"])
        previous[:] = body["data"][:1]
        return body

    return rewrite, repeated


@pytest.mark.parametrize("destination", ["duckdb", "postgres"])
def test_a_line_item_served_twice_in_one_window_keeps_the_copy_served_last(
    env: Env, destination: str, request: pytest.FixtureRequest
) -> None:
    env.stackspend.rewrite, repeated = served_again_later(Decimal("7.25"))
    if destination == "duckdb":
        assert env.sync().code == 0
        table, query = "stackspend.line_items", partial(rows, env.duckdb_path)
    else:
        datasets = request.getfixturevalue("pg_datasets")
        result = env.sync_postgres("stackspend", datasets["stackspend"])
        assert result.code == 0, result.err
        warehouse = PostgresWarehouse(request.getfixturevalue("postgres_url"), datasets)
        table, query = f'"{datasets["stackspend"]}".line_items', warehouse.rows
    assert len(repeated) >= 2
    ids = ", ".join(f"'{item_id}'" for item_id in repeated)
    found = query(f"SELECT id, net_amount_usd FROM {table} WHERE id IN ({ids}) ORDER BY id")
    assert found == [(item_id, Decimal("7.25")) for item_id in sorted(repeated)]
    served = len(env.stackspend.line_items(START, TODAY))
    assert query(f"SELECT COUNT(*), COUNT(DISTINCT id) FROM {table}") == [(served, served)]


class NullSeverities(Drifting):
    """Anomalies whose severity is null: no severity filter ever returns them."""

    def __init__(self, app: StackSpendSandbox, hidden: set[str]) -> None:
        super().__init__(app)
        self.hidden = hidden

    def handle(self, request: Request) -> Response | None:
        response = self.app.handle(request)
        if response and request.path == ANOMALIES_PATH and response.status == 200:
            body = json.loads(response.body, parse_float=Decimal)
            filtered = request.param("severity") is not None
            body["data"] = [
                {**item, "severity": None} if item["id"] in self.hidden else item
                for item in body["data"]
                if not (filtered and item["id"] in self.hidden)
            ]
            response.body = to_json(body).encode()
        return response


def test_anomalies_no_filter_can_reach_fail_loudly_instead_of_going_missing(env: Env) -> None:
    """Newest first, the parts must hold every anomaly of the full first page."""
    from datetime import UTC, datetime

    app = env.stackspend.app
    app.anomaly_order = "desc"
    moment = datetime.combine(TODAY - timedelta(days=2), datetime.min.time(), UTC)
    app.add_anomalies(600, at=moment)
    newest = sorted(app.anomalies(), key=lambda a: a["detected_date"])[-10:]
    hidden = NullSeverities(app, {a["id"] for a in newest})  # among the first 500 served
    env.stackspend.handle = hidden.handle  # type: ignore[method-assign]
    result = env.sync("stackspend", "--resources", "anomalies")
    assert result.code == 1
    assert "10 of them have a severity no filter value selects" in result.err
    assert not table_exists(env.duckdb_path, "stackspend.anomalies") or rows(
        env.duckdb_path, "SELECT COUNT(*) FROM stackspend.anomalies"
    ) == [(0,)]
