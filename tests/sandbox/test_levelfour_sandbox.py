"""The LevelFour sandbox behaves as LevelFour's API reference says, over real HTTP."""

from __future__ import annotations

import csv
import io
import json
import re
import time
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
import requests

from sandbox import stackspend
from sandbox.http import Request, SandboxServer
from sandbox.levelfour import (
    ADMIN_PREFIX,
    BREAKDOWN_PATH,
    DEMO_KEY,
    DEMO_KEYS,
    ITEM_FIELDS,
    LIVE_DEMO_KEY,
    REVOKED_KEY,
    LevelFourSandbox,
)

PERIOD, PREVIOUS = "2025-03", "2025-02"
IDENTITY = (
    "provider_id",
    "account_id",
    "region",
    "service",
    "environment",
    "tag_key",
    "tag_value",
)
SORT_FIELDS = ["cost", "service", "region", "account_id", "change_percentage"]


class Api:
    """A thin `requests` client for one running sandbox."""

    def __init__(self, sandbox: LevelFourSandbox, url: str) -> None:
        self.sandbox = sandbox
        self.url = url
        self.session = requests.Session()

    def get(
        self,
        params: dict[str, Any] | None = None,
        key: str | None = DEMO_KEY,
        headers: dict[str, str] | None = None,
        path: str = BREAKDOWN_PATH,
    ) -> requests.Response:
        sent = {"Authorization": f"Bearer {key}"} if key is not None else {}
        return self.session.get(self.url + path, params=params, headers={**sent, **(headers or {})})

    def admin(self, action: str, body: Any = None) -> dict[str, Any]:
        url = self.url + ADMIN_PREFIX + action
        response = self.session.get(url) if body is None else self.session.post(url, json=body)
        assert response.status_code == 200, response.text
        payload = response.json()
        assert payload["success"] is True
        return payload["data"]

    def all_pages(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        """Every item, following `has_next` from page 1."""
        items: list[dict[str, Any]] = []
        for page in range(1, 100_000):  # a bound: pages that never end fail below
            data = exact(self.get({**params, "page": page}))["data"]
            assert data["pagination"]["current_page"] == page
            items.extend(data["items"])
            if not data["pagination"]["has_next"]:
                return items
        raise AssertionError("the pages never ended")


def exact(response: requests.Response) -> dict[str, Any]:
    """A success body parsed with every JSON fraction as a Decimal."""
    assert response.status_code == 200, response.text
    payload = json.loads(response.text, parse_float=Decimal)
    assert list(payload) == ["success", "timestamp", "data"]
    assert payload["success"] is True
    return payload


def detail(response: requests.Response, status: int) -> Any:
    """Assert a FastAPI-style error body; return its `detail`."""
    assert response.status_code == status, response.text
    body = response.json()
    assert list(body) == ["detail"]
    return body["detail"]


def make_sandbox(**overrides: Any) -> LevelFourSandbox:
    settings: dict[str, Any] = {
        "seed": 7,
        "current_period": PERIOD,
        "months": 4,
        "items_per_month": 40,
    }
    return LevelFourSandbox(**{**settings, **overrides})


@pytest.fixture
def sandbox() -> LevelFourSandbox:
    return make_sandbox()


@pytest.fixture
def api(sandbox: LevelFourSandbox) -> Iterator[Api]:
    with SandboxServer([sandbox]) as server:
        yield Api(sandbox, server.url)


def as_api(item: dict[str, Any]) -> dict[str, Any]:
    """A ground-truth item as the API writes it (without its period)."""
    return {k: v for k, v in item.items() if k != "period"}


def identity(item: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(item[field] for field in IDENTITY)


def identity_order(item: dict[str, Any]) -> tuple[tuple[bool, str], ...]:
    return tuple((item[field] is not None, item[field] or "") for field in IDENTITY)


def error_entry(name: str, kind: str, msg: str, value: str, ctx: Any = None) -> dict[str, Any]:
    entry: dict[str, Any] = {"type": kind, "loc": ["query", name], "msg": msg, "input": value}
    return entry if ctx is None else {**entry, "ctx": ctx}


# --- authentication ----------------------------------------------------------------


def test_missing_authorization_is_not_authenticated(api: Api) -> None:
    response = api.get(key=None)
    assert detail(response, 401) == "Not authenticated"
    assert response.headers["WWW-Authenticate"] == "Bearer"


@pytest.mark.parametrize(
    ("authorization", "message"),
    [
        ("Bearer", "Not authenticated"),
        ("", "Not authenticated"),
        ("Basic dXNlcjpwYXNz", "Invalid authentication credentials"),
        (f"Token {DEMO_KEY}", "Invalid authentication credentials"),
    ],
)
def test_authorization_must_be_a_bearer_token(api: Api, authorization: str, message: str) -> None:
    response = api.get(key=None, headers={"Authorization": authorization})
    assert detail(response, 401) == message


@pytest.mark.parametrize(
    "key", ["sk_live_abc", "l4_prod_abc", "l4_test_", "L4_TEST_demo_key", "l4_test_demo key"]
)
def test_key_without_l4_live_or_l4_test_prefix_is_an_invalid_format(api: Api, key: str) -> None:
    assert detail(api.get(key=key), 401) == "Invalid API key format"


def test_unknown_key_is_invalid(api: Api) -> None:
    assert detail(api.get(key="l4_test_nobody"), 401) == "Invalid API key"


def test_revoked_key_is_forbidden(api: Api) -> None:
    assert detail(api.get(key=REVOKED_KEY), 403) == "API key revoked"
    api.sandbox.add_key("l4_live_soon_gone")
    assert api.get(key="l4_live_soon_gone").status_code == 200
    api.sandbox.revoke_key("l4_live_soon_gone")
    assert detail(api.get(key="l4_live_soon_gone"), 403) == "API key revoked"


def test_live_and_test_keys_are_accepted_with_any_scheme_case(api: Api) -> None:
    assert api.get(key=LIVE_DEMO_KEY).status_code == 200
    lower = {"Authorization": f"bearer {DEMO_KEY}"}
    assert api.get(key=None, headers=lower).status_code == 200
    assert set(DEMO_KEYS) == {DEMO_KEY, LIVE_DEMO_KEY, REVOKED_KEY}


def test_only_prefixed_keys_can_be_added(sandbox: LevelFourSandbox) -> None:
    with pytest.raises(ValueError):
        sandbox.add_key("sk_live_abc")
    with pytest.raises(KeyError):
        sandbox.revoke_key("l4_test_never_added")


def test_checks_run_in_order_route_auth_rate_limit_fault_validation(api: Api) -> None:
    bad = {"page": "0"}
    assert detail(api.get(bad, key=None, path="/api/v1/spending/nothing"), 404) == "Not Found"
    assert detail(api.get(bad, key=None), 401) == "Not authenticated"
    assert detail(api.get(bad, key=REVOKED_KEY), 403) == "API key revoked"
    api.sandbox.set_rate_limit(1)
    assert detail(api.get(bad), 422)[0]["loc"] == ["query", "page"]
    assert detail(api.get(bad), 429).startswith("Rate limit exceeded.")
    api.sandbox.set_rate_limit(None)
    api.sandbox.fail_next(1)
    assert api.get(bad).status_code == 500
    assert detail(api.get(bad), 422)[0]["loc"] == ["query", "page"]


# --- validation ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        (
            "format",
            "xml",
            error_entry(
                "format",
                "string_pattern_mismatch",
                "String should match pattern '^(table|chart|csv|raw)$'",
                "xml",
                {"pattern": "^(table|chart|csv|raw)$"},
            ),
        ),
        (
            "granularity",
            "hourly",
            error_entry(
                "granularity",
                "string_pattern_mismatch",
                "String should match pattern '^(daily|monthly)$'",
                "hourly",
                {"pattern": "^(daily|monthly)$"},
            ),
        ),
        (
            "sort_by",
            "date",
            error_entry(
                "sort_by",
                "string_pattern_mismatch",
                "String should match pattern "
                "'^(cost|service|region|account_id|change_percentage)$'",
                "date",
                {"pattern": "^(cost|service|region|account_id|change_percentage)$"},
            ),
        ),
        (
            "sort_order",
            "DESC",
            error_entry(
                "sort_order",
                "string_pattern_mismatch",
                "String should match pattern '^(asc|desc)$'",
                "DESC",
                {"pattern": "^(asc|desc)$"},
            ),
        ),
        (
            "page",
            "0",
            error_entry(
                "page",
                "greater_than_equal",
                "Input should be greater than or equal to 1",
                "0",
                {"ge": 1},
            ),
        ),
        (
            "page",
            "two",
            error_entry(
                "page",
                "int_parsing",
                "Input should be a valid integer, unable to parse string as an integer",
                "two",
            ),
        ),
        (
            "page_size",
            "0",
            error_entry(
                "page_size",
                "greater_than_equal",
                "Input should be greater than or equal to 1",
                "0",
                {"ge": 1},
            ),
        ),
        (
            "page_size",
            "500",
            error_entry(
                "page_size",
                "less_than_equal",
                "Input should be less than or equal to 100",
                "500",
                {"le": 100},
            ),
        ),
        (
            "page_size",
            "1.5",
            error_entry(
                "page_size",
                "int_parsing",
                "Input should be a valid integer, unable to parse string as an integer",
                "1.5",
            ),
        ),
        (
            "provider_id",
            "oci",
            error_entry(
                "provider_id",
                "literal_error",
                "Input should be 'aws', 'gcp', 'azure' or 'k8s'",
                "oci",
                {"expected": "'aws', 'gcp', 'azure' or 'k8s'"},
            ),
        ),
        (
            "group_by",
            "service",
            error_entry(
                "group_by",
                "literal_error",
                "Input should be 'provider' or 'account_id'",
                "service",
                {"expected": "'provider' or 'account_id'"},
            ),
        ),
    ],
)
def test_each_documented_constraint_is_answered_422_in_pydantic_words(
    api: Api, name: str, value: str, expected: dict[str, Any]
) -> None:
    assert detail(api.get({name: value}), 422) == [expected]


