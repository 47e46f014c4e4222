"""Every amount Arrow's decimal128(38,18) holds lands in DuckDB's DECIMAL(38,18) and
Postgres's NUMERIC(38,18) exactly; one Arrow holds but they do not never reaches a load.

DuckDB would store 10**20 in a DECIMAL(38,18) column without a word and
Postgres would fail the COPY on it, half-way through a load; `conform` refuses
such a value before either sees it.
"""

from __future__ import annotations

import io
import uuid
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from pathlib import Path

import dlt
import duckdb
import pyarrow as pa
import pyarrow.json as pajson
import pytest
import responses
from hypothesis import given, settings
from hypothesis import strategies as st

from sources.shared.arrow_json import MONEY, conform, dlt_columns
from sources.shared.connection import Connection
from sources.shared.errors import AmountError
from sources.stackspend.client import StackSpendClient
from sources.stackspend.settings import LINE_ITEMS_SCHEMA
from tests.test_money_json import LINE_ITEM, MAX_MONEY, SS, envelope

EXAMPLES = settings(max_examples=40, derandomize=True, database=None, deadline=None)
BOUNDARY = (
    MAX_MONEY,
    MAX_MONEY.copy_negate(),  # exact: unary minus would round to 28 digits
    Decimal("1e-18"),
    Decimal("-1e-18"),
    Decimal("0"),
    Decimal("12345678901234567890.123456789012345678"),
    Decimal("0.30000000000000004"),
)
# The boundary amounts as a server may write them.
WRITTEN = (
    "9.9999999999999999999999999999999999999e19",
    "-99999999999999999999999999999999999999e-18",
    "1E-18",
    "-0.000000000000000001",
    "-0",
    "0.01234567890123456789012345678901234567800000e21",
    "30000000000000004e-17",
    "1.5" + "0" * 40,
)
# Unscaled integers of 1 to 38 digits, read with 18 decimals (built from text: exact).
unscaled = st.integers(1, 38).flatmap(lambda n: st.integers(-(10**n) + 1, 10**n - 1))
amounts = st.one_of(
    unscaled.map(lambda n: Decimal(f"{n}e-18")),
    st.sampled_from(BOUNDARY),
    st.none(),
)


def money_table(values: list[Decimal | None]) -> pa.Table:
    return pa.table({"i": pa.array(range(len(values)), pa.int64()), "v": pa.array(values, MONEY)})


@pytest.fixture(scope="module")
def duckdb_file(tmp_path_factory: pytest.TempPathFactory) -> Iterator[duckdb.DuckDBPyConnection]:
    with duckdb.connect(str(tmp_path_factory.mktemp("money") / "money.duckdb")) as connection:
        yield connection


@EXAMPLES
@given(st.lists(amounts, min_size=1, max_size=40))
def test_duckdb_decimal_38_18_holds_every_arrow_amount_exactly(
    duckdb_file: duckdb.DuckDBPyConnection, values: list[Decimal | None]
) -> None:
    duckdb_file.execute("CREATE OR REPLACE TABLE money (i BIGINT, v DECIMAL(38,18))")
    duckdb_file.register("arrow", money_table(values))
    duckdb_file.execute("INSERT INTO money SELECT i, v FROM arrow")
    loaded = [v for (v,) in duckdb_file.execute("SELECT v FROM money ORDER BY i").fetchall()]
    assert loaded == values


@pytest.fixture(scope="module")
def postgres_table(postgres_url: str) -> Iterator[tuple[object, str]]:
    import adbc_driver_postgresql.dbapi as adbc

    name = f"money_{uuid.uuid4().hex[:10]}"
    with adbc.connect(postgres_url) as connection:
        yield connection, name
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TABLE IF EXISTS {name}")
        connection.commit()


@EXAMPLES
@given(st.lists(amounts, min_size=1, max_size=40))
def test_postgres_numeric_38_18_holds_every_arrow_amount_exactly(
    postgres_table: tuple[object, str], values: list[Decimal | None]
) -> None:
    connection, name = postgres_table
    with connection.cursor() as cursor:  # type: ignore[attr-defined]
        cursor.execute(f"DROP TABLE IF EXISTS {name}")
        cursor.execute(f"CREATE TABLE {name} (i BIGINT, v NUMERIC(38,18))")
        cursor.adbc_ingest(name, money_table(values), mode="append")  # COPY, as dlt loads
        cursor.execute(f"SELECT v::text FROM {name} ORDER BY i")
        loaded = [None if v is None else Decimal(v) for (v,) in cursor.fetchall()]
    connection.commit()  # type: ignore[attr-defined]
    assert loaded == values


def served_page() -> pa.Table:
    """The boundary amounts, as written, through the StackSpend client and `conform`."""
    rows = ",".join(
        LINE_ITEM.replace("li_01hxe5", f"li_{n}").replace("AMOUNT", text)
        for n, text in enumerate(WRITTEN)
    )
    client = StackSpendClient(Connection(SS, "ss_key", 100_000))
    with responses.RequestsMock() as mock:
        mock.get(f"{SS}/api/v1/public/line-items", body=envelope(rows))
        page = client.line_items_page(date(2025, 1, 15), date(2025, 1, 15))
    return conform(page.items, LINE_ITEMS_SCHEMA, "StackSpend", "/line-items")


@pytest.mark.parametrize("destination", ["duckdb", "postgres"])
def test_a_dlt_load_of_boundary_amounts_in_any_notation_is_exact(
    destination: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    @dlt.resource(name="line_items", file_format="parquet", columns=dlt_columns(LINE_ITEMS_SCHEMA))
    def line_items() -> Iterator[pa.Table]:
        yield served_page()

    dataset = f"money_{uuid.uuid4().hex[:10]}"
    if destination == "duckdb":
        target = dlt.destinations.duckdb(str(tmp_path / "load.duckdb"))
    else:
        target = dlt.destinations.postgres(request.getfixturevalue("postgres_url"))
    pipeline = dlt.pipeline(
        f"money_{destination}",
        destination=target,
        dataset_name=dataset,
        pipelines_dir=str(tmp_path),
    )
    try:
        pipeline.run(line_items())
        with pipeline.sql_client() as client:
            found = client.execute_sql(f"SELECT id, net_amount_usd FROM {dataset}.line_items")
    finally:
        if destination == "postgres":
            with pipeline.sql_client() as client:
                client.drop_dataset()
    assert sorted(found) == sorted((f"li_{n}", Decimal(text)) for n, text in enumerate(WRITTEN))


def test_an_amount_arrow_holds_beyond_decimal_38_18_never_reaches_a_load() -> None:
    schema = pa.schema([("id", pa.string()), ("net_amount_usd", MONEY)])
    body = b'{"id":"li_1","net_amount_usd":5}\n{"id":"li_2","net_amount_usd":1e20}'
    options = pajson.ParseOptions(explicit_schema=schema)
    alone = pajson.read_json(io.BytesIO(body), parse_options=options)  # pyarrow, unguarded
    assert alone.column("net_amount_usd")[1].as_py() == Decimal(10**20)  # Arrow holds it
    with pytest.raises(AmountError, match="field 'net_amount_usd' is 100000000000000000000"):
        conform(alone, schema, "StackSpend", "/line-items")
