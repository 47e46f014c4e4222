"""The warehouse a report reads: a DuckDB file or Postgres, opened read-only."""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from pipelines.destinations import check_destination, destination_for
from sources.shared.errors import ConfigError


class WarehouseUnavailable(Exception):
    """The warehouse exists but could not be read (a lock, a refused connection)."""


class Warehouse(ABC):
    """A read-only connection that runs the report's SQL.

    The SQL is the dialect DuckDB and Postgres share; only the table listing,
    which takes a parameter, differs.
    """

    where: str

    @abstractmethod
    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        """Run `sql` and return its rows (DECIMAL columns arrive as `Decimal`)."""

    @abstractmethod
    def tables(self, dataset: str) -> set[str]:
        """The names of the tables in `dataset` (empty when there is no such dataset)."""

    def table(self, dataset: str, name: str) -> str:
        """`dataset.name`, both quoted."""
        return f"{quote_identifier(dataset)}.{quote_identifier(name)}"


class DuckDBWarehouse(Warehouse):
    """A DuckDB file, opened read-only."""

    def __init__(self, connection: Any, path: str) -> None:
        self.connection = connection
        self.where = f"duckdb {path}"

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        import duckdb

        try:
            return list(self.connection.execute(sql).fetchall())
        except duckdb.Error as error:
            raise WarehouseUnavailable(
                f"reading {self.where} failed: {_first_line(error)}"
            ) from None

    def tables(self, dataset: str) -> set[str]:
        found = self.connection.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = ?", [dataset]
        ).fetchall()
        return {name for (name,) in found}


class PostgresWarehouse(Warehouse):
    """A Postgres database, in a read-only session."""

    def __init__(self, connection: Any, where: str) -> None:
        self.connection = connection
        self.where = where

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        import psycopg2

        try:
            with self.connection.cursor() as cursor:
                cursor.execute(sql)
                return list(cursor.fetchall())
        except psycopg2.Error as error:
            raise WarehouseUnavailable(
                f"reading {self.where} failed: {_first_line(error)}"
            ) from None

    def tables(self, dataset: str) -> set[str]:
        with self.connection.cursor() as cursor:
            cursor.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
                (dataset,),
            )
            return {name for (name,) in cursor.fetchall()}


@contextmanager
def open_warehouse(destination: str, duckdb_path: str | None) -> Iterator[Warehouse]:
    """The warehouse `costsync sync` would load for the same flags and configuration.

    DuckDB's file: `--duckdb-path`, else `DESTINATION__DUCKDB__CREDENTIALS`, else
    costsync.duckdb; Postgres from `DESTINATION__POSTGRES__CREDENTIALS`.

    Raises:
        ConfigError: no such DuckDB file, or Postgres credentials missing.
        WarehouseUnavailable: the warehouse could not be opened.
    """
    if destination == "duckdb":
        with _open_duckdb(duckdb_path) as warehouse:
            yield warehouse
    else:
        with _open_postgres() as warehouse:
            yield warehouse


@contextmanager
def _open_duckdb(duckdb_path: str | None) -> Iterator[Warehouse]:
    import duckdb

    _, _, path = destination_for("duckdb", duckdb_path)
    assert path is not None
    if "://" not in path and not os.path.isfile(path):
        raise ConfigError(
            "--duckdb-path",
            f"no DuckDB file at {path}: sync into it first (costsync sync stackspend)"
            " or name the file costsync loaded",
        )
    try:
        connection = duckdb.connect(path, read_only=True)
    except duckdb.Error as error:
        raise WarehouseUnavailable(f"cannot open {path}: {_first_line(error)}") from None
    try:
        yield DuckDBWarehouse(connection, path)
    finally:
        connection.close()


@contextmanager
def _open_postgres() -> Iterator[Warehouse]:
    import psycopg2

    destination, _, _ = destination_for("postgres", None)
    check_destination(destination)
    credentials = destination.configuration(None, accept_partial=True).credentials
    where = f"postgres {credentials.host}:{credentials.port}/{credentials.database}"
    try:
        connection = psycopg2.connect(credentials.to_native_representation())
    except psycopg2.Error as error:
        raise WarehouseUnavailable(f"cannot connect to {where}: {_first_line(error)}") from None
    try:
        connection.set_session(readonly=True, autocommit=True)
        yield PostgresWarehouse(connection, where)
    finally:
        connection.close()


def quote_identifier(name: str) -> str:
    """`name` as a double-quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__
