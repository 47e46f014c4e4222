"""Focused LevelFour client tests with `responses`: errors, retries, secrecy."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
import responses

from sources.levelfour.client import LevelFourClient
from sources.shared.connection import Connection
from sources.shared.errors import (
    AuthenticationError,
    ForbiddenError,
    RequestValidationError,
    RetriesExhaustedError,
    SchemaChangeError,
)
from sources.shared.pacing import RateLimiter
from sources.shared.retry import RetryPolicy
from tests.stackspend.test_client import FakeClock

BASE = "https://api.levelfour.test"
URL = f"{BASE}/api/v1/spending/breakdown"
KEY = "l4_test_secret_0123456789"


def body(items: list[dict] | None = None, has_next: bool = False) -> str:
    items = items or [item(cost=10.5, previous_cost=9, change_percentage=16.67)]
    pagination = {"total_items": len(items), "total_pages": 1, "current_page": 1}
    pagination |= {"page_size": len(items), "has_next": has_next, "has_previous": False}
    data = {"period": "2025-01", "items": items, "pagination": pagination}
    return json.dumps({"success": True, "timestamp": "2025-01-02T00:00:00Z", "data": data})


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def client(clock: FakeClock) -> LevelFourClient:
    client = LevelFourClient(
        Connection(BASE, KEY, 60, RetryPolicy(max_attempts=3, backoff_seconds=0.1))
    )
    client.session.limiter = RateLimiter(60, clock=clock, sleep=clock.sleep)
    return client


@responses.activate
def test_sends_a_bearer_token(client: LevelFourClient) -> None:
    responses.get(URL, body=body())
    page = client.breakdown("2025-01", {"format": "raw"})
    assert responses.calls[0].request.headers["Authorization"] == f"Bearer {KEY}"
    assert responses.calls[0].request.params == {"period": "2025-01", "format": "raw"}
    assert page.items.num_rows == 1 and page.period == "2025-01"


@responses.activate
def test_422_detail_list_becomes_one_line_naming_the_parameter(client: LevelFourClient) -> None:
    detail = [
        {
            "type": "less_than_equal",
            "loc": ["query", "page_size"],
            "msg": "Input should be less than or equal to 100",
            "input": "500",
            "ctx": {"le": 100},
        }
    ]
    responses.get(URL, status=422, json={"detail": detail})
    with pytest.raises(RequestValidationError) as raised:
        client.breakdown("2025-01", {"format": "table", "page_size": 500})
    assert raised.value.parameter == "page_size"
    assert "page_size: Input should be less than or equal to 100 (got '500')" in str(raised.value)
    assert "\n" not in str(raised.value)
    assert len(responses.calls) == 1


@pytest.mark.parametrize(
    ("status", "error_type"), [(401, AuthenticationError), (403, ForbiddenError)]
)
@responses.activate
def test_auth_errors_are_not_retried(
    client: LevelFourClient, status: int, error_type: type
) -> None:
    responses.get(URL, status=status, json={"detail": "API key revoked"})
    with pytest.raises(error_type, match="API key revoked"):
        client.breakdown("2025-01", {"format": "raw"})
    assert len(responses.calls) == 1


@responses.activate
def test_429_honours_retry_after(client: LevelFourClient, clock: FakeClock) -> None:
    responses.get(URL, status=429, headers={"Retry-After": "12"}, json={"detail": "Rate limit"})
    responses.get(URL, body=body())
    client.breakdown("2025-01", {"format": "raw"})
    assert 12.0 in clock.sleeps


@pytest.mark.parametrize(
    "failure",
    [
        {"status": 500, "body": "Internal Server Error"},
        {"status": 503, "body": "<html>unavailable</html>"},
        {"status": 200, "body": '{"success": true, "data": {"items": [{"cost": 1'},
    ],
)
@responses.activate
def test_server_errors_and_invalid_bodies_are_retried(
    client: LevelFourClient, failure: dict
) -> None:
    responses.get(URL, **failure)
    responses.get(URL, body=body())
    assert client.breakdown("2025-01", {"format": "raw"}).items.num_rows == 1
    assert len(responses.calls) == 2


@responses.activate
def test_retries_are_bounded(client: LevelFourClient) -> None:
    responses.get(URL, status=502, body="bad gateway")
    with pytest.raises(RetriesExhaustedError):
        client.breakdown("2025-01", {"format": "raw"})
    assert len(responses.calls) == 3


@responses.activate
def test_an_echoed_key_is_masked(client: LevelFourClient) -> None:
    responses.get(URL, status=401, json={"detail": f"Invalid API key {KEY}"})
    with pytest.raises(AuthenticationError) as raised:
        client.breakdown("2025-01", {"format": "raw"})
    assert KEY not in str(raised.value)


@pytest.mark.parametrize(
    ("status", "answer"),
    [
        (422, {"detail": [{"loc": ["query", "format"], "msg": "raw is not available"}]}),
        (400, {"detail": "format 'raw' is not supported on this plan"}),
    ],
)
@responses.activate
def test_refused_raw_falls_back_to_table_pages_and_remembers(
    client: LevelFourClient, status: int, answer: dict
) -> None:
    from sources.levelfour.helpers import breakdown_table

    responses.get(URL, status=status, json=answer, match=[_format("raw")])
    responses.get(URL, body=body(), match=[_format("table")])
    state: dict = {}
    (table,) = breakdown_table(client, "2025-01", state)
    assert table.num_rows == 1 and state["format"] == "table"
    table_call = responses.calls[1].request.params
    assert table_call["page_size"] == "100" and table_call["page"] == "1"
    list(breakdown_table(client, "2025-01", state))
    assert len(responses.calls) == 3  # raw is not asked again


def _format(value: str) -> object:
    from responses import matchers

    return matchers.query_param_matcher({"format": value}, strict_match=False)


def item(**fields: object) -> dict:
    base = {
        "service": "ec2",
        "provider_id": "aws",
        "environment": None,
        "region": "us-east-1",
        "account_id": "123",
        "tag_key": None,
        "tag_value": None,
        "cost": 1.5,
        "previous_cost": 1,
        "change_percentage": 50.0,
    }
    return {**base, **fields}


def answer(items: list[dict], period: str = "2025-01", **pagination: object) -> str:
    data = {"period": period, "items": items, "pagination": pagination}
    return json.dumps({"success": True, "data": data})


def pages_by_number(pages: dict[int, str]) -> object:
    def callback(request: object) -> tuple[int, dict, str]:
        number = int(request.params.get("page", "1"))  # type: ignore[attr-defined]
        return 200, {}, pages[number]

    return callback


def read(client: LevelFourClient, state: dict | None = None) -> list[dict]:
    from sources.levelfour.helpers import breakdown_table

    (table,) = breakdown_table(client, "2025-01", {} if state is None else state)
    return table.to_pylist()


@responses.activate
def test_raw_records_sharing_an_item_key_are_summed(client: LevelFourClient) -> None:
    records = [item(cost=1.5, previous_cost=1), item(cost=2.5, previous_cost=1), item(region="eu")]
    responses.get(URL, body=answer(records))
    rows = sorted(read(client), key=lambda r: r["region"])
    assert [(r["region"], r["cost"], r["previous_cost"]) for r in rows] == [
        ("eu", Decimal("1.5"), Decimal(1)),
        ("us-east-1", Decimal(4), Decimal(2)),
    ]
    assert rows[1]["change_percentage"] == 100.0


@responses.activate
def test_pages_are_counted_here_not_by_the_answers_page_number(client: LevelFourClient) -> None:
    pages = {
        1: answer([item(region="a")], current_page=0, has_next=True),
        2: answer([item(region="b")], current_page=0, has_next=True),
        3: answer([item(region="c")], current_page=0, has_next=False),
    }
    responses.add_callback(responses.GET, URL, callback=pages_by_number(pages))
    assert sorted(r["region"] for r in read(client)) == ["a", "b", "c"]


@responses.activate
def test_total_pages_alone_is_followed_when_has_next_is_absent(client: LevelFourClient) -> None:
    pages = {n: answer([item(region=str(n))], total_pages=3) for n in (1, 2, 3)}
    responses.add_callback(responses.GET, URL, callback=pages_by_number(pages))
    assert len(read(client)) == 3


@responses.activate
def test_a_page_that_repeats_the_last_one_is_an_error(client: LevelFourClient) -> None:
    from sources.shared.errors import PagingError

    responses.get(URL, body=answer([item()], has_next=True))
    with pytest.raises(PagingError, match="page 2 repeats page 1"):
        read(client)
    assert len(responses.calls) == 2


@responses.activate
def test_raw_in_another_shape_is_a_schema_change_not_a_refusal(client: LevelFourClient) -> None:
    responses.get(URL, json={"success": True, "data": [item()]})
    state: dict = {}
    with pytest.raises(SchemaChangeError, match="field 'data'"):
        read(client, state)
    assert "format" not in state  # raw stays the format: only a refusal switches
    assert len(responses.calls) == 1


@responses.activate
def test_items_with_their_own_period_and_a_dated_period_are_read(client: LevelFourClient) -> None:
    responses.get(URL, body=answer([item(period="2025-01")], period="2025-01-01"))
    assert [r["period"] for r in read(client)] == ["2025-01"]


@responses.activate
def test_a_422_about_another_parameter_is_not_taken_for_raw_refused(
    client: LevelFourClient,
) -> None:
    detail = [{"loc": ["query", "period"], "msg": "must be in YYYY-MM format", "input": "x"}]
    responses.get(URL, status=422, json={"detail": detail})
    with pytest.raises(RequestValidationError, match="period: must be in YYYY-MM format"):
        read(client)
    assert len(responses.calls) == 1


@responses.activate
def test_a_long_422_detail_still_names_the_parameter(client: LevelFourClient) -> None:
    detail = [
        {"type": "x", "loc": ["query", name], "msg": "Input should be valid " * 8, "input": "?"}
        for name in ("page_size", "sort_by", "sort_order", "granularity", "period")
    ]
    responses.get(URL, status=422, json={"detail": detail})
    with pytest.raises(RequestValidationError) as raised:
        client.breakdown("2025-01", {"format": "table"})
    assert raised.value.parameter == "page_size"
    assert str(raised.value).endswith("...") and len(str(raised.value)) < 500
