"""Every money field is exact or refused on the JSON → Arrow path, in every JSON notation.

The property, checked against Python's `Decimal` over generated JSON numbers
(signs, `e`/`E`, exponent signs and zeros, leading `0.`, trailing zeros, `-0`;
magnitudes 1e-18 to 1e40, 0 to 25 decimals): the value loaded equals
`Decimal(text)` exactly, or the page is refused with a SchemaChangeError that
names the field and the value as sent. Never a third outcome.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from datetime import date
from decimal import Decimal, localcontext

import pyarrow as pa
import pyarrow.json as pajson
import pytest
import responses
from hypothesis import given, settings
from hypothesis import strategies as st

from sources.levelfour.client import LevelFourClient
from sources.levelfour.helpers import breakdown_table
from sources.shared.arrow_json import MONEY, conform, may_misread_decimals
from sources.shared.connection import Connection
from sources.shared.errors import SchemaChangeError
from sources.shared.retry import RetryPolicy
from sources.stackspend.client import StackSpendClient
from sources.stackspend.settings import ANOMALIES_SCHEMA, DAILY_ROLLUPS_SCHEMA, LINE_ITEMS_SCHEMA
from tests.levelfour.test_client import answer, item

SS = "https://api.stackspend.test"
L4 = "https://api.levelfour.test"
DAY = date(2025, 1, 15)
PROPERTY = settings(max_examples=400, derandomize=True, database=None, deadline=None)
MAX_MONEY = Decimal("99999999999999999999.999999999999999999")
ISSUE_VALUES = ("1e30", "5e20", "1.5e25", "-7e21", "1e-19", "0.1234567890123456789", "1e400")
ISSUE_VALUES += ("-1.7e38",)

LINE_ITEM = (
    '{"id":"li_01hxe5","usage_date":"2025-01-15","provider_type":"aws","provider_service":"ec2",'
    '"net_amount_usd":AMOUNT,"currency_original":"USD","project_id":"3e4f5a","user_email":null}'
)
ROLLUP = (
    '{"date":"2025-01-15","cost_usd":AMOUNT,"provider_type":"aws","service":null,"category":null}'
)
ANOMALY = (
    '{"id":"anom_1","provider_type":"aws","service":"ec2","detected_date":"2025-01-15T08:00:00Z",'
    '"actual_cost":ACTUAL,"expected_cost":EXPECTED,"deviation_percent":1.5e-7,"severity":"low",'
    '"alert_type":"spend_spike","status":"new"}'
)


def envelope(rows: str) -> str:
    meta = '"meta":{"next_cursor":null,"has_more":false}'
    return f'{{"data":[{rows}],"error":null,{meta}}}'


def stackspend() -> StackSpendClient:
    return StackSpendClient(Connection(SS, "ss_key", 100_000, RetryPolicy(max_attempts=1)))


def read_line_item(text: str) -> Decimal:
    with responses.RequestsMock() as mock:
        mock.get(f"{SS}/api/v1/public/line-items", body=envelope(LINE_ITEM.replace("AMOUNT", text)))
        page = stackspend().line_items_page(DAY, DAY)
    table = conform(page.items, LINE_ITEMS_SCHEMA, "StackSpend", "/line-items")
    return table.column("net_amount_usd")[0].as_py()


def read_rollup(text: str) -> Decimal:
    with responses.RequestsMock() as mock:
        mock.get(f"{SS}/api/v1/public/rollups/daily", body=envelope(ROLLUP.replace("AMOUNT", text)))
        page = stackspend().daily_rollups(DAY, DAY, "provider")
    table = conform(
        page.items.append_column("group_by", pa.array(["provider"])),
        DAILY_ROLLUPS_SCHEMA,
        "StackSpend",
        "/rollups/daily",
    )
    return table.column("cost_usd")[0].as_py()


def read_anomaly(field: str) -> Callable[[str], Decimal]:
    def read(text: str) -> Decimal:
        actual, expected = (text, "95.00") if field == "actual_cost" else ("340.12", text)
        row = ANOMALY.replace("ACTUAL", actual).replace("EXPECTED", expected)
        with responses.RequestsMock() as mock:
            mock.get(f"{SS}/api/v1/public/anomalies", body=envelope(row))
            page = stackspend().anomalies("2025-01-01T00:00:00Z", {})
        table = conform(page.items, ANOMALIES_SCHEMA, "StackSpend", "/anomalies")
        return table.column(field)[0].as_py()

    return read


def read_breakdown(field: str) -> Callable[[str], Decimal]:
    """Through `breakdown_table`: raw records sharing a key are summed, so two are sent."""

    def read(text: str) -> Decimal:
        other = "previous_cost" if field == "cost" else "cost"
        records = [item(**{field: 0, other: 1}), item(**{field: "AMOUNT", other: 1})]
        body = answer(records, total_pages=1, has_next=False).replace('"AMOUNT"', text)
        client = LevelFourClient(
            Connection(L4, "l4_test_key", 100_000, RetryPolicy(max_attempts=1))
        )
        with responses.RequestsMock() as mock:
            mock.get(f"{L4}/api/v1/spending/breakdown", body=body)
            (table,) = breakdown_table(client, "2025-01", {})
        return table.column(field)[0].as_py()

    return read


READERS: dict[str, Callable[[str], Decimal]] = {
    "net_amount_usd": read_line_item,
    "cost_usd": read_rollup,
    "actual_cost": read_anomaly("actual_cost"),
    "expected_cost": read_anomaly("expected_cost"),
    "cost": read_breakdown("cost"),
    "previous_cost": read_breakdown("previous_cost"),
}


def fits(value: Decimal) -> bool:
    """Whether DECIMAL(38,18) holds `value` exactly: below 10**20, at most 18 decimals."""
    with localcontext() as context:
        context.prec = 1000
        scaled = value.scaleb(18)
        return abs(value) <= MAX_MONEY and scaled == scaled.to_integral_value()


def with_point(digits: str, places: int) -> str:
    """`digits` x 10**-places, written with `places` digits after a point."""
    if not places:
        return digits
    padded = digits.rjust(places + 1, "0")
    return f"{padded[:-places]}.{padded[-places:]}"


@st.composite
def json_numbers(draw: st.DrawFn) -> str:
    """A JSON number: magnitude 1e-18 to 1e40 (or 0), 0 to 25 decimals, in any notation."""
    sign = draw(st.sampled_from(["", "-"]))
    if draw(st.integers(0, 9)) == 0:
        significand, places = "0", draw(st.integers(0, 25))
    else:
        leading = draw(st.integers(-18, 40))  # the power of ten of the first digit
        places = draw(st.integers(max(0, -leading), 25))
        length = leading + places + 1
        kept = draw(st.integers(1, length))  # the rest are zeros, as in 1e30
        significand = str(draw(st.integers(10 ** (kept - 1), 10**kept - 1))) + "0" * (length - kept)
    zeros = "0" * draw(st.integers(0, 3))
    if not draw(st.booleans()):
        plain = with_point(significand, places)
        return sign + plain + ("." if zeros and "." not in plain else "") + zeros
    after_point = draw(st.integers(0, len(significand) + 2))  # 0: 1248e-2, all: 0.1248e2
    mantissa = with_point(significand, after_point)
    mantissa += ("." if zeros and "." not in mantissa else "") + zeros
    exponent = after_point - places
    marker = draw(st.sampled_from("eE"))
    plus = "+" if exponent >= 0 and draw(st.booleans()) else ""
    padding = "0" * draw(st.integers(0, 1))  # JSON allows 1e05
    return f"{sign}{mantissa}{marker}{'-' if exponent < 0 else plus}{padding}{abs(exponent)}"


def assert_exact_or_refused(field: str, text: str) -> None:
    value = Decimal(text)
    try:
        loaded = READERS[field](text)
    except SchemaChangeError as error:
        assert not fits(value), f"{text} fits but was refused: {error}"
        assert f"field {field!r}" in str(error) and text[:50] in str(error)
        return
    assert fits(value), f"{text} does not fit but loaded as {loaded}"
    assert loaded == value, f"{text} loaded as {loaded}"


@PROPERTY
@given(st.sampled_from(sorted(READERS)), json_numbers())
def test_every_json_number_loads_exactly_or_is_refused_naming_the_field(
    field: str, text: str
) -> None:
    assert_exact_or_refused(field, text)


@pytest.mark.parametrize("text", ISSUE_VALUES)
@pytest.mark.parametrize("field", sorted(READERS))
def test_amounts_decimal_38_18_cannot_hold_are_refused_naming_field_and_value(
    field: str, text: str
) -> None:
    with pytest.raises(SchemaChangeError, match=f"field '{field}' .*{re.escape(text)}"):
        READERS[field](text)


# pyarrow crashes the process on a DECIMAL written with an exponent of some millions,
# as a number or a string, zero or not: each is refused before pyarrow reads it.
HUGE_EXPONENTS = ("1e-9999999", "0e-5000000", "-0.5e-999999999", '"1e-9999999"', '"0e-5000000"')


@pytest.mark.parametrize("text", HUGE_EXPONENTS)
@pytest.mark.parametrize("field", sorted(READERS))
def test_amounts_with_exponents_pyarrow_cannot_read_are_refused(field: str, text: str) -> None:
    with pytest.raises(SchemaChangeError, match=f"field '{field}' .*decimal places"):
        READERS[field](text)


@pytest.mark.parametrize("field", sorted(READERS))
def test_a_whole_number_of_thousands_of_digits_is_refused_not_retried(field: str) -> None:
    with pytest.raises(SchemaChangeError, match=f"field '{field}' is 10000"):
        READERS[field]("1" + "0" * 5000)


@pytest.mark.parametrize(
    "text",
    [
        "99999999999999999999.999999999999999999",
        "-99999999999999999999.999999999999999999",
        "9.9999999999999999999999999999999999999e19",
        "1e-18",
        "-1E-18",
        "0.000000000000000000001e3",
        "1.5" + "0" * 40,
        "12480E-3",
        "-0",
        "0e400",
    ],
)
def test_amounts_it_can_hold_load_exactly_whatever_the_notation(text: str) -> None:
    for field in READERS:
        assert READERS[field](text) == Decimal(text)


@settings(max_examples=1500, derandomize=True, database=None, deadline=None)
@given(json_numbers())
def test_the_scan_flags_every_number_pyarrow_alone_would_misread(text: str) -> None:
    body = f'{{"id":"3e4f","amount":{text}}}'.encode()
    schema = pa.schema([("id", pa.string()), ("amount", MONEY)])
    try:
        alone = pajson.read_json(
            io.BytesIO(body), parse_options=pajson.ParseOptions(explicit_schema=schema)
        )
    except pa.ArrowInvalid:
        return  # refused: nothing to misread
    if alone.column("amount")[0].as_py() != Decimal(text) or not fits(Decimal(text)):
        assert may_misread_decimals(body), text


def test_a_page_without_exponents_or_long_numbers_is_not_read_twice() -> None:
    rows = ",".join(
        LINE_ITEM.replace("AMOUNT", amount)
        for amount in ("12.48", "-0.05", "0", "99999999999999999999.5")
    )
    assert not may_misread_decimals(envelope(rows).encode())
    assert not may_misread_decimals(b'{"id":"3e4f5a-1","email":"e1e2@example.com","x":"a:1"}')


@pytest.mark.parametrize(
    "body",
    [
        '{"a":1e30}',
        '{"a":[1,2.5E-3]}',
        '{"a": 123456789012345678901}',
        '{"a":"1e30"}',
        '{"a":"-123456789012345678901"}',
        '{"a":"\\u0031e30"}',
    ],
)
def test_the_scan_flags_exponents_long_numbers_and_numeric_strings(body: str) -> None:
    assert may_misread_decimals(body.encode())


def test_raw_records_whose_costs_sum_beyond_decimal_38_18_are_refused() -> None:
    half = "60000000000000000000"
    records = [item(cost=half), item(cost=half)]
    body = answer(records, total_pages=1, has_next=False).replace(f'"{half}"', half)
    client = LevelFourClient(Connection(L4, "l4_test_key", 100_000, RetryPolicy(max_attempts=1)))
    with responses.RequestsMock() as mock:
        mock.get(f"{L4}/api/v1/spending/breakdown", body=body)  # raw, then table
        with pytest.raises(SchemaChangeError, match="field 'cost' is 120000000000000000000"):
            list(breakdown_table(client, "2025-01", {}))


def test_raw_records_summed_to_the_largest_amount_stay_exact() -> None:
    records = [item(cost=1), item(cost="COST")]
    body = answer(records, total_pages=1, has_next=False)
    body = body.replace('"COST"', "99999999999999999998.999999999999999999")
    client = LevelFourClient(Connection(L4, "l4_test_key", 100_000, RetryPolicy(max_attempts=1)))
    with responses.RequestsMock() as mock:
        mock.get(f"{L4}/api/v1/spending/breakdown", body=body)
        (table,) = breakdown_table(client, "2025-01", {})
    assert table.column("cost").to_pylist() == [MAX_MONEY]