@pytest.mark.parametrize("period", ["2025-13", "2025-00", "2025-3", "202503", "2025-03-01", ""])
def test_period_must_be_a_real_yyyy_mm_month(api: Api, period: str) -> None:
    [entry] = detail(api.get({"period": period}), 422)
    assert entry["loc"] == ["query", "period"]
    assert entry["type"] == "string_pattern_mismatch"
    assert entry["input"] == period


@pytest.mark.parametrize("name", ["start", "end"])
@pytest.mark.parametrize("value", ["yesterday", "2025-02-30T00:00:00Z", "03/05/2025", "1741132800"])
def test_start_and_end_must_be_iso_8601(api: Api, name: str, value: str) -> None:
    [entry] = detail(api.get({name: value}), 422)
    assert entry["loc"] == ["query", name]
    assert entry["type"] == "datetime_parsing"
    assert entry["msg"].startswith("Input should be a valid datetime")


def test_every_invalid_parameter_is_reported_at_once_in_documented_order(api: Api) -> None:
    params = {
        "sort_order": "up",
        "page_size": "101",
        "page": "-1",
        "end": "soon",
        "provider_id": "AWS",
        "period": "March",
        "format": "pdf",
    }
    entries = detail(api.get(params), 422)
    assert [entry["loc"][1] for entry in entries] == [
        "format",
        "period",
        "provider_id",
        "end",
        "page",
        "page_size",
        "sort_order",
    ]


