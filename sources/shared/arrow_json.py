"""JSON response bodies straight into Arrow tables, money exact or refused.

pyarrow's JSON reader turns a JSON number into a DECIMAL from its text, never
through a float. Parsing a whole page in C++ is also what keeps a million-row
sync fast. Two of its habits need a hand:

- It scales a number to the column's 18 decimals without an overflow check,
  so a number of 10**20 or more can wrap around into a wrong amount that is in
  range (`1e30` reads as 18960114910927365649.47...). Such a number is written
  with an exponent or with more than 20 digits before the point; a page
  holding neither (the usual case, told by one RE2 scan) is exact as read. Any
  other page is read again with Python's `json`, and a DECIMAL value its
  column cannot hold fails the page, naming the field and the value as sent.
- It refuses a number written with more than 38 digits even when the value
  fits (1.5 followed by 40 zeros). Such a page is re-read from the same values
  written without their extra zeros.
- It crashes the process on a DECIMAL written with an exponent of some
  millions (`1e-9999999`, `"0e-5000000"`). So a page that may hold one is
  checked before pyarrow reads it, and a DECIMAL value with more than
  `EXPONENT_LIMIT` decimal places, even a zero, fails the page.

So a DECIMAL(38,18) field loads exactly every value below 10**20 in magnitude
with at most 18 decimals (zeros beyond them are no loss), in any notation;
any other value fails the page.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Mapping
from decimal import Decimal
from functools import cache
from typing import Any, TypeAlias, cast

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pajson
from dlt.common.schema.typing import TTableSchemaColumns

from sources.shared.errors import AmountError, InvalidResponseError, SchemaChangeError

# Decimal places beyond which a DECIMAL value is refused, zeros too: pyarrow crashes
# reading one written with an exponent of some millions.
EXPONENT_LIMIT = 1000
MONEY = pa.decimal128(38, 18)  # 20 digits before the point, 18 after: float-summed aggregates fit
TIMESTAMP = pa.timestamp("us", tz="UTC")

# What pyarrow could read into a wrong DECIMAL: a JSON number with an exponent
# or 21+ digits; a string it would read as such a number (it reads numeric
# strings into DECIMAL columns too); an escaped digit, sign, point or e, which
# could spell one inside a string. The same pattern in Python's `re` and RE2.
_WRAP_SUSPECT = (
    r"[:,\[][ \t\n\r]*-?(?:[0-9]+(?:\.[0-9]+)?[eE]|[0-9]{21})"
    r'|"[+-]?[0-9.]*[0-9][0-9.]*[eE][+-]?[0-9]*"|"[+-]?[0-9]{21}'
    r"|\\u00(?:3[0-9]|2[bBdDeE]|45|65)"
)


# Every digit as 0 and E as e, so a substring search finds "a digit, then e" or a run
# of digits.
_DIGITS_AS_ZERO = bytes.maketrans(b"123456789E", b"000000000e")
_SUSPECT_MARKS = (b"0e", b"0" * 21)


def read_document(body: bytes, schema: pa.Schema, vendor: str, endpoint: str) -> dict[str, Any]:
    """Parse one JSON object with `schema` for the fields it names.

    Returns the top-level fields as Arrow scalars/arrays (one row). Fields the
    schema does not name are still read, with inferred types.

    Raises:
        InvalidResponseError: the body is not JSON (cut short, garbled): retriable.
        SchemaChangeError: valid JSON whose field types differ from the docs;
            an `AmountError` for a DECIMAL value its column cannot hold exactly.
    """
    if _holds_decimal(schema) and may_misread_decimals(body):
        _check_decimals(body, schema, vendor, endpoint)  # before pyarrow: it can crash
    try:
        table = _read_json(body, schema)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as error:
        table = _read_refused(body, error, schema, vendor, endpoint)
    if table.num_rows != 1:
        raise InvalidResponseError(vendor, endpoint, 200, "expected one JSON object in the body")
    return {name: table.column(name)[0] for name in table.column_names}


def _read_json(body: bytes, schema: pa.Schema) -> pa.Table:
    options = pajson.ReadOptions(use_threads=False, block_size=max(len(body) + 1, 1 << 16))
    parse = pajson.ParseOptions(explicit_schema=schema, unexpected_field_behavior="infer")
    return pajson.read_json(io.BytesIO(body), read_options=options, parse_options=parse)


def may_misread_decimals(body: bytes) -> bool:
    """Whether `body` holds a number pyarrow could read into a wrong DECIMAL.

    False for a body without exponents or numbers of 21+ digits: then every
    DECIMAL pyarrow reads from it is exact or refused. A first look that only
    finds a digit followed by an e, 21 digits in a row or an escaped character
    clears most bodies at a fraction of the pattern's cost.
    """
    digits = body.translate(_DIGITS_AS_ZERO)
    if not any(mark in digits for mark in _SUSPECT_MARKS) and b"\\u00" not in body:
        return False
    return bool(pc.match_substring_regex(pa.array([body], pa.large_binary()), _WRAP_SUSPECT)[0])


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


def dlt_columns(schema: pa.Schema, **hints: Mapping[str, object]) -> TTableSchemaColumns:
    """dlt column hints matching an Arrow schema; `hints` adds keys per column.

    Declaring every column up front means the warehouse types never depend on
    which page happens to arrive first.
    """
    columns: dict[str, Any] = {}
    for field in schema:
        column: dict[str, object] = {"name": field.name, "nullable": field.nullable}
        column.update(_dlt_type(field.type))
        column.update(hints.get(field.name, {}))
        columns[field.name] = column
    return cast(TTableSchemaColumns, columns)


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
    if column.type != field.type:
        try:
            column = pc.cast(column, field.type)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as error:
            found = _first_decimal_mismatch(column, field)
            if found:
                raise AmountError(vendor, endpoint, 200, found) from None
            message = f"field {field.name!r} cannot be read as {field.type}: {error}"
            raise SchemaChangeError(vendor, endpoint, 200, message) from None
    if pa.types.is_decimal(field.type):
        _check_precision(column, field, vendor, endpoint)
    return column


def _check_precision(column: Any, field: pa.Field, vendor: str, endpoint: str) -> None:
    """Refuse DECIMAL values beyond the type's precision: Arrow holds them, warehouses do not."""
    try:
        column.validate(full=True)
    except pa.ArrowInvalid:
        message = _first_decimal_mismatch(column, field) or f"field {field.name!r} is too large"
        raise AmountError(vendor, endpoint, 200, message) from None


