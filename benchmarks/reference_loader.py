"""The yardstick: the fastest exact loader a good engineer would hand-write for one
backfill of StackSpend line items, with the libraries costsync uses.

    python benchmarks/reference_loader.py URL KEY START END duckdb PATH
    python benchmarks/reference_loader.py URL KEY START END postgres POSTGRES_URL SCHEMA

One thread fetches the pages (a keep-alive `requests.Session`, following
`next_cursor`), the main thread parses each body with pyarrow's JSON reader
straight to DECIMAL(38,18) and appends to the table through Arrow in 100k-row
batches: DuckDB by `INSERT ... SELECT` from the Arrow table, Postgres by binary
`COPY` (ADBC). No merge, no state, no retries, no checks — which is why it is
the yardstick: what costsync spends beyond it is overhead to justify. Prints
the rows it loaded.
"""

from __future__ import annotations

import io
import queue
import sys
import threading
from collections.abc import Iterator

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pajson
import requests

MONEY = pa.decimal128(38, 18)
ITEM = pa.struct(
    [
        ("id", pa.string()),
        ("usage_date", pa.string()),  # a YYYY-MM-DD text, cast to DATE below
        ("provider_type", pa.string()),
        ("provider_service", pa.string()),
        ("net_amount_usd", MONEY),
        ("currency_original", pa.string()),
        ("project_id", pa.string()),
        ("user_email", pa.string()),
    ]
)
BODY = pa.schema([("data", pa.list_(ITEM)), ("meta", pa.struct([("next_cursor", pa.string())]))])
BATCH_ROWS = 100_000
_DONE = b""


def fetch_pages(url: str, key: str, start: str, end: str, into: queue.Queue[bytes]) -> None:
    """Every page's body, in order, into `into`; an empty body when done."""
    session = requests.Session()
    params = {"start_date": start, "end_date": end, "limit": 1000}
    while True:
        body = session.get(
            f"{url}/api/v1/public/line-items", params=params, headers={"X-API-Key": key}
        ).content
        into.put(body)
        cursor = _cursor(body)
        if cursor is None:
            into.put(_DONE)
            return
        params["cursor"] = cursor


def _cursor(body: bytes) -> str | None:
    meta = body[body.rfind(b'"meta"') :]
    if b'"has_more":true' not in meta.replace(b" ", b""):
        return None
    start = meta.find(b'"next_cursor":"') + len(b'"next_cursor":"')
    return meta[start : meta.find(b'"', start)].decode()


def tables(url: str, key: str, start: str, end: str) -> Iterator[pa.Table]:
    """The line items as Arrow tables of about `BATCH_ROWS` rows."""
    bodies: queue.Queue[bytes] = queue.Queue(maxsize=64)
    threading.Thread(target=fetch_pages, args=(url, key, start, end, bodies), daemon=True).start()
    parse = pajson.ParseOptions(explicit_schema=BODY, unexpected_field_behavior="ignore")
    batch: list[pa.Table] = []
    rows = 0
    while (body := bodies.get()) != _DONE:
        options = pajson.ReadOptions(use_threads=False, block_size=len(body) + 1)
        data = pajson.read_json(io.BytesIO(body), read_options=options, parse_options=parse)
        items = pa.Table.from_struct_array(data.column("data")[0].values)
        day = items.schema.get_field_index("usage_date")
        items = items.set_column(day, "usage_date", pc.cast(items.column(day), pa.date32()))
        batch.append(items)
        rows += items.num_rows
        if rows >= BATCH_ROWS:
            yield pa.concat_tables(batch)
            batch, rows = [], 0
    if batch:
        yield pa.concat_tables(batch)


def load_duckdb(path: str, source: Iterator[pa.Table]) -> int:
    import duckdb

    connection = duckdb.connect(path)
    loaded = 0
    for number, table in enumerate(source):
        connection.register("batch", table)
        if number == 0:
            connection.execute("CREATE TABLE line_items AS SELECT * FROM batch")
        else:
            connection.execute("INSERT INTO line_items SELECT * FROM batch")
        connection.unregister("batch")
        loaded += table.num_rows
    connection.close()
    return loaded


def load_postgres(url: str, schema: str, source: Iterator[pa.Table]) -> int:
    import adbc_driver_postgresql.dbapi as postgres

    loaded = 0
    with postgres.connect(url) as connection, connection.cursor() as cursor:
        cursor.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
        for number, table in enumerate(source):
            mode = "create" if number == 0 else "append"
            cursor.adbc_ingest("line_items", table, mode=mode, db_schema_name=schema)
            loaded += table.num_rows
        connection.commit()
    return loaded


def main(argv: list[str]) -> None:
    url, key, start, end, destination, *where = argv
    source = tables(url, key, start, end)
    if destination == "duckdb":
        print(load_duckdb(where[0], source))
    else:
        print(load_postgres(where[0], where[1], source))


if __name__ == "__main__":
    main(sys.argv[1:])