@pytest.mark.parametrize(
    "params",
    [
        {"page_size": "1"},
        {"page_size": "100"},
        {"page": "1"},
        {"start": "2025-03-01T00:00:00.000Z", "end": "2025-03-31T23:59:59.999Z"},
        {"start": "2025-03-01", "end": "2025-03-02T02:00:00+02:00"},
        {"format": "chart", "granularity": "monthly", "group_by": "account_id"},
        {"sort_by": "change_percentage", "sort_order": "asc"},
    ],
)
def test_documented_values_are_accepted(api: Api, params: dict[str, str]) -> None:
    assert api.get({"period": PERIOD, **params}).status_code == 200


# --- table -----------------------------------------------------------------------------


@pytest.mark.parametrize("sort_order", ["asc", "desc"])
@pytest.mark.parametrize("sort_by", SORT_FIELDS)
def test_table_pages_cover_every_item_exactly_once(api: Api, sort_by: str, sort_order: str) -> None:
    params = {"period": PERIOD, "page_size": 7, "sort_by": sort_by, "sort_order": sort_order}
    items = api.all_pages(params)
    assert len(items) == 40
    assert sorted(map(identity, items), key=str) == sorted(
        map(identity, api.sandbox.breakdown(PERIOD)), key=str
    )
    assert api.sandbox.request_count(BREAKDOWN_PATH, 200) == 6  # ceil(40 / 7)


@pytest.mark.parametrize("sort_order", ["asc", "desc"])
@pytest.mark.parametrize("sort_by", SORT_FIELDS)
def test_table_is_sorted_by_sort_by_then_identity(api: Api, sort_by: str, sort_order: str) -> None:
    params = {"period": PERIOD, "page_size": 100, "sort_by": sort_by, "sort_order": sort_order}
    items = exact(api.get(params))["data"]["items"]
    known = [item for item in items if item[sort_by] is not None]
    nulls = items[len(known) :]
    assert all(item[sort_by] is None for item in nulls)  # null change_percentage last
    expected = sorted(known, key=identity_order)
    expected.sort(key=lambda item: item[sort_by], reverse=sort_order == "desc")
    assert known == expected
    assert nulls == sorted(nulls, key=identity_order)


def test_table_defaults_to_first_page_of_10_by_cost_descending(api: Api) -> None:
    data = exact(api.get({"period": PERIOD}))["data"]
    assert data["pagination"] == {
        "total_items": 40,
        "total_pages": 4,
        "current_page": 1,
        "page_size": 10,
        "has_next": True,
        "has_previous": False,
    }
    costs = [item["cost"] for item in data["items"]]
    truth = sorted((item["cost"] for item in api.sandbox.breakdown(PERIOD)), reverse=True)
    assert costs == truth[:10]


def test_last_and_later_pages(api: Api) -> None:
    last = exact(api.get({"period": PERIOD, "page": 4}))["data"]
    assert len(last["items"]) == 10
    assert last["pagination"]["has_next"] is False and last["pagination"]["has_previous"] is True
    beyond = exact(api.get({"period": PERIOD, "page": 9}))["data"]
    assert beyond["items"] == []
    assert beyond["pagination"]["current_page"] == 9 and beyond["pagination"]["has_next"] is False


