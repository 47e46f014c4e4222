"""Over real HTTP: amounts in any JSON notation land exactly, and an amount DECIMAL(38,18)
cannot hold fails the run with one line naming the field and the value, changing nothing."""

from __future__ import annotations

import json

import pytest
import requests

from sandbox import levelfour, stackspend
from tests.conftest import Env
from tests.levelfour.test_sync import assert_matches
from tests.stackspend.test_sync import assert_warehouse_matches_api, counts, state_of
from tests.test_postgres import assert_matches_api
from tests.warehouse import PostgresWarehouse

REFUSED = (
    "1e30",
    "5e20",
    "1.5e25",
    "-7e21",
    "1e-19",
    "0.1234567890123456789",
    "1e400",
    "-1.7e38",
)


def knob(env: Env, vendor: str, action: str, **body: object) -> None:
    """Set an amount knob through the sandbox's admin endpoint."""
    answer = requests.post(f"{env.url}/_sandbox/{vendor}/{action}", json=body, timeout=10)
    assert answer.status_code == 200, answer.text


def one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


def test_stackspend_amounts_in_mixed_notations_land_exactly(env: Env) -> None:
    knob(env, "stackspend", "amount-notation", notation="mixed")
    result = env.sync()
    assert result.code == 0, result.err
    assert_warehouse_matches_api(env)


def test_levelfour_amounts_in_mixed_notations_land_exactly(env: Env) -> None:
    knob(env, "levelfour", "amount-notation", notation="mixed")
    result = env.sync("levelfour")
    assert result.code == 0, result.err
    assert_matches(env)


def test_stackspend_amounts_decimal_38_18_cannot_hold_fail_the_run_changing_nothing(
    env: Env,
) -> None:
    knob(env, "stackspend", "amount-notation", notation="exponent")
    assert env.sync().code == 0
    before, state_before = counts(env), state_of(env)
    for index, text in enumerate(REFUSED):
        field = stackspend.MONEY_FIELDS[index % len(stackspend.MONEY_FIELDS)]
        knob(env, "stackspend", "amount-override", text=text, field=field)
        result = env.sync()
        line = one_line(result.err)
        assert result.code == 1, (text, result.out)
        assert f"field '{field}'" in line and text in line, line
        assert counts(env) == before and state_of(env) == state_before, text
    knob(env, "stackspend", "amount-override", text=None)
    assert env.sync().code == 0
    assert_warehouse_matches_api(env)


def test_levelfour_amounts_decimal_38_18_cannot_hold_fail_the_run_changing_nothing(
    env: Env,
) -> None:
    assert env.sync("levelfour").code == 0
    table = "levelfour.spending_breakdown"
    before = env_rows(env, table)
    state_file = env.pipelines_dir / "levelfour" / "state.json"
    state_before = json.loads(state_file.read_text())
    for index, text in enumerate(REFUSED):
        field = levelfour.MONEY_FIELDS[index % len(levelfour.MONEY_FIELDS)]
        knob(env, "levelfour", "amount-override", text=text, field=field)
        result = env.sync("levelfour")
        line = one_line(result.err)
        assert result.code == 1, (text, result.out)
        assert f"field '{field}'" in line and text in line, line
        assert env_rows(env, table) == before and json.loads(state_file.read_text()) == state_before


def env_rows(env: Env, table: str) -> list[tuple]:
    from tests.warehouse import BREAKDOWN_FIELDS, table_rows

    return table_rows(env.duckdb_path, table, BREAKDOWN_FIELDS)


@pytest.mark.postgres
def test_postgres_takes_mixed_notations_exactly_and_never_a_load_it_would_fail_half_way(
    env: Env, pg_datasets: dict[str, str], postgres_url: str
) -> None:
    for vendor in ("stackspend", "levelfour"):
        knob(env, vendor, "amount-notation", notation="mixed")
        result = env.sync_postgres(vendor, pg_datasets[vendor])
        assert result.code == 0, result.err
        assert env.sync(vendor).code == 0
    warehouse = PostgresWarehouse(postgres_url, pg_datasets)
    assert_matches_api(env, warehouse)
    loaded = warehouse.snapshot()
    # Arrow holds 10**20 in decimal128(38,18); NUMERIC(38,18) would fail the COPY on it.
    knob(env, "stackspend", "amount-override", text="100000000000000000000", field="cost_usd")
    result = env.sync_postgres("stackspend", pg_datasets["stackspend"])
    assert result.code == 1 and "field 'cost_usd' is 100000000000000000000" in one_line(result.err)
    assert warehouse.snapshot() == loaded
