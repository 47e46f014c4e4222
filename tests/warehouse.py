"""Reading what landed in the warehouse, for comparison with the API's truth."""

from __future__ import annotations

from abc import ABC, abstractmethod
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb

LINE_ITEM_FIELDS = (
    "id",
    "usage_date",
    "provider_type",
    "provider_service",
    "net_amount_usd",
    "currency_original",
    "project_id",
    "user_email",
)
ROLLUP_FIELDS = ("date", "provider_type", "service", "category", "cost_usd")
ANOMALY_FIELDS = (
    "id",
    "provider_type",
    "service",
    "detected_date",
    "actual_cost",
    "expected_cost",
    "severity",
    "alert_type",
    "status",
)


def rows(path: Path, sql: str) -> list[tuple[Any, ...]]:
    """Run `sql` on the DuckDB file read-only."""
    with duckdb.connect(str(path), read_only=True) as connection:
        return connection.execute(sql).fetchall()


def table_rows(path: Path, table: str, fields: tuple[str, ...], where: str = "") -> list[tuple]:
    """`fields` of every row of `table`, sorted."""
    clause = f" WHERE {where}" if where else ""
    return sorted(rows(path, f"SELECT {', '.join(fields)} FROM {table}{clause}"), key=_sort_key)


def truth_rows(records: list[dict[str, Any]], fields: tuple[str, ...]) -> list[tuple]:
    """The API's records as tuples of `fields`, sorted like `table_rows`."""
    return sorted((tuple(r.get(f) for f in fields) for r in records), key=_sort_key)


def exact_sum(values: list[Decimal | None]) -> Decimal:
    """The exact decimal sum, nulls skipped."""
    return sum((v for v in values if v is not None), Decimal(0))


def table_exists(path: Path, table: str) -> bool:
    """Whether `schema.table` exists in the DuckDB file."""
    if not path.exists():
        return False
    schema, name = table.split(".")
    found = rows(
        path,
        "SELECT count(*) FROM information_schema.tables"
        f" WHERE table_schema = '{schema}' AND table_name = '{name}'",
    )
    return bool(found[0][0])


def _sort_key(row: tuple) -> tuple:
    return tuple((value is None, str(value)) for value in row)


class Warehouse(ABC):
    """A warehouse a test reads: DuckDB file, Postgres or BigQuery, with vendor datasets."""

    def __init__(self, datasets: dict[str, str]) -> None:
        self.datasets = datasets

    @abstractmethod
    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        """Run a query."""

    def quote(self, identifier: str) -> str:
        """`identifier` quoted for this warehouse's SQL."""
        return f'"{identifier}"'

    def table(self, vendor: str, name: str) -> str:
        """The qualified name of `vendor`'s table `name`."""
        return self.qualified(self.datasets[vendor], name)

    def qualified(self, dataset: str, name: str) -> str:
        """Table `name` of `dataset` (schema), quoted."""
        return f"{self.quote(dataset)}.{self.quote(name)}"

    def snapshot(self) -> dict[str, list[tuple]]:
        """Every costsync table's rows (bookkeeping columns left out), sorted."""
        return {
            "line_items": self.sorted_rows("stackspend", "line_items", LINE_ITEM_FIELDS),
            "daily_rollups": self.sorted_rows(
                "stackspend", "daily_rollups", ("group_by", *ROLLUP_FIELDS)
            ),
            "anomalies": self.sorted_rows("stackspend", "anomalies", ANOMALY_FIELDS),
            "spending_breakdown": self.sorted_rows(
                "levelfour", "spending_breakdown", BREAKDOWN_FIELDS
            ),
        }

    def sorted_rows(self, vendor: str, name: str, fields: tuple[str, ...]) -> list[tuple]:
        """`fields` of every row of a vendor table, sorted."""
        columns = ", ".join(map(self.quote, fields))
        return sorted(self.rows(f"SELECT {columns} FROM {self.table(vendor, name)}"), key=_sort_key)


class DuckDBWarehouse(Warehouse):
    """A DuckDB file."""

    def __init__(self, path: Path, datasets: dict[str, str]) -> None:
        super().__init__(datasets)
        self.path = path

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        return rows(self.path, sql)


class PostgresWarehouse(Warehouse):
    """A Postgres database reached by a libpq URL."""

    def __init__(self, url: str, datasets: dict[str, str]) -> None:
        super().__init__(datasets)
        self.url = url

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        import psycopg2

        with psycopg2.connect(self.url) as connection, connection.cursor() as cursor:
            cursor.execute(sql)
            return cursor.fetchall()


class BigQueryWarehouse(Warehouse):
    """A BigQuery project read with google-cloud-bigquery (`client`, e.g. on the emulator)."""

    def __init__(self, client: Any, datasets: dict[str, str]) -> None:
        super().__init__(datasets)
        self.client = client

    def quote(self, identifier: str) -> str:
        return f"`{identifier}`"

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        return [tuple(row.values()) for row in self.client.query_and_wait(sql)]


BREAKDOWN_FIELDS = (
    "period",
    "provider_id",
    "account_id",
    "region",
    "service",
    "environment",
    "tag_key",
    "tag_value",
    "cost",
    "previous_cost",
)