def test_success_envelope_and_items_have_exactly_the_documented_fields(api: Api) -> None:
    payload = exact(api.get({"period": PERIOD}))
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", payload["timestamp"])
    assert list(payload["data"]) == ["period", "items", "pagination"]
    assert payload["data"]["period"] == PERIOD
    assert all(list(item) == list(ITEM_FIELDS) for item in payload["data"]["items"])


def test_money_is_exact_and_equals_the_truth(api: Api) -> None:
    items = api.all_pages({"period": PREVIOUS, "page_size": 100, "sort_by": "service"})
    truth = [as_api(item) for item in api.sandbox.breakdown(PREVIOUS)]
    assert sorted(items, key=identity_order) == truth
    assert all(isinstance(item["cost"], Decimal) for item in items)


def test_amounts_are_plain_json_numbers_with_at_most_six_decimals(api: Api) -> None:
    body = api.get({"period": PERIOD, "page_size": 100}).text
    amounts = re.findall(r'"(?:previous_)?cost":([^,]*),', body)
    assert len(amounts) == 80
    assert all(re.fullmatch(r"\d+\.\d{2,6}", amount) for amount in amounts)
    changes = re.findall(r'"change_percentage":([^}]*)}', body)
    assert all(re.fullmatch(r"-?\d+\.\d\d|null", change) for change in changes)


# --- raw, csv, chart ------------------------------------------------------------------------


def test_raw_returns_every_record_on_one_page(api: Api) -> None:
    params = {"format": "raw", "period": PERIOD, "page_size": 5, "start": "2025-03-10"}
    data = exact(api.get(params))["data"]
    assert data["items"] == [as_api(item) for item in api.sandbox.breakdown(PERIOD)]
    assert data["pagination"] == {
        "total_items": 40,
        "total_pages": 1,
        "current_page": 1,
        "page_size": 40,
        "has_next": False,
        "has_previous": False,
    }


def test_raw_is_paged_when_raw_page_size_is_set() -> None:
    sandbox = make_sandbox(raw_page_size=15)
    with SandboxServer([sandbox]) as server:
        api = Api(sandbox, server.url)
        items = api.all_pages({"format": "raw", "period": PERIOD})
        last = exact(api.get({"format": "raw", "period": PERIOD, "page": 3}))["data"]
    assert items == [as_api(item) for item in sandbox.breakdown(PERIOD)]
    assert sandbox.request_count(BREAKDOWN_PATH, 200) == 4  # 3 pages, then page 3 again
    assert last["pagination"] == {
        "total_items": 40,
        "total_pages": 3,
        "current_page": 3,
        "page_size": 15,
        "has_next": False,
        "has_previous": True,
    }


def test_raw_can_be_refused_with_422_on_format() -> None:
    sandbox = make_sandbox(raw_enabled=False)
    with SandboxServer([sandbox]) as server:
        api = Api(sandbox, server.url)
        assert detail(api.get({"format": "raw"}), 422) == [
            {
                "type": "value_error",
                "loc": ["query", "format"],
                "msg": "raw format is not available for this API key",
                "input": "raw",
            }
        ]
        assert api.get({"format": "table"}).status_code == 200


def test_csv_export_has_a_header_row_and_every_item(api: Api) -> None:
    response = api.get({"format": "csv", "period": PERIOD, "page_size": 5})
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/csv")
    assert PERIOD in response.headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(response.text)))
    assert tuple(rows[0]) == ITEM_FIELDS
    truth = sorted(api.sandbox.breakdown(PERIOD), key=lambda item: item["cost"], reverse=True)
    as_text = [
        ["" if value is None else str(value) for value in as_api(item).values()] for item in truth
    ]
    assert rows[1:] == as_text
    assert any(row[5] == "" for row in rows[1:])  # untagged spend is an empty field


def test_daily_chart_stacks_each_days_cost_per_provider(api: Api) -> None:
    data = exact(api.get({"format": "chart", "period": PERIOD}))["data"]
    assert (data["granularity"], data["group_by"]) == ("daily", "provider")
    truth: dict[str, Decimal] = defaultdict(Decimal)
    for item in api.sandbox.breakdown(PERIOD):
        truth[item["provider_id"]] += item["cost"]
    assert data["groups"] == sorted(truth)
    assert [bar["date"] for bar in data["items"]] == [
        (date(2025, 3, 1) + timedelta(days=i)).isoformat() for i in range(31)
    ]
    stacked: dict[str, Decimal] = defaultdict(Decimal)
    for bar in data["items"]:
        assert list(bar["costs"]) == data["groups"]
        assert bar["total"] == sum(bar["costs"].values())
        for group, cost in bar["costs"].items():
            stacked[group] += cost
    assert stacked == truth
    assert data["pagination"]["total_items"] == 31 and data["pagination"]["has_next"] is False