def _first_decimal_mismatch(column: Any, field: pa.Field) -> str | None:
    if not pa.types.is_decimal(field.type) or not pa.types.is_decimal(column.type):
        return None
    values = (v for v in column.to_pylist() if v is not None)
    return next((m for v in values if (m := _decimal_mismatch(v, field.type, field.name))), None)


class _SentNumber(Decimal):
    """A JSON number read exactly, keeping its text as sent for messages."""

    __slots__ = ("text",)
    text: str

    def __new__(cls, text: str) -> _SentNumber:
        number = super().__new__(cls, text)
        number.text = text
        return number


# Where a schema's DECIMAL fields are: a DECIMAL type, [plan] for a list, {name: plan}
# for a struct (its DECIMAL-bearing fields only), None when there are none.
_Plan: TypeAlias = "pa.DataType | list[_Plan] | dict[str, _Plan] | None"


@cache
def _decimal_plan(arrow_type: pa.DataType | pa.Schema) -> _Plan:
    if isinstance(arrow_type, pa.Schema) or pa.types.is_struct(arrow_type):
        fields = {f.name: plan for f in arrow_type if (plan := _decimal_plan(f.type)) is not None}
        return fields or None
    if pa.types.is_list(arrow_type):
        inner = _decimal_plan(arrow_type.value_type)
        return None if inner is None else [inner]
    return arrow_type if pa.types.is_decimal(arrow_type) else None


def _holds_decimal(schema: pa.Schema) -> bool:
    return _decimal_plan(schema) is not None


def _check_decimals(body: bytes, schema: pa.Schema, vendor: str, endpoint: str) -> None:
    """Read `body` exactly and refuse the first DECIMAL value its column cannot hold.

    Raises:
        InvalidResponseError: the body is not JSON.
        AmountError: naming the value.
    """
    document = _exact_json(body, vendor, endpoint, parse_int=_SentNumber)
    found = _plan_mismatch(document, _decimal_plan(schema), "")
    if found:
        raise _schema_error(found, vendor, endpoint)


def _plan_mismatch(value: Any, plan: _Plan, name: str) -> str | None:
    """Like `_mismatch`, for the DECIMAL fields `plan` points at only."""
    if value is None:
        return None
    if isinstance(plan, dict):
        if isinstance(value, dict):
            for field, inner in plan.items():
                if found := _plan_mismatch(value.get(field), inner, field):
                    return found
        return None
    if isinstance(plan, list):
        if not isinstance(value, list):
            return None
        inner = plan[0]
        if isinstance(inner, dict) and all(isinstance(p, pa.DataType) for p in inner.values()):
            return _rows_mismatch(value, inner)  # a list of objects: the usual page
        return next((m for item in value if (m := _plan_mismatch(item, inner, name))), None)
    return _decimal_mismatch(value, plan, name)


def _rows_mismatch(rows: list[Any], fields: dict[str, pa.DataType]) -> str | None:
    """The first DECIMAL value of `rows` its column cannot hold, checked fast where it fits."""
    limits = [
        (name, arrow_type, arrow_type.precision - arrow_type.scale)
        for name, arrow_type in fields.items()
    ]
    for row in rows:
        if not isinstance(row, dict):
            continue
        for name, arrow_type, whole in limits:
            value = row.get(name)
            if value is None or (
                type(value) is _SentNumber
                and value.is_finite()
                and -EXPONENT_LIMIT < value.adjusted() < whole
            ):
                continue  # in range; pyarrow refuses more decimals than the column has itself
            if found := _decimal_mismatch(value, arrow_type, name):
                return found
    return None


