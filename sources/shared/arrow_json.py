"""JSON response bodies straight into Arrow tables, money kept exact.

pyarrow's JSON reader turns a JSON number into a DECIMAL from its text, never
through a float, and refuses a value that would lose digits. Parsing a whole
page in C++ is also what keeps a million-row sync fast.
"""

from __future__ import annotations

import io
import json
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pajson
from dlt.common.schema.typing import TTableSchemaColumns

from sources.shared.errors import InvalidResponseError, SchemaChangeError

MONEY = pa.decimal128(38, 18)  # 20 digits before the point, 18 after: float-summed aggregates fit
TIMESTAMP = pa.timestamp("us", tz="UTC")


def read_document(body: bytes, schema: pa.Schema, vendor: str, endpoint: str) -> dict[str, object]:
    """Parse one JSON object with `schema` for the fields it names.

    Returns the top-level fields as Arrow scalars/arrays (one row). Fields the
    schema does not name are still read, with inferred types.

    Raises:
        InvalidResponseError: the body is not JSON (cut short, garbled): retriable.
        SchemaChangeError: valid JSON whose field types differ from the docs.
    """
    options = pajson.ReadOptions(use_threads=False, block_size=max(len(body) + 1, 1 << 16))
    parse = pajson.ParseOptions(explicit_schema=schema, unexpected_field_behavior="infer")
    try:
        table = pajson.read_json(io.BytesIO(body), read_options=options, parse_options=parse)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as error:
        raise _classify(body, error, schema, vendor, endpoint) from None
    if table.num_rows != 1:
        raise InvalidResponseError(vendor, endpoint, 200, "expected one JSON object in the body")
    return {name: table.column(name)[0] for name in table.column_names}


def list_to_table(value: pa.Scalar) -> pa.Table:
    """A list-of-objects scalar (e.g. the `data` array) as a table, one row per object."""
    items = value.values
    if items is None:
        return pa.table({})
    return pa.Table.from_struct_array(items)


def conform(table: pa.Table, target: pa.Schema, vendor: str, endpoint: str) -> pa.Table:
    """Cast `table` to `target`'s columns and types, in `target`'s order.

    Columns the API sent that `target` does not know are kept after the known
    ones, so a new field becomes a new warehouse column. Missing known fields
    become nulls. A value that cannot be cast (an impossible date) is an error,
    never a silent null.
    """
    columns: list[pa.Array] = []
    for field in target:
        columns.append(_cast_column(table, field, vendor, endpoint))
    fields = list(target)
    for name in table.column_names:
        if target.get_field_index(name) == -1:
            columns.append(table.column(name))
            fields.append(table.schema.field(name))
    return pa.Table.from_arrays(columns, schema=pa.schema(fields))


def dlt_columns(schema: pa.Schema, **hints: dict[str, object]) -> TTableSchemaColumns:
    """dlt column hints matching an Arrow schema; `hints` adds keys per column.

    Declaring every column up front means the warehouse types never depend on
    which page happens to arrive first.
    """
    columns: TTableSchemaColumns = {}
    for field in schema:
        column: dict[str, object] = {"name": field.name, "nullable": field.nullable}
        column.update(_dlt_type(field.type))
        column.update(hints.get(field.name, {}))
        columns[field.name] = column  # type: ignore[assignment]
    return columns


def _dlt_type(arrow_type: pa.DataType) -> dict[str, object]:
    if pa.types.is_decimal(arrow_type):
        return {
            "data_type": "decimal",
            "precision": arrow_type.precision,
            "scale": arrow_type.scale,
        }
    if pa.types.is_timestamp(arrow_type):
        return {"data_type": "timestamp", "timezone": True, "precision": 6}
    if pa.types.is_date(arrow_type):
        return {"data_type": "date"}
    if pa.types.is_boolean(arrow_type):
        return {"data_type": "bool"}
    if pa.types.is_floating(arrow_type):
        return {"data_type": "double"}
    return {"data_type": "text"}


def _cast_column(table: pa.Table, field: pa.Field, vendor: str, endpoint: str) -> pa.Array:
    if field.name not in table.column_names:
        if not field.nullable:
            raise SchemaChangeError(vendor, endpoint, 200, f"field {field.name!r} is missing")
        return pa.nulls(table.num_rows, field.type)
    column = table.column(field.name)
    if not field.nullable and column.null_count:
        raise SchemaChangeError(vendor, endpoint, 200, f"field {field.name!r} has null values")
    if column.type == field.type:
        return column
    try:
        return pc.cast(column, field.type)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as error:
        message = f"field {field.name!r} cannot be read as {field.type}: {error}"
        raise SchemaChangeError(vendor, endpoint, 200, message) from None


def _classify(
    body: bytes, error: Exception, schema: pa.Schema, vendor: str, endpoint: str
) -> Exception:
    try:
        document = json.loads(body, parse_float=Decimal)
    except ValueError:
        return InvalidResponseError(
            vendor, endpoint, 200, "the response body is not valid JSON (cut short or garbled)"
        )
    found = None
    if isinstance(document, dict):
        found = next(
            (m for f in schema if (m := _mismatch(document.get(f.name), f.type, f.name))), None
        )
    message = found or f"a field no longer has the documented type ({error})"
    return SchemaChangeError(vendor, endpoint, 200, message)


def _mismatch(value: Any, arrow_type: pa.DataType, name: str) -> str | None:
    """Why `value` does not fit `arrow_type`, naming the field; None when it fits."""
    if value is None:
        return None
    if pa.types.is_list(arrow_type):
        if not isinstance(value, list):
            return _wrong(name, value, "a list")
        return next((m for v in value if (m := _mismatch(v, arrow_type.value_type, name))), None)
    if pa.types.is_struct(arrow_type):
        if not isinstance(value, dict):
            return _wrong(name, value, "an object")
        fields = (arrow_type.field(i) for i in range(arrow_type.num_fields))
        return next(
            (m for f in fields if (m := _mismatch(value.get(f.name), f.type, f.name))), None
        )
    if pa.types.is_decimal(arrow_type):
        return _decimal_mismatch(value, arrow_type, name)
    expected = _PYTHON_TYPES.get(str(arrow_type).split("[")[0])
    if expected is None:
        return None
    python_type, described = expected
    if isinstance(value, bool) != (python_type is bool) or not isinstance(value, python_type):
        return _wrong(name, value, described)
    return None


def _decimal_mismatch(value: Any, arrow_type: pa.Decimal128Type, name: str) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int | Decimal | str):
        return _wrong(name, value, "a number")
    try:
        number = Decimal(value)
    except ArithmeticError:
        return _wrong(name, value, "a number")
    if not number.is_finite():
        return _wrong(name, value, "a finite number")
    exponent = number.as_tuple().exponent
    if isinstance(exponent, int) and -exponent > arrow_type.scale:
        return f"field {name!r} has more than {arrow_type.scale} decimal places ({value})"
    return None


def _wrong(name: str, value: Any, expected: str) -> str:
    shown = json.dumps(value, default=str)
    shown = shown if len(shown) <= 60 else shown[:57] + "..."
    return f"field {name!r} is now {shown}, expected {expected}"


_PYTHON_TYPES: dict[str, tuple[type | tuple[type, ...], str]] = {
    "string": (str, "text"),
    "bool": (bool, "true or false"),
    "double": ((int, Decimal), "a number"),
    "int64": (int, "a whole number"),
    "timestamp": (str, "a timestamp string"),
}