def test_monthly_chart_by_account_is_one_bar_for_the_period(api: Api) -> None:
    params = {"format": "chart", "period": PERIOD, "granularity": "monthly"}
    data = exact(api.get({**params, "group_by": "account_id"}))["data"]
    truth: dict[str, Decimal] = defaultdict(Decimal)
    for item in api.sandbox.breakdown(PERIOD):
        truth[item["account_id"]] += item["cost"]
    [bar] = data["items"]
    assert bar == {"date": "2025-03-01", "total": sum(truth.values()), "costs": dict(truth)}
    assert data["groups"] == sorted(truth)


# --- filters and periods ---------------------------------------------------------------------


@pytest.mark.parametrize("query_format", ["table", "raw", "csv", "chart"])
def test_provider_filter_applies_to_every_format(api: Api, query_format: str) -> None:
    params = {"period": PERIOD, "provider_id": "gcp", "format": query_format, "page_size": 100}
    response = api.get(params)
    truth = [item for item in api.sandbox.breakdown(PERIOD) if item["provider_id"] == "gcp"]
    assert truth
    assert api.sandbox.breakdown(PERIOD, provider_id="gcp") == truth
    if query_format == "csv":
        assert [row[1] for row in csv.reader(io.StringIO(response.text))][1:] == ["gcp"] * len(
            truth
        )
    elif query_format == "chart":
        data = exact(response)["data"]
        assert data["groups"] == ["gcp"]
        assert sum(bar["total"] for bar in data["items"]) == sum(i["cost"] for i in truth)
    else:
        items = exact(response)["data"]["items"]
        assert sorted(items, key=identity_order) == [as_api(item) for item in truth]


def test_start_and_end_sum_a_sub_range_of_the_period(api: Api) -> None:
    window = {"period": PERIOD, "start": "2025-03-05T00:00:00.000Z", "end": "2025-03-09T23:59:59Z"}
    items = api.all_pages({**window, "page_size": 100})
    truth = api.sandbox.breakdown(PERIOD, start="2025-03-05", end=date(2025, 3, 9))
    assert sorted(items, key=identity_order) == [as_api(item) for item in truth]
    whole = {identity(item): item for item in api.sandbox.breakdown(PERIOD)}
    assert all(item["cost"] <= whole[identity(item)]["cost"] for item in items)
    assert all(item["previous_cost"] == whole[identity(item)]["previous_cost"] for item in items)
    bars = exact(api.get({**window, "format": "chart"}))["data"]["items"]
    assert [bar["date"] for bar in bars] == [f"2025-03-0{day}" for day in range(5, 10)]
    assert sum(bar["total"] for bar in bars) == sum(item["cost"] for item in items)


def test_range_outside_the_period_answers_no_items(api: Api) -> None:
    params = {"period": PERIOD, "start": "2025-04-01T00:00:00Z", "end": "2025-04-30T00:00:00Z"}
    assert exact(api.get(params))["data"]["items"] == []
    reversed_range = {"period": PERIOD, "start": "2025-03-20", "end": "2025-03-10"}
    assert exact(api.get(reversed_range))["data"]["pagination"]["total_items"] == 0


def test_period_defaults_to_the_current_period(api: Api) -> None:
    data = exact(api.get({"page_size": 100}))["data"]
    assert data["period"] == PERIOD == api.sandbox.current_period
    assert data["pagination"]["total_items"] == 40


@pytest.mark.parametrize("period", ["2024-11", "2025-04", "1999-01"])
def test_periods_outside_the_data_range_answer_no_items(api: Api, period: str) -> None:
    assert api.sandbox.periods() == ["2024-12", "2025-01", "2025-02", PERIOD]
    for query_format in ("table", "raw", "chart"):
        data = exact(api.get({"period": period, "format": query_format}))["data"]
        assert data["period"] == period and data["items"] == []
    assert api.get({"period": period, "format": "csv"}).text.count("\n") == 1


def test_current_month_sums_the_days_up_to_today() -> None:
    sandbox = LevelFourSandbox(items_per_month=20)
    today = datetime.now(UTC).date()
    assert sandbox.current_period == f"{today:%Y-%m}"
    assert len(sandbox.periods()) == 6 and sandbox.periods()[-1] == sandbox.current_period
    with SandboxServer([sandbox]) as server:
        bars = exact(Api(sandbox, server.url).get({"format": "chart"}))["data"]["items"]
    assert [bar["date"] for bar in bars][-1] == today.isoformat()
    assert bars[0]["date"] == today.replace(day=1).isoformat()
    assert sum(bar["total"] for bar in bars) == sum(i["cost"] for i in sandbox.breakdown())


# --- the data ------------------------------------------------------------------------------


def test_items_are_unique_on_provider_account_region_service_environment_tag() -> None:
    sandbox = make_sandbox(items_per_month=400)
    for period in sandbox.periods():
        items = sandbox.breakdown(period)
        assert len({identity(item) for item in items}) == len(items) == 400