def _read_refused(
    body: bytes, error: Exception, schema: pa.Schema, vendor: str, endpoint: str
) -> pa.Table:
    """A page pyarrow refused: re-read from its values if they all fit, else why not.

    Raises:
        InvalidResponseError: the body is not JSON.
        SchemaChangeError: naming the first field whose value does not fit.
    """
    document = _exact_json(body, vendor, endpoint, parse_int=_whole_number)
    found = None
    if isinstance(document, dict):
        found = next(
            (m for f in schema if (m := _mismatch(document.get(f.name), f.type, f.name))), None
        )
        if found is None and ("decimal" in str(error) or "double" in str(error)):
            try:  # numbers written with more digits than pyarrow reads, e.g. 1.5 and 40 zeros
                return _read_json(_compact_json(document).encode(), schema)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as again:
                error = again
    raise _schema_error(
        found or f"a field no longer has the documented type ({error})", vendor, endpoint
    )


def _exact_json(body: bytes, vendor: str, endpoint: str, parse_int: Callable[[str], Any]) -> Any:
    """`body` parsed with every fraction (and whole number, per `parse_int`) exact.

    Raises:
        InvalidResponseError: the body is not JSON (cut short, garbled): retriable.
    """
    try:
        return json.loads(body, parse_float=_SentNumber, parse_int=parse_int)
    except ValueError:
        message = "the response body is not valid JSON (cut short or garbled)"
        raise InvalidResponseError(vendor, endpoint, 200, message) from None


def _whole_number(text: str) -> int | _SentNumber:
    """A JSON whole number as an int, or exact when longer than Python's int() reads."""
    return int(text) if len(text) <= 4000 else _SentNumber(text)


def _schema_error(message: str, vendor: str, endpoint: str) -> SchemaChangeError:
    """An `AmountError` for an amount that does not fit, else a `SchemaChangeError`."""
    kind = AmountError if isinstance(message, _AmountMessage) else SchemaChangeError
    return kind(vendor, endpoint, 200, message)


def _compact_json(value: Any) -> str:
    """`value` as JSON, each number written with the fewest digits: 1.50e1 -> 15."""
    if isinstance(value, dict):
        items = (f"{json.dumps(key)}:{_compact_json(item)}" for key, item in value.items())
        return "{" + ",".join(items) + "}"
    if isinstance(value, list):
        return "[" + ",".join(_compact_json(item) for item in value) + "]"
    if isinstance(value, Decimal):
        sign, digits, exponent = value.as_tuple()
        text = "".join(map(str, digits)).rstrip("0")
        if not text:
            return "-0" if sign else "0"
        exponent = int(exponent) + len(digits) - len(text)
        return ("-" if sign else "") + text + (f"e{exponent}" if exponent else "")
    return json.dumps(value)


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
    """Why `value` cannot be held exactly by `arrow_type`; None when it can.

    Trailing zeros are no loss: 1.50000000000000000000 fits 18 decimals.
    """
    if isinstance(value, bool) or not isinstance(value, int | Decimal | str):
        return _wrong(name, value, "a number")
    try:
        number = Decimal(value)
    except ArithmeticError:
        return _wrong(name, value, "a number")
    if not number.is_finite():
        return _wrong(name, value, "a finite number")
    if number and number.adjusted() >= arrow_type.precision - arrow_type.scale:
        return _out_of_range(name, _shown(value), arrow_type)
    if number.adjusted() <= -EXPONENT_LIMIT:
        return _AmountMessage(
            f"field {name!r} is {_shown(value)}, with more than {EXPONENT_LIMIT} decimal places"
        )
    _, digits, exponent = number.as_tuple()
    beyond = -int(exponent) - arrow_type.scale
    if beyond > 0 and any(digits[-beyond:]):
        places = f"field {name!r} has more than {arrow_type.scale} decimal places ({_shown(value)})"
        return _AmountMessage(places)
    return None


class _AmountMessage(str):
    """Why an amount does not fit its column (raised as an `AmountError`)."""


def _out_of_range(name: str, shown: str, arrow_type: pa.Decimal128Type) -> str:
    whole = arrow_type.precision - arrow_type.scale
    return _AmountMessage(
        f"field {name!r} is {shown}, more than DECIMAL({arrow_type.precision},"
        f"{arrow_type.scale}) holds (at most {whole} digits before the point)"
    )


def _wrong(name: str, value: Any, expected: str) -> str:
    return f"field {name!r} is now {_shown(value)}, expected {expected}"


def _shown(value: Any) -> str:
    """`value` as the API sent it, cut to 60 characters."""
    if isinstance(value, _SentNumber):
        shown: str = value.text
    elif isinstance(value, Decimal):
        shown = str(value)
    else:
        shown = json.dumps(value, default=str)
    return shown if len(shown) <= 60 else shown[:57] + "..."


_PYTHON_TYPES: dict[str, tuple[type | tuple[type, ...], str]] = {
    "string": (str, "text"),
    "bool": (bool, "true or false"),
    "double": ((int, Decimal), "a number"),
    "int64": (int, "a whole number"),
    "timestamp": (str, "a timestamp string"),
}
