"""Both sandboxes write amounts in a chosen notation, or as an injected text, over real HTTP."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
import requests
from hypothesis import given, settings
from hypothesis import strategies as st

from sandbox import levelfour, stackspend
from sandbox.amounts import exponent_text, mixed_text, notation_variants
from sandbox.common import format_micros
from sandbox.http import SandboxServer
from sandbox.levelfour import LevelFourSandbox
from sandbox.stackspend import StackSpendSandbox

START, END = date(2025, 1, 1), date(2025, 1, 3)
RANGE = {"start_date": START.isoformat(), "end_date": END.isoformat()}
JSON_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")
EXAMPLES = settings(max_examples=300, derandomize=True, database=None, deadline=None)


class Sandboxes:
    """Both sandboxes on one loopback port, with a `requests` session."""

    def __init__(
        self, url: str, stackspend_app: StackSpendSandbox, levelfour_app: LevelFourSandbox
    ):
        self.url = url
        self.stackspend = stackspend_app
        self.levelfour = levelfour_app
        self.session = requests.Session()

    def bodies(self) -> dict[str, bytes]:
        """One raw answer of each endpoint that carries money."""
        ss = {"X-API-Key": stackspend.DEMO_KEY}
        l4 = {"Authorization": f"Bearer {levelfour.DEMO_KEY}"}
        period = {"period": self.levelfour.current_period, "format": "raw"}
        answers = {
            "line_items": (stackspend.LINE_ITEMS_PATH, {**RANGE, "limit": 1000}, ss),
            "daily_rollups": (stackspend.ROLLUPS_PATH, {**RANGE, "group_by": "service"}, ss),
            "anomalies": (stackspend.ANOMALIES_PATH, {"limit": 500}, ss),
            "spending_breakdown": (levelfour.BREAKDOWN_PATH, period, l4),
        }
        bodies = {}
        for name, (path, params, headers) in answers.items():
            answer = self.session.get(self.url + path, params=params, headers=headers)
            assert answer.status_code == 200, answer.text
            bodies[name] = answer.content
        return bodies

    def admin(self, vendor: str, action: str, body: dict[str, Any]) -> requests.Response:
        return self.session.post(f"{self.url}/_sandbox/{vendor}/{action}", json=body)


@pytest.fixture
def sandboxes() -> Iterator[Sandboxes]:
    stackspend_app = StackSpendSandbox(
        seed=3, start_date=START, end_date=END, line_items_per_day=200, anomaly_count=40
    )
    levelfour_app = LevelFourSandbox(seed=3, months=2, items_per_month=80)
    with SandboxServer([stackspend_app, levelfour_app]) as server:
        yield Sandboxes(server.url, stackspend_app, levelfour_app)


def money_texts(body: bytes, fields: tuple[str, ...]) -> list[tuple[str, str]]:
    """(field, number text as served) of every money value in `body`."""
    names = "|".join(fields)
    return [
        (m.group(1).decode(), m.group(2).decode())
        for m in re.finditer(rf'"({names})":([^,}}\]]+)'.encode(), body)
    ]


def fields_of(name: str) -> tuple[str, ...]:
    return levelfour.MONEY_FIELDS if name == "spending_breakdown" else stackspend.MONEY_FIELDS


plain_amounts = st.one_of(
    st.integers(-(10**12), 10**12).map(format_micros),
    st.decimals(
        min_value=Decimal("-99999999999999999999.999999999999999999"),
        max_value=Decimal("99999999999999999999.999999999999999999"),
        places=18,
        allow_nan=False,
        allow_infinity=False,
    ).map(lambda d: format(d, "f")),
)


@EXAMPLES
@given(plain_amounts)
def test_every_notation_of_an_amount_is_a_json_number_of_the_same_value(text: str) -> None:
    for written in [*notation_variants(text), exponent_text(text), mixed_text(text)]:
        assert JSON_NUMBER.fullmatch(written), written
        assert json.loads(written, parse_float=Decimal, parse_int=Decimal) == Decimal(text)


def test_plain_is_the_default_and_serves_the_amounts_as_rendered(sandboxes: Sandboxes) -> None:
    plain = sandboxes.bodies()
    for name, body in plain.items():
        texts = [text for _, text in money_texts(body, fields_of(name))]
        assert texts and all(re.fullmatch(r"-?[0-9]+\.[0-9]+|0", t) for t in texts), name
    assert sandboxes.stackspend.amount_notation == sandboxes.levelfour.amount_notation == "plain"


@pytest.mark.parametrize("notation", ["exponent", "mixed"])
def test_a_notation_changes_how_amounts_are_written_never_their_values(
    sandboxes: Sandboxes, notation: str
) -> None:
    plain = sandboxes.bodies()
    for vendor in ("stackspend", "levelfour"):
        answer = sandboxes.admin(vendor, "amount-notation", {"notation": notation})
        assert answer.status_code == 200 and answer.json()["data"]["notation"] == notation
    written = sandboxes.bodies()
    forms: set[str] = set()
    for name in plain:
        before = money_texts(plain[name], fields_of(name))
        after = money_texts(written[name], fields_of(name))
        assert [(f, Decimal(t)) for f, t in after] == [(f, Decimal(t)) for f, t in before], name
        forms |= {_form(text) for _, text in after}
        rest = [re.sub(rb":[^,}\]]+", b":", b) for b in (plain[name], written[name])]
        assert rest[0] == rest[1], name
    if notation == "exponent":
        assert forms <= {"e", "E"} and "e" in forms
    else:
        assert {"plain", "e", "E", "zeros"} <= forms


def _form(text: str) -> str:
    if "e" in text or "E" in text:
        return "e" if "e" in text else "E"
    return "zeros" if text.endswith("000") else "plain"


def test_an_override_serves_its_text_for_the_next_amounts_of_its_field(
    sandboxes: Sandboxes,
) -> None:
    sandboxes.stackspend.amount_notation = "mixed"
    answer = sandboxes.admin(
        "stackspend", "amount-override", {"text": "1e30", "field": "cost_usd", "count": 2}
    )
    assert answer.json()["data"]["override"] == {"text": "1e30", "field": "cost_usd", "count": 2}
    first = sandboxes.bodies()
    rollups = [text for _, text in money_texts(first["daily_rollups"], ("cost_usd",))]
    assert rollups[:2] == ["1e30", "1e30"] and "1e30" not in rollups[2:]
    for name in ("line_items", "anomalies"):
        assert "1e30" not in {t for _, t in money_texts(first[name], stackspend.MONEY_FIELDS)}
    again = sandboxes.bodies()["daily_rollups"]
    assert "1e30" not in {t for _, t in money_texts(again, ("cost_usd",))}


def test_an_override_without_a_count_lasts_until_cleared(sandboxes: Sandboxes) -> None:
    sandboxes.levelfour.override_amount("-1.7e38")
    for _ in range(2):
        body = sandboxes.bodies()["spending_breakdown"]
        texts = {t for _, t in money_texts(body, levelfour.MONEY_FIELDS)}
        assert texts == {"-1.7e38"}
    answer = sandboxes.admin("levelfour", "amount-override", {"text": None})
    assert answer.json()["data"]["override"] is None
    body = sandboxes.bodies()["spending_breakdown"]
    assert "-1.7e38" not in {t for _, t in money_texts(body, levelfour.MONEY_FIELDS)}


@pytest.mark.parametrize(
    ("vendor", "action", "body", "says"),
    [
        ("stackspend", "amount-notation", {"notation": "roman"}, "plain, exponent, mixed"),
        ("levelfour", "amount-notation", {}, "notation"),
        ("stackspend", "amount-override", {"text": "1e30", "field": "cost"}, "net_amount_usd"),
        ("levelfour", "amount-override", {"text": "1e30", "count": 0}, "count must be >= 1"),
        ("levelfour", "amount-override", {"field": "cost"}, "text is required"),
    ],
)
def test_bad_amount_knob_settings_are_refused_with_422(
    sandboxes: Sandboxes, vendor: str, action: str, body: dict[str, Any], says: str
) -> None:
    answer = sandboxes.admin(vendor, action, body)
    assert answer.status_code == 422
    assert says in answer.text