def test_data_has_every_provider_null_environments_untagged_spend_and_several_tags() -> None:
    items = make_sandbox(items_per_month=300).breakdown(PERIOD)
    assert {item["provider_id"] for item in items} == {"aws", "gcp", "azure", "k8s"}
    assert any(item["environment"] is None for item in items)
    assert any(item["tag_key"] is None and item["tag_value"] is None for item in items)
    assert len({item["tag_key"] for item in items}) >= 4
    lines = defaultdict(set)
    for item in items:
        lines[identity(item)[:5]].add((item["tag_key"], item["tag_value"]))
    assert any(len(tags) > 1 for tags in lines.values())  # one line split by several tags
    assert any(item["cost"].as_tuple().exponent == -6 for item in items)


def test_previous_cost_is_the_items_cost_in_the_previous_month(sandbox: LevelFourSandbox) -> None:
    before = {identity(item): item["cost"] for item in sandbox.breakdown(PREVIOUS)}
    items = sandbox.breakdown(PERIOD)
    assert any(identity(item) not in before for item in items)
    for item in items:
        previous = before.get(identity(item), Decimal(0))
        assert item["previous_cost"] == previous
        if previous == 0:
            assert item["change_percentage"] is None
        else:
            change = (item["cost"] - previous) * 100 / previous
            assert abs(item["change_percentage"] - change) <= Decimal("0.005")
    assert {item["previous_cost"] for item in sandbox.breakdown("2024-12")} == {Decimal(0)}


def test_data_is_deterministic_from_the_seed() -> None:
    assert make_sandbox().breakdown(PREVIOUS) == make_sandbox().breakdown(PREVIOUS)
    assert make_sandbox(seed=8).breakdown(PREVIOUS) != make_sandbox().breakdown(PREVIOUS)


# --- restatements ------------------------------------------------------------------------


def test_restating_a_period_changes_costs_removes_and_adds_items() -> None:
    sandbox = make_sandbox(items_per_month=500)
    before = {identity(item): item for item in sandbox.breakdown(PREVIOUS)}
    earlier = sandbox.breakdown("2025-01")
    assert sandbox.restate_period(PREVIOUS) == PREVIOUS
    after = {identity(item): item for item in sandbox.breakdown(PREVIOUS)}
    kept = before.keys() & after.keys()
    assert 0.05 < 1 - len(kept) / len(before) < 0.15
    assert all(after[k]["cost"] != before[k]["cost"] for k in kept)
    assert 1 <= len(after.keys() - before.keys()) <= 20
    assert sandbox.breakdown("2025-01") == earlier
    following = {identity(item): item["previous_cost"] for item in sandbox.breakdown(PERIOD)}
    assert all(following[k] == after.get(k, {"cost": 0})["cost"] for k in following)


def test_current_month_can_be_restated_repeatedly_and_responses_follow(api: Api) -> None:
    seen = [exact(api.get({"format": "raw"}))["data"]["items"]]
    for _ in range(3):
        assert api.sandbox.restate_current_month() == PERIOD
        items = exact(api.get({"format": "raw"}))["data"]["items"]
        assert items == [as_api(item) for item in api.sandbox.breakdown()]
        assert items != seen[-1]
        seen.append(items)
    assert api.sandbox.period_versions() == {PERIOD: 3}


def test_months_outside_the_data_range_cannot_be_restated(sandbox: LevelFourSandbox) -> None:
    with pytest.raises(ValueError):
        sandbox.restate_period("2025-04")
    with pytest.raises(ValueError):
        sandbox.restate_period("2025-3")


# --- rate limit ------------------------------------------------------------------------------


def test_rate_limit_answers_429_with_retry_after() -> None:
    sandbox = make_sandbox(requests_per_minute=3)
    with SandboxServer([sandbox]) as server:
        api = Api(sandbox, server.url)
        assert [api.get().status_code for _ in range(3)] == [200, 200, 200]
        response = api.get()
        match = re.fullmatch(
            r"Rate limit exceeded\. Retry after (\d+) seconds\.", detail(response, 429)
        )
        assert match is not None
        assert 58 <= int(match.group(1)) <= 60
        assert response.headers["Retry-After"] == match.group(1)
        assert detail(api.get(key="l4_test_nobody"), 401) == "Invalid API key"


def test_rate_limit_is_per_key(api: Api) -> None:
    api.sandbox.set_rate_limit(2)
    assert [api.get().status_code for _ in range(3)] == [200, 200, 429]
    assert api.get(key=LIVE_DEMO_KEY).status_code == 200


def test_rate_limit_window_slides_and_refusals_do_not_count() -> None:
    sandbox = make_sandbox(requests_per_minute=2, rate_window_seconds=1.0)
    with SandboxServer([sandbox]) as server:
        api = Api(sandbox, server.url)
        assert [api.get().status_code for _ in range(4)] == [200, 200, 429, 429]
        assert api.get().headers["Retry-After"] == "1"
        time.sleep(1.05)
        assert [api.get().status_code for _ in range(3)] == [200, 200, 429]


# --- faults -------------------------------------------------------------------------------------


