"""Focused client tests with `responses`: errors, retries, pacing, secrecy."""

from __future__ import annotations

import json
from datetime import date

import pytest
import responses

from sources.shared.connection import Connection
from sources.shared.errors import (
    AuthenticationError,
    ForbiddenError,
    PagingError,
    PlanRestrictedError,
    RequestValidationError,
    RetriesExhaustedError,
    SchemaChangeError,
    ScopeError,
)
from sources.shared.pacing import RateLimiter
from sources.shared.retry import RetryPolicy
from sources.stackspend.client import StackSpendClient

BASE = "https://api.stackspend.test"
LINE_ITEMS = f"{BASE}/api/v1/public/line-items"
ANOMALIES = f"{BASE}/api/v1/public/anomalies"
KEY = "ss_secret_key_0123456789"
DAY = date(2025, 1, 15)


class FakeClock:
    """A clock that advances only when something sleeps."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def client(clock: FakeClock) -> StackSpendClient:
    client = StackSpendClient(
        Connection(BASE, KEY, 60, RetryPolicy(max_attempts=4, backoff_seconds=0.5))
    )
    client.session.limiter = RateLimiter(60, clock=clock, sleep=clock.sleep)
    return client


def envelope(data: object, meta: object = None, error: object = None) -> str:
    return json.dumps({"data": data, "error": error, "meta": meta or {}})


def error_body(code: str, message: str) -> str:
    return envelope(None, error={"code": code, "message": message})


ITEM = (
    '{"id":"li_1","usage_date":"2025-01-15","provider_type":"openai","provider_service":"gpt-4o",'
    '"net_amount_usd":12.480001,"currency_original":"USD","project_id":"p","user_email":null}'
)


def page(items: str = ITEM, cursor: str | None = None) -> str:
    more = "true" if cursor else "false"
    next_cursor = json.dumps(cursor)
    meta = f'{{"next_cursor":{next_cursor},"has_more":{more}}}'
    return f'{{"data":[{items}],"error":null,"meta":{meta}}}'


@responses.activate
def test_sends_the_key_in_the_x_api_key_header(client: StackSpendClient) -> None:
    responses.get(LINE_ITEMS, body=page())
    client.line_items_page(DAY, DAY)
    assert responses.calls[0].request.headers["X-API-Key"] == KEY
    assert KEY not in responses.calls[0].request.url


@responses.activate
def test_money_arrives_exact_as_decimal(client: StackSpendClient) -> None:
    from decimal import Decimal

    responses.get(LINE_ITEMS, body=page())
    result = client.line_items_page(DAY, DAY)
    assert result.items.column("net_amount_usd").to_pylist() == [Decimal("12.480001")]
    assert result.has_more is False


@responses.activate
def test_cursor_and_limit_are_sent(client: StackSpendClient) -> None:
    responses.get(LINE_ITEMS, body=page(cursor="abc"))
    result = client.line_items_page(DAY, DAY, {"cursor": "prev"})
    params = responses.calls[0].request.params
    assert params == {
        "start_date": "2025-01-15",
        "end_date": "2025-01-15",
        "limit": "1000",
        "cursor": "prev",
    }
    assert (result.next_cursor, result.has_more) == ("abc", True)


@pytest.mark.parametrize(
    ("status", "code", "error_type"),
    [
        (401, "UNAUTHORIZED", AuthenticationError),
        (403, "FORBIDDEN", ForbiddenError),
        (403, "INVALID_SCOPE", ScopeError),
        (403, "PLAN_RESTRICTED", PlanRestrictedError),
        (422, "VALIDATION_ERROR", RequestValidationError),
    ],
)
@responses.activate
def test_client_errors_are_typed_and_never_retried(
    client: StackSpendClient, status: int, code: str, error_type: type
) -> None:
    responses.get(LINE_ITEMS, status=status, body=error_body(code, f"server says {code}"))
    with pytest.raises(error_type) as raised:
        client.line_items_page(DAY, DAY)
    assert len(responses.calls) == 1
    assert raised.value.code == code
    assert raised.value.status == status
    assert f"server says {code}" in str(raised.value)


@responses.activate
def test_missing_scope_names_the_scope_of_the_endpoint(client: StackSpendClient) -> None:
    responses.get(ANOMALIES, status=403, body=error_body("INVALID_SCOPE", "missing scope"))
    with pytest.raises(ScopeError) as raised:
        client.anomalies("2025-01-01T00:00:00Z", {})
    assert raised.value.scope == "anomalies:read"


@responses.activate
def test_500_is_retried_with_backoff_then_succeeds(
    client: StackSpendClient, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    draws: list[tuple[float, float]] = []

    def highest(low: float, high: float) -> float:
        draws.append((low, high))
        return high

    monkeypatch.setattr("random.uniform", highest)
    responses.get(LINE_ITEMS, status=500, body=error_body("INTERNAL_ERROR", "boom"))
    responses.get(LINE_ITEMS, status=500, body=error_body("INTERNAL_ERROR", "boom"))
    responses.get(LINE_ITEMS, body=page())
    result = client.line_items_page(DAY, DAY)
    assert result.items.num_rows == 1
    assert len(responses.calls) == 3
    assert draws == [(0, 0.5), (0, 1.0)]  # full jitter under a ceiling that doubles
    assert clock.sleeps[0] == 0.5 and clock.sleeps[2] == 1.0  # between: the pacing interval


@responses.activate
def test_429_waits_the_retry_after_header(client: StackSpendClient, clock: FakeClock) -> None:
    responses.get(
        LINE_ITEMS,
        status=429,
        headers={"Retry-After": "7"},
        body=error_body("RATE_LIMITED", "You have exceeded 60 requests per minute."),
    )
    responses.get(LINE_ITEMS, body=page())
    client.line_items_page(DAY, DAY)
    assert 7.0 in clock.sleeps
    assert client.session.stats.rate_limited == 1


@pytest.mark.parametrize("asked", ["0", "-5", "nan", "inf"])
@responses.activate
def test_429_asking_for_no_wait_still_waits_a_second(
    client: StackSpendClient, clock: FakeClock, asked: str
) -> None:
    refusal = error_body("RATE_LIMITED", "Slow down.")
    responses.get(LINE_ITEMS, status=429, headers={"Retry-After": asked}, body=refusal)
    responses.get(LINE_ITEMS, body=page())
    client.line_items_page(DAY, DAY)
    assert clock.sleeps and min(clock.sleeps) >= 0.25  # a backoff, never a busy loop
    assert all(s <= 300 for s in clock.sleeps)


@responses.activate
def test_429_asking_for_a_huge_wait_gives_up_at_once(
    client: StackSpendClient, clock: FakeClock
) -> None:
    refusal = error_body("RATE_LIMITED", "Slow down.")
    responses.get(LINE_ITEMS, status=429, headers={"Retry-After": "86400"}, body=refusal)
    with pytest.raises(RetriesExhaustedError, match="asks to wait 86,400 s"):
        client.line_items_page(DAY, DAY)
    assert len(responses.calls) == 1
    assert all(s < 86400 for s in clock.sleeps)


@responses.activate
def test_a_key_echoed_json_escaped_is_masked(clock: FakeClock) -> None:
    key = "ss_live_a1b2/c3d4"
    client = StackSpendClient(Connection(BASE, key, 60, RetryPolicy(max_attempts=1)))
    body = error_body("UNAUTHORIZED", f"The key {key} is not valid")
    responses.get(LINE_ITEMS, status=401, body=body.replace("/", "\\/"))  # JSON allows \/
    with pytest.raises(AuthenticationError) as raised:
        client.line_items_page(DAY, DAY)
    assert key not in str(raised.value) and "***" in str(raised.value)
    assert key not in raised.value.server_message


@responses.activate
def test_line_item_pages_with_no_rows_that_say_more_end_in_a_paging_error(
    client: StackSpendClient,
) -> None:
    from sources.shared.windows import Window
    from sources.stackspend.helpers import line_item_pages

    for n in range(10):
        responses.get(LINE_ITEMS, body=page("", cursor=f"c{n}"))
    with pytest.raises(PagingError, match="3 pages in a row brought no rows"):
        list(line_item_pages(client, Window(DAY, DAY)))
    assert len(responses.calls) <= 5  # 3 pages, and at most 2 requested ahead


@responses.activate
def test_429_without_header_waits_what_the_message_says(
    client: StackSpendClient, clock: FakeClock
) -> None:
    message = "You have exceeded 60 requests per minute. Retry after 30 seconds."
    responses.get(LINE_ITEMS, status=429, body=error_body("RATE_LIMITED", message))
    responses.get(LINE_ITEMS, body=page())
    client.line_items_page(DAY, DAY)
    assert 30.0 in clock.sleeps


@pytest.mark.parametrize(
    "body", ["<html>bad gateway", '{"data": [{"id": "li_1", "usage_date": "2025-01-1', ""]
)
@responses.activate
def test_invalid_json_bodies_are_retried(client: StackSpendClient, body: str) -> None:
    responses.get(LINE_ITEMS, status=200, body=body)
    responses.get(LINE_ITEMS, body=page())
    assert client.line_items_page(DAY, DAY).items.num_rows == 1
    assert len(responses.calls) == 2


@responses.activate
def test_connection_errors_and_timeouts_are_retried(client: StackSpendClient) -> None:
    import requests

    responses.get(LINE_ITEMS, body=requests.ConnectionError("refused"))
    responses.get(LINE_ITEMS, body=requests.Timeout("slow"))
    responses.get(LINE_ITEMS, body=page())
    assert client.line_items_page(DAY, DAY).items.num_rows == 1
    assert len(responses.calls) == 3


@responses.activate
def test_retries_are_bounded(client: StackSpendClient) -> None:
    responses.get(LINE_ITEMS, status=500, body=error_body("INTERNAL_ERROR", "still down"))
    with pytest.raises(RetriesExhaustedError) as raised:
        client.line_items_page(DAY, DAY)
    assert len(responses.calls) == 4
    assert "gave up after 4 attempts" in str(raised.value)
    assert "still down" in str(raised.value)


@responses.activate
def test_a_field_that_changes_type_is_a_schema_error_not_retried(
    client: StackSpendClient,
) -> None:
    responses.get(LINE_ITEMS, body=page(ITEM.replace("12.480001", '{"amount": 1}')))
    with pytest.raises(SchemaChangeError) as raised:
        client.line_items_page(DAY, DAY)
    assert "net_amount_usd" in str(raised.value)
    assert len(responses.calls) == 1


@responses.activate
def test_an_echoed_key_is_masked_in_errors(client: StackSpendClient) -> None:
    responses.get(LINE_ITEMS, status=401, body=error_body("UNAUTHORIZED", f"bad key {KEY}"))
    with pytest.raises(AuthenticationError) as raised:
        client.line_items_page(DAY, DAY)
    assert KEY not in str(raised.value)
    assert "bad key ***" in str(raised.value)


def test_pacing_spaces_requests_evenly(clock: FakeClock) -> None:
    limiter = RateLimiter(120, clock=clock, sleep=clock.sleep)
    sent = []
    for _ in range(5):
        limiter.release(limiter.acquire())
        sent.append(clock.now)
    assert sent == [0.0, 0.5, 1.0, 1.5, 2.0]


def test_pacing_keeps_to_its_timeline_when_wake_ups_come_late(clock: FakeClock) -> None:
    limiter = RateLimiter(120, clock=clock, sleep=lambda seconds: clock.sleep(seconds + 0.005))
    sent = []
    for _ in range(5):
        limiter.release(limiter.acquire())
        sent.append(clock.now)
    # each wake-up is 5 ms late, and the lateness does not add up
    assert sent == pytest.approx([0.0, 0.505, 1.005, 1.505, 2.005])


def test_pacing_after_a_pause_in_requests_spaces_them_again(clock: FakeClock) -> None:
    limiter = RateLimiter(120, clock=clock, sleep=clock.sleep)
    limiter.release(limiter.acquire())
    clock.now = 10.0  # nothing was asked for a while: no burst to catch up
    sent = []
    for _ in range(3):
        limiter.release(limiter.acquire())
        sent.append(clock.now)
    assert sent == [10.0, 10.5, 11.0]


def test_pacing_counts_time_spent_waiting_for_responses(clock: FakeClock) -> None:
    limiter = RateLimiter(60, clock=clock, sleep=clock.sleep)
    limiter.acquire()
    clock.now += 0.7  # the response took 0.7 s
    limiter.acquire()
    assert clock.sleeps == [pytest.approx(0.3)]


def test_pacing_keeps_every_servers_minute_within_the_limit_despite_latency(
    clock: FakeClock,
) -> None:
    import random

    limiter = RateLimiter(10, clock=clock, sleep=clock.sleep)
    rng = random.Random(4)
    arrivals = []
    for _ in range(40):
        ticket = limiter.acquire()
        arrivals.append(clock.now + rng.uniform(0, 0.4))  # the server times it on arrival
        clock.now += 0.4  # the answer is back 0.4 s after sending
        limiter.release(ticket)
    arrivals.sort()
    for i, moment in enumerate(arrivals):
        assert len([t for t in arrivals[i:] if t < moment + 60.0]) <= 10
    assert arrivals[-1] <= 39 * 6.0 + 4 * 0.5  # and no idling: about a round trip a minute


def test_pacing_waits_for_an_unanswered_request_a_minute_back(clock: FakeClock) -> None:
    limiter = RateLimiter(2, clock=clock, sleep=clock.sleep)
    first = limiter.acquire()
    limiter.release(limiter.acquire())
    answers = iter([None, None, 65.0])  # the first request is still in flight for a while

    def sleep(seconds: float) -> None:
        clock.sleep(seconds)
        if first.answered is None and clock.now >= 60.0:
            first.answered = next(answers) or None

    limiter._sleep = sleep
    limiter.acquire()
    assert clock.now >= 65.0 + 60.0


@responses.activate
def test_redirects_are_refused_so_the_key_never_travels(client: StackSpendClient) -> None:
    from sources.shared.errors import ApiError

    elsewhere = "https://evil.example/api/v1/public/line-items"
    responses.get(LINE_ITEMS, status=302, headers={"Location": elsewhere})
    with pytest.raises(ApiError, match=r"redirected to 'https://evil\.example"):
        client.line_items_page(DAY, DAY)
    assert len(responses.calls) == 1


@responses.activate
def test_a_body_cut_off_mid_stream_is_retried(client: StackSpendClient) -> None:
    import requests
    from urllib3.exceptions import ProtocolError

    responses.get(LINE_ITEMS, body=requests.exceptions.ChunkedEncodingError(ProtocolError("cut")))
    responses.get(LINE_ITEMS, body=page())
    assert client.line_items_page(DAY, DAY).items.num_rows == 1


@responses.activate
def test_float_summed_amounts_arrive_exact(client: StackSpendClient) -> None:
    from decimal import Decimal

    responses.get(LINE_ITEMS, body=page(ITEM.replace("12.480001", "0.30000000000000004")))
    result = client.line_items_page(DAY, DAY)
    assert result.items.column("net_amount_usd").to_pylist() == [Decimal("0.30000000000000004")]


@responses.activate
def test_more_decimals_than_the_column_holds_is_a_schema_error(client: StackSpendClient) -> None:
    responses.get(LINE_ITEMS, body=page(ITEM.replace("12.480001", "0.1234567890123456789")))
    with pytest.raises(SchemaChangeError, match="'net_amount_usd' has more than 18 decimal"):
        client.line_items_page(DAY, DAY)


ROLLUPS = f"{BASE}/api/v1/public/rollups/daily"
ROLLUP = '{"date":"2025-01-15","cost_usd":%s,"provider_type":"%s","service":null,"category":null}'


def paged(rows: str, cursor: str | None, has_more: str | None) -> str:
    meta = {"next_cursor": cursor} | ({} if has_more is None else {"has_more": has_more == "true"})
    return f'{{"data":[{rows}],"error":null,"meta":{json.dumps(meta)}}}'


@pytest.mark.parametrize("has_more", ["true", None])  # has_more absent: a cursor means more
@responses.activate
def test_rollups_follow_a_cursor_the_api_sends(client: StackSpendClient, has_more: str) -> None:
    from sources.shared.windows import Window
    from sources.stackspend.helpers import rollup_tables

    def answer(request: object) -> tuple[int, dict, str]:
        if request.params.get("cursor") == "c2":  # type: ignore[attr-defined]
            return 200, {}, paged(ROLLUP % ("1.5", "gcp"), None, "false")
        return 200, {}, paged(ROLLUP % ("2.5", "aws"), "c2", has_more)

    responses.add_callback(responses.GET, ROLLUPS, callback=answer)
    tables = list(rollup_tables(client, Window(DAY, DAY)))
    costs = [str(v) for t in tables for v in t.column("cost_usd").to_pylist()]
    assert sorted(costs) == sorted(["2.500000000000000000", "1.500000000000000000"] * 3)


@responses.activate
def test_a_rollup_served_twice_is_refused(client: StackSpendClient) -> None:
    from sources.shared.windows import Window
    from sources.stackspend.helpers import rollup_tables

    def answer(request: object) -> tuple[int, dict, str]:
        if request.params.get("cursor") == "c2":  # type: ignore[attr-defined]
            return 200, {}, paged(ROLLUP % ("1.5", "aws"), None, "false")
        return 200, {}, paged(ROLLUP % ("2.5", "aws"), "c2", "true")

    responses.add_callback(responses.GET, ROLLUPS, callback=answer)
    with pytest.raises(PagingError, match="group_by=provider rollup is served twice"):
        list(rollup_tables(client, Window(DAY, DAY)))
