"""Re-reading a window replaces it whole in the warehouse.

Resources load with dlt's delete-insert merge keyed by the window's column
(a day, a month): every row of a key value present in the load is deleted
before the new rows go in. A key value the API now returns nothing for has
no rows to trigger that delete, so the loop below adds a marker row for it,
flagged in a `hard_delete` column: dlt deletes that key's rows and loads
nothing in the marker's place.

dlt may run a load job again after a crash, loading its rows into the
staging table twice. Tables whose natural key has nullable parts carry that
key joined into one non-null `ROW_KEY_COLUMN`, their primary key, so the
merge keeps one row per key however often a job ran.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc
from dlt.common.schema.typing import TTableSchemaColumns

from sources.shared.arrow_json import dlt_columns

if TYPE_CHECKING:
    from sources.shared.windows import Window

DELETED_COLUMN = "_costsync_deleted"
DELETED_MARKER = "deleted:"
ROW_KEY_COLUMN = "_costsync_key"
# When costsync found the API restating a row's day (or month) after its billing
# period had closed, and re-read it; null for rows loaded otherwise.
RESTATED_COLUMN = "_costsync_restated_at"
ROW_KEY_FIELD = pa.field(ROW_KEY_COLUMN, pa.string(), nullable=False)
# dlt's per-item overhead is ~4 ms; handing it ~20k rows at a time keeps that small
# (~0.2 s a million rows) while a batch and its concatenated copy stay a few MB.
BATCH_ROWS = 20_000


@dataclass(frozen=True)
class Replacement:
    """How one resource's windows replace their rows.

    Attributes:
        schema: the resource's Arrow table layout (with `DELETED_COLUMN`, and
            `ROW_KEY_FIELD` when `row_key` is set).
        column: the merge key column, e.g. usage_date or period.
        keys_of: the key values a window covers (its days, or its month).
        row_key: the natural key whose columns `ROW_KEY_COLUMN` joins, for
            tables whose key has nullable parts; empty when the table has none.
    """

    schema: pa.Schema
    column: str
    keys_of: Callable[[Window], Sequence[Any]]
    row_key: tuple[str, ...] = ()

    def keyed(self, table: pa.Table) -> pa.Table:
        """`table` with its row key column, when the resource has one."""
        return with_row_key(table, self.row_key) if self.row_key else table

    def emptied(self, keys: Sequence[Any], seen: set[Any]) -> Iterator[pa.Table]:
        """Markers for the `keys` that had no rows (`seen` holds those that had)."""
        emptied = [key for key in keys if key not in seen]
        if emptied:
            yield self.markers(emptied)

    def markers(self, values: Sequence[Any]) -> pa.Table:
        """Marker rows deleting every row of `values`, loading nothing."""
        count = len(values)
        columns = []
        for field in self.schema:
            if field.name == self.column:
                columns.append(pa.array(values, field.type))
            elif field.name == DELETED_COLUMN:
                columns.append(pa.array([True] * count, field.type))
            elif not field.nullable and pa.types.is_string(field.type):
                columns.append(pa.array([f"{DELETED_MARKER}{v}" for v in values], field.type))
            else:
                columns.append(pa.nulls(count, field.type))
        return pa.Table.from_arrays(columns, schema=self.schema)


def replace_keys(
    replacement: Replacement, table: pa.Table, keys: Sequence[Any]
) -> Iterator[pa.Table]:
    """`table`, replacing every row of `keys` (e.g. days): markers for those without rows."""
    keyed = replacement.keyed(table)
    if keyed.num_rows:
        yield keyed
    yield from replacement.emptied(
        keys, set(pc.unique(table.column(replacement.column)).to_pylist())
    )


def keyed_columns(schema: pa.Schema, merge_key: str) -> TTableSchemaColumns:
    """dlt column hints of a table replaced by `merge_key` whose rows carry
    `ROW_KEY_COLUMN` (its primary key) and `DELETED_COLUMN` (markers)."""
    return dlt_columns(
        schema,
        **{
            merge_key: {"merge_key": True},
            DELETED_COLUMN: {"hard_delete": True},
            ROW_KEY_COLUMN: {"primary_key": True},
        },
    )


def with_row_key(table: pa.Table, columns: Sequence[str]) -> pa.Table:
    """`table` with `ROW_KEY_COLUMN` set to its `columns` joined, null-safe and unambiguous.

    Each part is `<length>:<text>`, or `-` for null, so no two key tuples share
    a joined key (null and "" differ, and a `|` inside a value cannot shift
    the parts).
    """
    parts = [_key_part(table.column(name)) for name in columns]
    key = pc.binary_join_element_wise(*parts, "|")
    index = table.schema.get_field_index(ROW_KEY_COLUMN)
    if index == -1:
        return table.append_column(ROW_KEY_FIELD, key)
    return table.set_column(index, ROW_KEY_FIELD, key)


def _key_part(column: pa.ChunkedArray) -> pa.ChunkedArray:
    text = pc.cast(column, pa.string())
    length = pc.cast(pc.utf8_length(text), pa.string())
    return pc.fill_null(pc.binary_join_element_wise(length, text, ":"), "-")


def concat(tables: list[pa.Table]) -> pa.Table:
    """One table from pages whose columns may differ (a field the API added midway)."""
    if len(tables) == 1:
        return tables[0]
    return pa.concat_tables(tables, promote_options="permissive").combine_chunks()