def test_fail_next_fails_exactly_n_requests_then_recovers(api: Api) -> None:
    api.sandbox.fail_next(2)
    response = api.get()
    assert (response.status_code, response.text) == (500, "Internal Server Error")
    assert response.headers["Content-Type"].startswith("text/plain")
    assert api.get({"format": "raw"}).status_code == 500
    assert api.get().status_code == 200


@pytest.mark.parametrize("status", [502, 503, 504])
def test_gateway_failures_answer_an_html_page(api: Api, status: int) -> None:
    api.sandbox.fail_next(1, status=status)
    response = api.get()
    assert response.status_code == status
    assert response.headers["Content-Type"] == "text/html"
    assert str(status) in response.text


def test_fail_next_429_carries_retry_after(api: Api) -> None:
    api.sandbox.fail_next(1, status=429, retry_after=7)
    response = api.get()
    assert detail(response, 429) == "Rate limit exceeded. Retry after 7 seconds."
    assert response.headers["Retry-After"] == "7"


def test_faults_hit_only_authenticated_breakdown_requests(api: Api) -> None:
    api.sandbox.fail_next(1)
    assert api.get(key=None).status_code == 401
    assert api.get(path="/api/v1/spending/other").status_code == 404
    assert api.get().status_code == 500


def test_random_faults_are_deterministic_for_a_seed() -> None:
    def statuses(fault_seed: int) -> list[int]:
        sandbox = make_sandbox(error_rate=0.5, fault_seed=fault_seed)
        with SandboxServer([sandbox]) as server:
            api = Api(sandbox, server.url)
            return [api.get().status_code for _ in range(20)]

    first = statuses(1)
    assert first == statuses(1)
    assert set(first) == {200, 500}
    assert first != statuses(2)


def test_invalid_json_fault_answers_200_with_a_body_that_is_not_json(api: Api) -> None:
    api.sandbox.configure_faults(invalid_json_rate=1.0)
    response = api.get()
    assert response.status_code == 200
    with pytest.raises(ValueError):
        response.json()


def test_truncated_fault_cuts_the_connection_then_sends_a_short_body(api: Api) -> None:
    api.sandbox.configure_faults(truncated_rate=1.0)
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        api.get({"format": "raw"})
    response = api.get({"format": "raw"})
    assert response.status_code == 200
    assert int(response.headers["Content-Length"]) == len(response.content)
    with pytest.raises(ValueError):
        response.json()


def test_slow_fault_delays_the_answer(api: Api) -> None:
    api.sandbox.configure_faults(slow_rate=1.0, slow_seconds=0.3)
    began = time.perf_counter()
    assert api.get().status_code == 200
    assert time.perf_counter() - began >= 0.3


# --- admin endpoints and request log -----------------------------------------------------------


def test_admin_restates_the_current_month_or_a_given_period(api: Api) -> None:
    assert api.admin("restate", {}) == {"restated": PERIOD, "version": 1}
    assert api.admin("restate", {"period": "2025-01"}) == {"restated": "2025-01", "version": 1}
    assert api.admin("restate", {"period": "2025-01"})["version"] == 2
    assert api.sandbox.period_versions() == {"2025-01": 2, PERIOD: 1}


def test_admin_faults_script_failures_and_reseed(api: Api) -> None:
    settings = api.admin("faults", {"fail_next": 1, "fail_status": 503, "seed": 3})
    assert settings["pending"] == 1 and settings["seed"] == 3
    assert api.get().status_code == 503
    api.admin("faults", {"error_rate": 1.0})
    assert api.get().status_code == 500
    api.admin("faults", {"clear": True})
    assert api.get().status_code == 200


def test_admin_rate_limit(api: Api) -> None:
    assert api.admin("rate-limit", {"requests_per_minute": 1}) == {"requests_per_minute": 1}
    assert [api.get().status_code for _ in range(2)] == [200, 429]
    api.admin("rate-limit", {"requests_per_minute": None})
    assert api.get().status_code == 200


def test_admin_adds_and_revokes_keys(api: Api) -> None:
    assert api.admin("keys", {"key": "l4_live_reader"}) == {"key": "l4_live_reader"}
    assert api.get(key="l4_live_reader").status_code == 200
    api.admin("keys/revoke", {"key": "l4_live_reader"})
    assert detail(api.get(key="l4_live_reader"), 403) == "API key revoked"


def test_admin_switches_raw_off_and_sets_its_page_size(api: Api) -> None:
    assert api.admin("raw", {"enabled": False}) == {"enabled": False, "page_size": None}
    assert detail(api.get({"format": "raw"}), 422)[0]["loc"] == ["query", "format"]
    assert api.admin("raw", {"enabled": True, "page_size": 25}) == {
        "enabled": True,
        "page_size": 25,
    }
    assert exact(api.get({"format": "raw"}))["data"]["pagination"]["has_next"] is True
    assert api.admin("raw", {"page_size": None}) == {"enabled": True, "page_size": None}
    assert len(exact(api.get({"format": "raw"}))["data"]["items"]) == 40


def test_admin_stats_count_requests_by_path_and_status(api: Api) -> None:
    api.get()
    api.get(key=None)
    api.get(path="/api/v1/spending/summary")
    api.admin("info")
    assert api.admin("stats") == {
        "requests": {BREAKDOWN_PATH: {"200": 1, "401": 1}, "/api/v1/spending/summary": {"404": 1}},
        "total": 3,
    }
    assert api.admin("reset-requests", {}) == {"reset": True}
    assert api.admin("stats") == {"requests": {}, "total": 0}


def test_admin_info_describes_the_sandbox(api: Api) -> None:
    api.sandbox.restate_current_month()
    assert api.admin("info") == {
        "seed": 7,
        "current_period": PERIOD,
        "periods": ["2024-12", "2025-01", "2025-02", PERIOD],
        "items_per_month": 40,
        "restated": {PERIOD: 1},
        "requests_per_minute": None,
        "raw": {"enabled": True, "page_size": None},
        "demo_keys": DEMO_KEYS,
    }


def test_admin_rejects_bad_input_with_422(api: Api) -> None:
    url = api.url + ADMIN_PREFIX
    assert detail(requests.post(url + "restate", json={"period": "2031-01"}), 422)
    assert detail(requests.post(url + "faults", json={"error_rate": 2}), 422)
    assert detail(requests.post(url + "keys", json={"key": "sk_live_x"}), 422)
    assert detail(requests.post(url + "keys/revoke", json={"key": "l4_test_x"}), 422)
    assert detail(requests.post(url + "raw", json={"page_size": 0}), 422)
    assert detail(requests.post(url + "rate-limit", json={}), 422)
    assert detail(requests.post(url + "restate", data=b"[1"), 422)
    assert detail(requests.get(url + "nothing"), 404)


def test_request_log_records_path_params_and_status_without_the_key(api: Api) -> None:
    api.get({"period": PERIOD, "page": 2})
    api.get(key="l4_test_nobody")
    entries = api.sandbox.requests
    assert [(e.method, e.path, e.status) for e in entries] == [
        ("GET", BREAKDOWN_PATH, 200),
        ("GET", BREAKDOWN_PATH, 401),
    ]
    assert entries[0].params == {"period": [PERIOD], "page": ["2"]}
    assert DEMO_KEY not in repr(entries)
    assert api.sandbox.request_count(status=401) == 1
    api.sandbox.reset_requests()
    assert api.sandbox.request_count() == 0


# --- routing -------------------------------------------------------------------------------------


def test_unknown_spending_path_is_not_found_and_post_is_not_allowed(api: Api) -> None:
    assert detail(api.get(path="/api/v1/spending/summary"), 404) == "Not Found"
    response = api.session.post(api.url + BREAKDOWN_PATH, json={})
    assert detail(response, 405) == "Method Not Allowed"
    assert response.headers["Allow"] == "GET"


def test_foreign_paths_are_left_to_other_apps(sandbox: LevelFourSandbox) -> None:
    for path in ("/api/v1/public/line-items", "/_sandbox/stackspend/info", "/api/v1/spendingx"):
        assert sandbox.handle(Request("GET", path, {}, {})) is None


def test_mounted_beside_stackspend_each_path_reaches_its_app() -> None:
    levelfour = make_sandbox()
    other = stackspend.StackSpendSandbox(
        seed=1, start_date=date(2025, 1, 1), end_date=date(2025, 1, 2), line_items_per_day=3
    )
    with SandboxServer([other, levelfour]) as server:
        mine = Api(levelfour, server.url)
        assert exact(mine.get({"format": "raw"}))["data"]["pagination"]["total_items"] == 40
        line_items = requests.get(
            server.url + stackspend.LINE_ITEMS_PATH,
            params={"start_date": "2025-01-01", "end_date": "2025-01-02"},
            headers={"X-API-Key": stackspend.DEMO_KEY},
        )
        assert len(line_items.json()["data"]) == 6
        assert mine.admin("info")["current_period"] == PERIOD
        stackspend_info = requests.get(server.url + stackspend.ADMIN_PREFIX + "info").json()
        assert stackspend_info["data"]["seed"] == 1
        assert detail(mine.get(path="/api/v1/elsewhere"), 404) == "Not Found"
    assert levelfour.request_count() == 1
    assert other.request_count() == 1


def test_a_drifted_field_is_served_as_set_until_cleared(api: Api) -> None:
    assert api.admin("drift", {"field": "cost", "value": "12.48 USD"}) == {
        "drift": {"cost": "12.48 USD"}
    }
    for fmt in ("raw", "table"):
        items = api.get({"format": fmt}).json()["data"]["items"]
        assert items and {item["cost"] for item in items} == {"12.48 USD"}
    api.admin("drift", {"clear": True})
    items = api.get({"format": "raw"}).json()["data"]["items"]
    assert all(isinstance(item["cost"], int | float) for item in items)
    with pytest.raises(ValueError, match="field must be one of"):
        api.sandbox.drift_field("invoice", 1)
