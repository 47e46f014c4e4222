"""The StackSpend sandbox behaves as StackSpend's API reference says, over real HTTP."""

from __future__ import annotations

import itertools
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

from sandbox.http import Request, SandboxServer
from sandbox.stackspend import (
    ADMIN_PREFIX,
    ANOMALIES_PATH,
    DEMO_KEY,
    LINE_ITEMS_ONLY_KEY,
    LINE_ITEMS_PATH,
    NO_PLAN_KEY,
    OTEL_INGEST_PATH,
    REVOKED_KEY,
    ROLLUPS_PATH,
    StackSpendSandbox,
)
from sandbox.stackspend_data import CATEGORY_OF_SERVICE, PROVIDERS

START, END = date(2025, 1, 1), date(2025, 1, 10)
RANGE = {"start_date": "2025-01-01", "end_date": "2025-01-10"}
LINE_ITEM_FIELDS = [
    "id",
    "usage_date",
    "provider_type",
    "provider_service",
    "net_amount_usd",
    "currency_original",
    "project_id",
    "user_email",
]
ANOMALY_FIELDS = [
    "id",
    "provider_type",
    "service",
    "detected_date",
    "actual_cost",
    "expected_cost",
    "deviation_percent",
    "severity",
    "alert_type",
    "status",
]


class Api:
    """A thin `requests` client for one running sandbox."""

    def __init__(self, sandbox: StackSpendSandbox, url: str) -> None:
        self.sandbox = sandbox
        self.url = url
        self.session = requests.Session()

    def get(
        self,
        path: str,
        params: dict[str, Any] | None = None,
        key: str | None = DEMO_KEY,
        headers: dict[str, str] | None = None,
    ) -> requests.Response:
        sent = {"X-API-Key": key} if key is not None else {}
        return self.session.get(self.url + path, params=params, headers={**sent, **(headers or {})})

    def post(self, path: str, body: Any = None, key: str | None = DEMO_KEY) -> requests.Response:
        headers = {"X-API-Key": key} if key is not None else {}
        return self.session.post(self.url + path, json=body, headers=headers)

    def admin(self, action: str, body: Any = None) -> dict[str, Any]:
        url = self.url + ADMIN_PREFIX + action
        response = self.session.get(url) if body is None else self.session.post(url, json=body)
        assert response.status_code == 200, response.text
        return response.json()["data"]

    def all_line_items(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        query = dict(params)
        for _ in range(100_000):  # a bound, not a wait: a sandbox that never ends fails below
            payload = exact(self.get(LINE_ITEMS_PATH, query))
            items.extend(payload["data"])
            if not payload["meta"]["has_more"]:
                assert payload["meta"]["next_cursor"] is None
                return items
            query["cursor"] = payload["meta"]["next_cursor"]
        raise AssertionError("the pages never ended")


def exact(response: requests.Response) -> dict[str, Any]:
    """The body parsed with every JSON number as a Decimal."""
    assert response.status_code == 200, response.text
    return json.loads(response.text, parse_float=Decimal, parse_int=Decimal)


def error(response: requests.Response, status: int, code: str) -> str:
    """Assert the documented error envelope; return its message."""
    assert response.status_code == status, response.text
    body = response.json()
    assert body["data"] is None and body["meta"] == {}
    assert body["error"]["code"] == code
    assert set(body["error"]) == {"code", "message"}
    return body["error"]["message"]


def make_sandbox(**overrides: Any) -> StackSpendSandbox:
    settings: dict[str, Any] = {
        "seed": 7,
        "start_date": START,
        "end_date": END,
        "line_items_per_day": 12,
        "anomaly_count": 40,
    }
    return StackSpendSandbox(**{**settings, **overrides})


@pytest.fixture
def sandbox() -> StackSpendSandbox:
    return make_sandbox()


@pytest.fixture
def api(sandbox: StackSpendSandbox) -> Iterator[Api]:
    with SandboxServer([sandbox]) as server:
        yield Api(sandbox, server.url)


def as_api(item: dict[str, Any]) -> dict[str, Any]:
    """A ground-truth line item as the API writes it."""
    return {**item, "usage_date": item["usage_date"].isoformat()}


# --- authentication, plan, scope ---------------------------------------------


def test_missing_key_is_unauthorized(api: Api) -> None:
    response = api.get(LINE_ITEMS_PATH, RANGE, key=None)
    assert response.json() == {
        "data": None,
        "error": {"code": "UNAUTHORIZED", "message": "No API key provided."},
        "meta": {},
    }
    assert response.status_code == 401


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer two words"},
        {"X-API-Key": ""},
    ],
)
def test_malformed_key_is_unauthorized(api: Api, headers: dict[str, str]) -> None:
    response = api.get(LINE_ITEMS_PATH, RANGE, key=None, headers=headers)
    assert error(response, 401, "UNAUTHORIZED") == "The API key is malformed."


def test_unknown_key_is_unauthorized(api: Api) -> None:
    response = api.get(LINE_ITEMS_PATH, RANGE, key="ss_not_a_key")
    assert error(response, 401, "UNAUTHORIZED") == "Invalid API key."


def test_bearer_token_is_accepted(api: Api) -> None:
    headers = {"Authorization": f"Bearer {DEMO_KEY}"}
    assert api.get(LINE_ITEMS_PATH, RANGE, key=None, headers=headers).status_code == 200


def test_revoked_key_is_forbidden(api: Api) -> None:
    api.sandbox.add_key("ss_soon_gone")
    assert api.get(LINE_ITEMS_PATH, RANGE, key="ss_soon_gone").status_code == 200
    api.sandbox.revoke_key("ss_soon_gone")
    response = api.get(LINE_ITEMS_PATH, RANGE, key="ss_soon_gone")
    assert error(response, 403, "FORBIDDEN") == "This API key has been revoked."
    assert error(api.get(LINE_ITEMS_PATH, RANGE, key=REVOKED_KEY), 403, "FORBIDDEN")


def test_workspace_without_api_plan_is_plan_restricted(api: Api) -> None:
    assert error(api.get(ANOMALIES_PATH, key=NO_PLAN_KEY), 403, "PLAN_RESTRICTED")


def test_missing_scope_is_invalid_scope_naming_the_scope(api: Api) -> None:
    assert api.get(LINE_ITEMS_PATH, RANGE, key=LINE_ITEMS_ONLY_KEY).status_code == 200
    message = error(api.get(ANOMALIES_PATH, key=LINE_ITEMS_ONLY_KEY), 403, "INVALID_SCOPE")
    assert message == "This API key does not have the required scope: anomalies:read"
    params = {**RANGE, "group_by": "provider"}
    message = error(api.get(ROLLUPS_PATH, params, key=LINE_ITEMS_ONLY_KEY), 403, "INVALID_SCOPE")
    assert message.endswith("rollups:read")


def test_checks_run_in_order_auth_plan_scope_rate_limit_fault_validation(api: Api) -> None:
    bad = {"start_date": "nope"}
    api.sandbox.add_key("ss_revoked_no_plan", api_access=False)
    api.sandbox.revoke_key("ss_revoked_no_plan")
    api.sandbox.add_key("ss_no_plan_no_scope", scopes=[], api_access=False)
    assert error(api.get(LINE_ITEMS_PATH, bad, key=None), 401, "UNAUTHORIZED")
    assert error(api.get(LINE_ITEMS_PATH, bad, key="ss_revoked_no_plan"), 403, "FORBIDDEN")
    no_scope = api.get(LINE_ITEMS_PATH, bad, key="ss_no_plan_no_scope")
    assert error(no_scope, 403, "PLAN_RESTRICTED")
    assert error(api.get(ANOMALIES_PATH, bad, key=LINE_ITEMS_ONLY_KEY), 403, "INVALID_SCOPE")
    api.sandbox.set_rate_limit(1)
    assert error(api.get(LINE_ITEMS_PATH, bad), 422, "VALIDATION_ERROR")
    assert error(api.get(LINE_ITEMS_PATH, bad), 429, "RATE_LIMITED")
    api.sandbox.set_rate_limit(None)
    api.sandbox.fail_next(1)
    assert error(api.get(LINE_ITEMS_PATH, bad), 500, "INTERNAL_ERROR")
    assert error(api.get(LINE_ITEMS_PATH, bad), 422, "VALIDATION_ERROR")


def test_otel_ingest_is_accepted_with_usage_write_scope(api: Api) -> None:
    response = api.post(OTEL_INGEST_PATH, {"resourceSpans": []})
    assert response.status_code == 202
    assert response.json() == {"data": {"accepted": True}, "error": None, "meta": {}}
    refused = api.post(OTEL_INGEST_PATH, {}, key=LINE_ITEMS_ONLY_KEY)
    assert error(refused, 403, "INVALID_SCOPE").endswith("usage:write")
    assert api.sandbox.otel_payloads == 1


def test_wrong_method_is_method_not_allowed(api: Api) -> None:
    assert error(api.post(LINE_ITEMS_PATH, {}), 405, "METHOD_NOT_ALLOWED")


def test_unknown_public_path_is_not_found_and_foreign_paths_are_left_to_other_apps(
    api: Api,
) -> None:
    assert error(api.get("/api/v1/public/invoices"), 404, "NOT_FOUND")
    foreign = Request("GET", "/api/v1/spending/breakdown", {}, {})
    assert api.sandbox.handle(foreign) is None


# --- validation ----------------------------------------------------------------


@pytest.mark.parametrize("path", [LINE_ITEMS_PATH, ROLLUPS_PATH])
@pytest.mark.parametrize("missing", ["start_date", "end_date"])
def test_start_and_end_dates_are_required(api: Api, path: str, missing: str) -> None:
    params = {**RANGE, "group_by": "provider"}
    del params[missing]
    message = error(api.get(path, params), 422, "VALIDATION_ERROR")
    assert message == f"{missing} is required."


@pytest.mark.parametrize("value", ["2025-02-30", "2025-1-05", "20250105", "", "2025-01-05T00:00"])
def test_dates_must_be_real_yyyy_mm_dd_days(api: Api, value: str) -> None:
    response = api.get(LINE_ITEMS_PATH, {**RANGE, "end_date": value})
    assert error(response, 422, "VALIDATION_ERROR") == (
        "end_date must be a real date in YYYY-MM-DD format."
    )


def test_start_date_must_not_be_after_end_date(api: Api) -> None:
    params = {"start_date": "2025-01-05", "end_date": "2025-01-04", "group_by": "service"}
    for path in (LINE_ITEMS_PATH, ROLLUPS_PATH):
        message = error(api.get(path, params), 422, "VALIDATION_ERROR")
        assert message == "start_date must be on or before end_date."
    one_day = {"start_date": "2025-01-05", "end_date": "2025-01-05"}
    assert api.get(LINE_ITEMS_PATH, one_day).status_code == 200


@pytest.mark.parametrize("limit", ["0", "1001", "abc", "1.5", "-1", "", "1e3"])
def test_line_items_limit_must_be_an_integer_from_1_to_1000(api: Api, limit: str) -> None:
    message = error(api.get(LINE_ITEMS_PATH, {**RANGE, "limit": limit}), 422, "VALIDATION_ERROR")
    assert message == "limit must be an integer between 1 and 1000."


def test_line_items_limit_defaults_to_50_and_accepts_1_and_1000(api: Api) -> None:
    assert len(exact(api.get(LINE_ITEMS_PATH, RANGE))["data"]) == 50
    assert len(exact(api.get(LINE_ITEMS_PATH, {**RANGE, "limit": 1}))["data"]) == 1
    assert len(exact(api.get(LINE_ITEMS_PATH, {**RANGE, "limit": 1000}))["data"]) == 120


@pytest.mark.parametrize("group_by", [None, "", "project", "Provider"])
def test_rollups_group_by_is_required_and_one_of_provider_service_category(
    api: Api, group_by: str | None
) -> None:
    params = dict(RANGE) if group_by is None else {**RANGE, "group_by": group_by}
    message = error(api.get(ROLLUPS_PATH, params), 422, "VALIDATION_ERROR")
    expected = "group_by must be one of: provider, service, category."
    assert message == ("group_by is required." if group_by is None else expected)


@pytest.mark.parametrize("limit", ["0", "501", "ten", "2.0"])
def test_anomalies_limit_must_be_an_integer_from_1_to_500(api: Api, limit: str) -> None:
    message = error(api.get(ANOMALIES_PATH, {"limit": limit}), 422, "VALIDATION_ERROR")
    assert message == "limit must be an integer between 1 and 500."


def test_anomalies_limit_defaults_to_50(api: Api) -> None:
    api.sandbox.add_anomalies(30, datetime(2025, 1, 5, tzinfo=UTC))
    assert len(api.get(ANOMALIES_PATH).json()["data"]) == 50
    assert len(api.get(ANOMALIES_PATH, {"limit": 500}).json()["data"]) == 70


@pytest.mark.parametrize("since", ["yesterday", "2025-13-01", "2025-01-01T25:00:00Z", "1736899200"])
def test_anomalies_since_must_be_iso_8601(api: Api, since: str) -> None:
    message = error(api.get(ANOMALIES_PATH, {"since": since}), 422, "VALIDATION_ERROR")
    assert message.startswith("since must be an ISO 8601 timestamp")


@pytest.mark.parametrize(
    "since",
    ["2025-01-05T00:00:00Z", "2025-01-05T02:00:00+02:00", "2025-01-05", "2025-01-05T00:00Z"],
)
def test_anomalies_since_accepts_z_offsets_and_dates(api: Api, since: str) -> None:
    found = api.get(ANOMALIES_PATH, {"since": since, "limit": 500}).json()["data"]
    assert [a["id"] for a in found] == [
        a["id"] for a in api.sandbox.anomalies(datetime(2025, 1, 5, tzinfo=UTC))
    ]


@pytest.mark.parametrize(
    ("name", "value", "allowed"),
    [
        ("severity", "urgent", "low, medium, high, critical"),
        ("status", "open", "new, acknowledged, resolved, false_positive, dismissed"),
    ],
)
def test_anomaly_severity_and_status_must_be_documented_values(
    api: Api, name: str, value: str, allowed: str
) -> None:
    message = error(api.get(ANOMALIES_PATH, {name: value}), 422, "VALIDATION_ERROR")
    assert message == f"{name} must be one of: {allowed}."


def test_anomaly_provider_type_is_any_slug(api: Api) -> None:
    assert api.get(ANOMALIES_PATH, {"provider_type": "oracle-cloud"}).json()["data"] == []
    assert error(api.get(ANOMALIES_PATH, {"provider_type": "a b"}), 422, "VALIDATION_ERROR")


# --- rate limit ------------------------------------------------------------------


def test_rate_limit_answers_429_with_retry_after_and_documented_message() -> None:
    sandbox = make_sandbox(requests_per_minute=3)
    with SandboxServer([sandbox]) as server:
        api = Api(sandbox, server.url)
        assert [api.get(ANOMALIES_PATH).status_code for _ in range(3)] == [200, 200, 200]
        response = api.get(ANOMALIES_PATH)
        message = error(response, 429, "RATE_LIMITED")
        match = re.fullmatch(
            r"You have exceeded 3 requests per minute\. Retry after (\d+) seconds\.", message
        )
        assert match is not None
        assert 58 <= int(match.group(1)) <= 60
        assert response.headers["Retry-After"] == match.group(1)
        assert api.get(ANOMALIES_PATH, key=LINE_ITEMS_ONLY_KEY).status_code == 403


def test_rate_limit_is_per_key(api: Api) -> None:
    api.sandbox.set_rate_limit(2)
    api.sandbox.add_key("ss_second")
    assert [api.get(ANOMALIES_PATH).status_code for _ in range(3)] == [200, 200, 429]
    assert api.get(ANOMALIES_PATH, key="ss_second").status_code == 200


def test_rate_limit_window_slides_and_refusals_do_not_count() -> None:
    sandbox = make_sandbox(requests_per_minute=2, rate_window_seconds=1.0)
    with SandboxServer([sandbox]) as server:
        api = Api(sandbox, server.url)
        statuses = [api.get(ANOMALIES_PATH).status_code for _ in range(4)]
        assert statuses == [200, 200, 429, 429]
        assert api.get(ANOMALIES_PATH).headers["Retry-After"] == "1"
        time.sleep(1.05)
        assert [api.get(ANOMALIES_PATH).status_code for _ in range(3)] == [200, 200, 429]


def test_retry_after_header_can_be_switched_off(api: Api) -> None:
    api.sandbox.set_rate_limit(1, retry_after_header=False)
    api.get(ANOMALIES_PATH)
    response = api.get(ANOMALIES_PATH)
    assert "Retry after" in error(response, 429, "RATE_LIMITED")
    assert "Retry-After" not in response.headers


# --- line items --------------------------------------------------------------------


def test_cursor_pagination_returns_every_item_exactly_once(api: Api) -> None:
    items = api.all_line_items({**RANGE, "limit": 7})
    ids = [item["id"] for item in items]
    assert len(ids) == len(set(ids)) == 120
    assert ids == [item["id"] for item in api.sandbox.line_items(START, END)]
    assert api.sandbox.request_count(LINE_ITEMS_PATH, 200) == 18  # ceil(120 / 7)


def test_last_page_has_no_cursor(api: Api) -> None:
    payload = exact(api.get(LINE_ITEMS_PATH, {**RANGE, "limit": 120}))
    assert payload["meta"] == {"next_cursor": None, "has_more": False}
    assert payload["error"] is None


def test_line_items_equal_the_truth_with_money_exact(api: Api) -> None:
    items = api.all_line_items({**RANGE, "limit": 1000})
    assert items == [as_api(item) for item in api.sandbox.line_items(START, END)]
    assert all(list(item) == LINE_ITEM_FIELDS for item in items)


def test_line_items_are_ordered_by_usage_date_then_id(api: Api) -> None:
    items = api.all_line_items({**RANGE, "limit": 33})
    keys = [(item["usage_date"], item["id"]) for item in items]
    assert keys == sorted(keys)


def test_amounts_are_plain_json_numbers_with_at_most_six_decimals(api: Api) -> None:
    body = api.get(LINE_ITEMS_PATH, {**RANGE, "limit": 1000}).text
    amounts = re.findall(r'"net_amount_usd":([^,]*),', body)
    assert len(amounts) == 120
    assert all(re.fullmatch(r"-?\d+\.\d{2,6}", amount) for amount in amounts)


def test_data_has_every_provider_credits_null_emails_and_unique_ids() -> None:
    items = make_sandbox(line_items_per_day=300).line_items(START, END)
    assert {item["provider_type"] for item in items} == set(PROVIDERS)
    credits = sum(item["net_amount_usd"] < 0 for item in items) / len(items)
    assert 0.01 < credits < 0.06
    assert any(item["user_email"] is None for item in items)
    assert any(item["user_email"] is not None for item in items)
    assert len({item["id"] for item in items}) == len(items) == 3000


def test_data_is_deterministic_from_the_seed() -> None:
    assert make_sandbox().line_items() == make_sandbox().line_items()
    assert make_sandbox().anomalies() == make_sandbox().anomalies()
    assert make_sandbox(seed=8).line_items() != make_sandbox().line_items()


def test_cursor_is_opaque_url_safe_text(api: Api) -> None:
    cursor = exact(api.get(LINE_ITEMS_PATH, {**RANGE, "limit": 5}))["meta"]["next_cursor"]
    assert re.fullmatch(r"[A-Za-z0-9_-]+", cursor)
    assert "li_" not in cursor


def test_tampered_cursor_is_rejected(api: Api) -> None:
    cursor = exact(api.get(LINE_ITEMS_PATH, {**RANGE, "limit": 5}))["meta"]["next_cursor"]
    tampered = cursor[:10] + ("A" if cursor[10] != "A" else "B") + cursor[11:]
    for bad in (tampered, "eyJpZCI6ImxpXzAxaHh5eiJ9", "not a cursor!"):
        message = error(api.get(LINE_ITEMS_PATH, {**RANGE, "cursor": bad}), 422, "VALIDATION_ERROR")
        assert message.startswith("cursor is not valid for this query")


def test_cursor_from_another_query_or_server_is_rejected(api: Api) -> None:
    cursor = exact(api.get(LINE_ITEMS_PATH, {**RANGE, "limit": 5}))["meta"]["next_cursor"]
    other_query = {"start_date": "2025-01-01", "end_date": "2025-01-09", "cursor": cursor}
    assert error(api.get(LINE_ITEMS_PATH, other_query), 422, "VALIDATION_ERROR")
    with SandboxServer([make_sandbox()]) as other:
        response = requests.get(
            other.url + LINE_ITEMS_PATH,
            params={**RANGE, "cursor": cursor},
            headers={"X-API-Key": DEMO_KEY},
        )
    assert error(response, 422, "VALIDATION_ERROR")


def test_range_outside_the_data_is_empty(api: Api) -> None:
    payload = exact(
        api.get(LINE_ITEMS_PATH, {"start_date": "2024-01-01", "end_date": "2024-12-31"})
    )
    assert payload == {"data": [], "error": None, "meta": {"next_cursor": None, "has_more": False}}


def test_default_data_range_is_the_120_days_ending_today() -> None:
    sandbox = StackSpendSandbox()
    today = datetime.now(UTC).date()
    assert (sandbox.start_date, sandbox.end_date) == (today - timedelta(days=119), today)
    assert sandbox.line_item_count(today, today) == 40


def test_millions_of_items_are_virtual_and_served_fast() -> None:
    sandbox = StackSpendSandbox(
        start_date=date(2025, 1, 1), end_date=date(2025, 3, 31), line_items_per_day=55_556
    )
    with SandboxServer([sandbox]) as server:
        api = Api(sandbox, server.url)
        params = {"start_date": "2025-02-14", "end_date": "2025-03-31", "limit": 1000}
        first = exact(api.get(LINE_ITEMS_PATH, params))
        began = time.perf_counter()
        second = exact(api.get(LINE_ITEMS_PATH, {**params, "cursor": first["meta"]["next_cursor"]}))
        assert time.perf_counter() - began < 0.5
    assert second["data"][0]["id"] == "li_20250214_00001000"
    assert second["data"][-1]["id"] == "li_20250214_00001999"
    assert second["meta"]["has_more"] is True


# --- rollups ------------------------------------------------------------------------


@pytest.mark.parametrize("group_by", ["provider", "service", "category"])
def test_rollups_reconcile_exactly_with_line_items(api: Api, group_by: str) -> None:
    expected: dict[tuple[Any, ...], Decimal] = defaultdict(Decimal)
    for item in api.all_line_items({**RANGE, "limit": 1000}):
        provider, service = item["provider_type"], item["provider_service"]
        group = {
            "provider": (provider, None, None),
            "service": (provider, service, None),
            "category": (None, None, CATEGORY_OF_SERVICE[service]),
        }[group_by]
        expected[(item["usage_date"], *group)] += item["net_amount_usd"]
    rows = exact(api.get(ROLLUPS_PATH, {**RANGE, "group_by": group_by}))["data"]
    got = {
        (r["date"], r["provider_type"], r["service"], r["category"]): r["cost_usd"] for r in rows
    }
    assert got == expected
    assert len(rows) == len(got)


@pytest.mark.parametrize(
    ("group_by", "set_columns"),
    [
        ("provider", {"provider_type"}),
        ("service", {"provider_type", "service"}),
        ("category", {"category"}),
    ],
)
def test_rollup_rows_fill_only_their_group_columns(
    api: Api, group_by: str, set_columns: set[str]
) -> None:
    payload = exact(api.get(ROLLUPS_PATH, {**RANGE, "group_by": group_by}))
    assert payload["meta"] == {} and payload["error"] is None
    for row in payload["data"]:
        assert list(row) == ["date", "cost_usd", "provider_type", "service", "category"]
        filled = {k for k in ("provider_type", "service", "category") if row[k] is not None}
        assert filled == set_columns
    dates = {row["date"] for row in payload["data"]}
    assert dates == {(START + timedelta(days=i)).isoformat() for i in range(10)}


def test_rollups_equal_the_truth(api: Api) -> None:
    rows = exact(api.get(ROLLUPS_PATH, {**RANGE, "group_by": "category"}))["data"]
    truth = api.sandbox.daily_rollups(START, END, "category")
    assert rows == [{**row, "date": row["date"].isoformat()} for row in truth]


# --- restatements ------------------------------------------------------------------


def test_restatement_changes_amounts_removes_and_adds_items() -> None:
    sandbox = make_sandbox(line_items_per_day=500)
    day = date(2025, 1, 4)
    before = {item["id"]: item for item in sandbox.line_items(day, day)}
    others = sandbox.line_items(START, date(2025, 1, 3))
    assert sandbox.restate([day]) == [day]
    after = {item["id"]: item for item in sandbox.line_items(day, day)}
    kept = before.keys() & after.keys()
    assert 0.05 < 1 - len(kept) / len(before) < 0.15
    assert all(after[i]["net_amount_usd"] != before[i]["net_amount_usd"] for i in kept)
    added = after.keys() - before.keys()
    assert 1 <= len(added) <= 10
    assert all(int(i[-8:]) >= 500 for i in added)
    assert sandbox.line_items(START, date(2025, 1, 3)) == others


def test_rollups_and_pages_follow_restatement(api: Api) -> None:
    day = "2025-01-10"
    params = {"start_date": day, "end_date": day}
    before = exact(api.get(ROLLUPS_PATH, {**params, "group_by": "provider"}))["data"]
    assert [d.isoformat() for d in api.sandbox.restate_last(1)] == [day]
    items = api.all_line_items({**params, "limit": 5})
    after = exact(api.get(ROLLUPS_PATH, {**params, "group_by": "provider"}))["data"]
    assert after != before
    assert sum(r["cost_usd"] for r in after) == sum(i["net_amount_usd"] for i in items)
    assert items == [as_api(item) for item in api.sandbox.line_items(day, day)]


def test_a_services_restatement_moves_items_between_a_provider_s_services_only() -> None:
    sandbox = make_sandbox(line_items_per_day=500)
    day = date(2025, 1, 4)
    before = {item["id"]: item for item in sandbox.line_items(day, day)}
    rollups = {g: sandbox.daily_rollups(day, day, g) for g in ("provider", "service")}
    assert sandbox.restate([day], kind="services") == [day]
    after = {item["id"]: item for item in sandbox.line_items(day, day)}
    assert after.keys() == before.keys()
    moved = [i for i in after if after[i]["provider_service"] != before[i]["provider_service"]]
    assert 0.05 < len(moved) / len(before) < 0.15
    for i in after:
        assert after[i]["provider_type"] == before[i]["provider_type"]
        assert after[i]["net_amount_usd"] == before[i]["net_amount_usd"]
    assert sandbox.daily_rollups(day, day, "provider") == rollups["provider"]
    assert sandbox.daily_rollups(day, day, "service") != rollups["service"]
    with pytest.raises(ValueError, match="kind must be one of"):
        sandbox.restate([day], kind="ids")


def test_days_can_be_restated_repeatedly() -> None:
    sandbox = make_sandbox()
    versions = []
    for _ in range(3):
        sandbox.restate(["2025-01-02"])
        versions.append(sandbox.line_items("2025-01-02", "2025-01-02"))
    assert versions[0] != versions[1] != versions[2]
    ids = [item["id"] for version in versions for item in version]
    assert len({i for i in ids if int(i[-8:]) >= 12}) >= 3  # each round added new ids
    assert sandbox.day_versions() == {date(2025, 1, 2): 3}


def test_restate_last_restates_the_final_days() -> None:
    sandbox = make_sandbox()
    assert sandbox.restate_last(3) == [date(2025, 1, 8), date(2025, 1, 9), date(2025, 1, 10)]
    with pytest.raises(ValueError):
        sandbox.restate([date(2025, 2, 1)])


# --- anomalies ------------------------------------------------------------------------


def test_anomaly_fields_and_formats_are_the_documented_ones(api: Api) -> None:
    response = api.get(ANOMALIES_PATH, {"limit": 500})
    payload = exact(response)
    assert payload["meta"] == {} and len(payload["data"]) == 40
    for anomaly in payload["data"]:
        assert list(anomaly) == ANOMALY_FIELDS
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", anomaly["detected_date"])
        assert anomaly["actual_cost"].as_tuple().exponent == -2
        assert anomaly["expected_cost"].as_tuple().exponent == -2
    costs = re.findall(r'"(?:actual|expected)_cost":([^,]*),', response.text)
    assert all(re.fullmatch(r"\d+\.\d\d", cost) for cost in costs)
    truth = api.sandbox.anomalies()
    assert [a["actual_cost"] for a in payload["data"]] == [a["actual_cost"] for a in truth]


def test_several_anomalies_share_a_detected_date(sandbox: StackSpendSandbox) -> None:
    dates = [a["detected_date"] for a in sandbox.anomalies()]
    assert len(set(dates)) < len(dates)
    assert all(START <= d.date() <= END for d in dates)


def test_since_is_strictly_after(api: Api) -> None:
    truth = api.sandbox.anomalies()
    shared = next(
        a["detected_date"]
        for a, b in itertools.pairwise(truth)
        if a["detected_date"] == b["detected_date"]
    )
    since = shared.strftime("%Y-%m-%dT%H:%M:%SZ")
    found = api.get(ANOMALIES_PATH, {"since": since, "limit": 500}).json()["data"]
    assert found and all(a["detected_date"] > since for a in found)
    assert len(found) == sum(a["detected_date"] > shared for a in truth)


def test_anomaly_filters_provider_type_severity_status(api: Api) -> None:
    truth = api.sandbox.anomalies()
    for name, truth_name in [
        ("provider_type", "provider_type"),
        ("severity", "severity"),
        ("status", "status"),
    ]:
        value = truth[0][truth_name]
        found = api.get(ANOMALIES_PATH, {name: value, "limit": 500}).json()["data"]
        assert [a["id"] for a in found] == [a["id"] for a in truth if a[truth_name] == value]


def test_anomaly_limit_caps_the_count(api: Api) -> None:
    found = api.get(ANOMALIES_PATH, {"limit": 5}).json()["data"]
    assert [a["id"] for a in found] == [a["id"] for a in api.sandbox.anomalies()[:5]]


def test_newest_asc_answers_hold_the_newest_matches_oldest_first() -> None:
    sandbox = make_sandbox(anomaly_order="newest-asc")
    with SandboxServer([sandbox]) as server:
        found = Api(sandbox, server.url).get(ANOMALIES_PATH, {"limit": 10}).json()["data"]
    newest = sorted(sandbox.anomalies(), key=lambda a: (a["detected_date"], a["id"]))[-10:]
    assert [a["id"] for a in found] == [a["id"] for a in newest]


def test_anomalies_can_be_added_with_a_severity_and_status(api: Api) -> None:
    added = api.admin(
        "anomalies/add",
        {"count": 5, "at": "2025-01-05T00:00:00Z", "severity": "critical", "status": "dismissed"},
    )["added"]
    found = {a["id"]: a for a in api.sandbox.anomalies()}
    assert {(found[i]["severity"], found[i]["status"]) for i in added} == {
        ("critical", "dismissed")
    }


@pytest.mark.parametrize("mode", ["endless", "repeat"])
def test_paging_faults_promise_more_forever_under_fresh_cursors(api: Api, mode: str) -> None:
    api.admin("paging-fault", {"mode": mode})
    cursors, params = set(), {**RANGE, "limit": 5}
    for _ in range(4):
        body = exact(api.get(LINE_ITEMS_PATH, params))
        assert body["meta"]["has_more"] is True
        assert (len(body["data"]) == 5) is (mode == "repeat")
        cursors.add(body["meta"]["next_cursor"])
        params = {**params, "cursor": body["meta"]["next_cursor"]}
    assert len(cursors) == 4
    api.admin("paging-fault", {"mode": None})
    assert exact(api.get(LINE_ITEMS_PATH, {**RANGE, "limit": 5}))["meta"]["has_more"] is True


@pytest.mark.parametrize(
    ("form", "raw_text"),
    [
        ("raw", "ss_live_a/b"),
        ("json-escaped", "ss_live_a\\/b"),
        ("unicode-escaped", "\\u0073\\u0073_"),
        ("url-encoded", "ss_live_a%2Fb"),
    ],
)
def test_keys_can_be_echoed_in_error_messages(api: Api, form: str, raw_text: str) -> None:
    api.admin("echo-key", {"form": form})
    response = api.get(ANOMALIES_PATH, key="ss_live_a/b")
    assert response.status_code == 401
    assert raw_text in response.text
    api.admin("echo-key", {"form": None})
    assert "ss_live" not in api.get(ANOMALIES_PATH, key="ss_live_a/b").text


@pytest.mark.parametrize("order", ["asc", "desc", "unordered"])
def test_anomaly_orders(order: str) -> None:
    sandbox = make_sandbox(anomaly_order=order)
    with SandboxServer([sandbox]) as server:
        found = Api(sandbox, server.url).get(ANOMALIES_PATH, {"limit": 500}).json()["data"]
    keys = [(a["detected_date"], a["id"]) for a in found]
    assert sorted(keys) == sorted(
        (a["detected_date"].strftime("%Y-%m-%dT%H:%M:%SZ"), a["id"]) for a in sandbox.anomalies()
    )
    if order == "asc":
        assert keys == sorted(keys)
    elif order == "desc":
        assert keys == sorted(keys, reverse=True)
    else:
        assert keys not in (sorted(keys), sorted(keys, reverse=True))


def test_moving_statuses_changes_exactly_count_anomalies(api: Api) -> None:
    before = {a["id"]: a["status"] for a in api.sandbox.anomalies()}
    moved = api.sandbox.move_anomaly_statuses(5)
    after = {a["id"]: a["status"] for a in api.get(ANOMALIES_PATH, {"limit": 500}).json()["data"]}
    assert len(moved) == 5
    assert {i for i in before if before[i] != after[i]} == set(moved)
    assert make_sandbox().move_anomaly_statuses(5) == moved


def test_added_anomalies_share_one_timestamp_beyond_the_limit(api: Api) -> None:
    at = datetime(2025, 1, 6, 12, 0, tzinfo=UTC)
    ids = api.sandbox.add_anomalies(600, at)
    assert len(set(ids)) == 600
    since = {"since": "2025-01-06T11:59:59Z", "limit": 500}
    found = api.get(ANOMALIES_PATH, since).json()["data"]
    assert len(found) == 500
    assert found[0]["detected_date"] <= "2025-01-06T12:00:00Z"
    assert sum(a["detected_date"] == "2025-01-06T12:00:00Z" for a in found) >= 400


# --- faults -----------------------------------------------------------------------------


def test_fail_next_fails_exactly_n_data_requests_then_recovers(api: Api) -> None:
    api.sandbox.fail_next(2)
    response = api.get(ANOMALIES_PATH)
    assert response.json() == {
        "data": None,
        "error": {
            "code": "INTERNAL_ERROR",
            "message": "An unexpected error occurred. Please retry.",
        },
        "meta": {},
    }
    assert response.status_code == 500
    assert api.get(LINE_ITEMS_PATH, RANGE).status_code == 500
    assert api.get(ANOMALIES_PATH).status_code == 200


def test_fail_next_429_carries_retry_after(api: Api) -> None:
    api.sandbox.fail_next(1, status=429, retry_after=7)
    response = api.get(ANOMALIES_PATH)
    message = error(response, 429, "RATE_LIMITED")
    assert message == "You have exceeded 60 requests per minute. Retry after 7 seconds."
    assert response.headers["Retry-After"] == "7"


def test_faults_hit_only_authenticated_data_requests(api: Api) -> None:
    api.sandbox.fail_next(1)
    assert api.get(ANOMALIES_PATH, key=None).status_code == 401
    assert api.post(OTEL_INGEST_PATH, {}).status_code == 202
    assert api.get(ANOMALIES_PATH).status_code == 500


def test_random_faults_are_deterministic_for_a_seed() -> None:
    def statuses(fault_seed: int) -> list[int]:
        sandbox = make_sandbox(error_rate=0.5, fault_seed=fault_seed)
        with SandboxServer([sandbox]) as server:
            api = Api(sandbox, server.url)
            return [api.get(ANOMALIES_PATH).status_code for _ in range(20)]

    first = statuses(1)
    assert first == statuses(1)
    assert set(first) == {200, 500}
    assert first != statuses(2)


def test_invalid_json_fault_answers_200_with_a_body_that_is_not_json(api: Api) -> None:
    api.sandbox.configure_faults(invalid_json_rate=1.0)
    response = api.get(LINE_ITEMS_PATH, RANGE)
    assert response.status_code == 200
    with pytest.raises(ValueError):
        response.json()


def test_truncated_fault_cuts_the_connection_then_sends_a_short_body(api: Api) -> None:
    api.sandbox.configure_faults(truncated_rate=1.0)
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        api.get(LINE_ITEMS_PATH, {**RANGE, "limit": 100})
    response = api.get(LINE_ITEMS_PATH, {**RANGE, "limit": 100})
    assert response.status_code == 200
    assert int(response.headers["Content-Length"]) == len(response.content)
    with pytest.raises(ValueError):
        response.json()


def test_slow_fault_delays_the_answer(api: Api) -> None:
    api.sandbox.configure_faults(slow_rate=1.0, slow_seconds=0.3)
    began = time.perf_counter()
    assert api.get(ANOMALIES_PATH).status_code == 200
    assert time.perf_counter() - began >= 0.3


# --- admin endpoints and request log --------------------------------------------------------


def test_admin_restate_by_days_and_dates(api: Api) -> None:
    assert api.admin("restate", {"days": 2}) == {
        "restated": ["2025-01-09", "2025-01-10"],
        "kind": "amounts",
    }
    assert api.admin("restate", {"dates": ["2025-01-03"], "kind": "services"}) == {
        "restated": ["2025-01-03"],
        "kind": "services",
    }
    assert api.sandbox.day_versions() == {
        date(2025, 1, 3): 1,
        date(2025, 1, 9): 1,
        date(2025, 1, 10): 1,
    }
    refused = api.post(ADMIN_PREFIX + "restate", {"dates": ["2025-01-03"], "kind": "ids"})
    assert refused.status_code == 422 and "kind must be one of" in refused.text


def test_skewed_rollups_disagree_with_line_items_by_the_amount(api: Api) -> None:
    day = {"start_date": "2025-01-04", "end_date": "2025-01-04"}

    def total(group_by: str) -> Decimal:
        rows = exact(api.get(ROLLUPS_PATH, {**day, "group_by": group_by}))["data"]
        return sum((Decimal(str(r["cost_usd"])) for r in rows), Decimal(0))

    before = {g: total(g) for g in ("provider", "service", "category")}
    assert api.admin("rollups/skew", {"date": "2025-01-04", "amount": "5.25"})["amount"] == "5.25"
    assert {g: total(g) - before[g] for g in before} == {g: Decimal("5.25") for g in before}
    truth = api.sandbox.daily_rollups("2025-01-04", "2025-01-04", "service")
    assert sum(r["cost_usd"] for r in truth) == total("service")  # the truth is what is served
    api.sandbox.skew_rollups("2025-01-04", 0)
    assert {g: total(g) for g in before} == before


def test_a_day_can_be_restated_just_before_the_next_rollups_request(api: Api) -> None:
    items = exact(api.get(LINE_ITEMS_PATH, {**RANGE, "limit": 1000}))["data"]
    api.admin("rollups/restate-before", {"date": "2025-01-02"})
    assert api.sandbox.day_versions() == {}  # nothing happens until rollups are asked for
    exact(api.get(ROLLUPS_PATH, {**RANGE, "group_by": "provider"}))
    assert api.sandbox.day_versions() == {date(2025, 1, 2): 1}
    fresh = exact(api.get(LINE_ITEMS_PATH, {**RANGE, "limit": 1000}))["data"]
    assert fresh != items
    assert error(
        requests.post(
            api.url + ADMIN_PREFIX + "rollups/restate-before", json={"date": "2024-01-01"}
        ),
        422,
        "VALIDATION_ERROR",
    )


def test_admin_moves_and_adds_anomalies_and_sets_their_order(api: Api) -> None:
    moved = api.admin("anomalies/move", {"count": 3})["moved"]
    assert len(moved) == 3
    added = api.admin("anomalies/add", {"count": 4, "at": "2025-01-05T00:00:00Z"})["added"]
    assert len(added) == 4
    assert api.admin("anomalies/order", {"order": "desc"}) == {"order": "desc"}
    first = api.get(ANOMALIES_PATH).json()["data"][0]
    assert first["detected_date"] == api.sandbox.anomalies()[-1]["detected_date"].strftime(
        "%Y-%m-%dT%H:%M:%SZ"
    )


def test_admin_faults_script_failures_and_reseed(api: Api) -> None:
    settings = api.admin("faults", {"fail_next": 1, "fail_status": 503, "seed": 3})
    assert settings["pending"] == 1 and settings["seed"] == 3
    assert api.get(ANOMALIES_PATH).status_code == 503
    api.admin("faults", {"error_rate": 1.0})
    assert api.get(ANOMALIES_PATH).status_code == 500
    api.admin("faults", {"clear": True})
    assert api.get(ANOMALIES_PATH).status_code == 200


def test_admin_rate_limit(api: Api) -> None:
    assert api.admin("rate-limit", {"requests_per_minute": 1})["requests_per_minute"] == 1
    assert [api.get(ANOMALIES_PATH).status_code for _ in range(2)] == [200, 429]
    api.admin("rate-limit", {"requests_per_minute": None})
    assert api.get(ANOMALIES_PATH).status_code == 200


def test_admin_adds_and_revokes_keys(api: Api) -> None:
    api.admin("keys", {"key": "ss_reader", "scopes": ["anomalies:read"]})
    assert api.get(ANOMALIES_PATH, key="ss_reader").status_code == 200
    assert error(api.get(LINE_ITEMS_PATH, RANGE, key="ss_reader"), 403, "INVALID_SCOPE")
    api.admin("keys", {"key": "ss_free_tier", "api_access": False})
    assert error(api.get(ANOMALIES_PATH, key="ss_free_tier"), 403, "PLAN_RESTRICTED")
    api.admin("keys/revoke", {"key": "ss_reader"})
    assert error(api.get(ANOMALIES_PATH, key="ss_reader"), 403, "FORBIDDEN")


def test_admin_stats_count_requests_by_path_and_status(api: Api) -> None:
    api.get(ANOMALIES_PATH)
    api.get(ANOMALIES_PATH, key=None)
    api.get(LINE_ITEMS_PATH, RANGE)
    assert api.admin("stats") == {
        "requests": {ANOMALIES_PATH: {"200": 1, "401": 1}, LINE_ITEMS_PATH: {"200": 1}},
        "total": 3,
    }
    assert api.admin("reset-requests", {}) == {"reset": True}
    assert api.admin("stats") == {"requests": {}, "total": 0}


def test_admin_rejects_bad_input_with_validation_error(api: Api) -> None:
    url = api.url + ADMIN_PREFIX
    assert error(requests.post(url + "restate", json={"days": "two"}), 422, "VALIDATION_ERROR")
    assert error(requests.post(url + "faults", json={"error_rate": 2}), 422, "VALIDATION_ERROR")
    assert error(requests.post(url + "keys/revoke", json={"key": "x"}), 422, "VALIDATION_ERROR")
    assert error(requests.post(url + "restate", data=b"[1"), 422, "VALIDATION_ERROR")
    assert error(requests.get(url + "nothing"), 404, "NOT_FOUND")


def test_request_log_records_path_params_and_status_without_the_key(api: Api) -> None:
    api.get(LINE_ITEMS_PATH, {**RANGE, "limit": 3})
    api.get(LINE_ITEMS_PATH, RANGE, key="ss_nobody")
    entries = api.sandbox.requests
    assert [(e.method, e.path, e.status) for e in entries] == [
        ("GET", LINE_ITEMS_PATH, 200),
        ("GET", LINE_ITEMS_PATH, 401),
    ]
    assert entries[0].params == {k: [str(v)] for k, v in {**RANGE, "limit": 3}.items()}
    assert DEMO_KEY not in repr(entries)
    assert api.sandbox.request_count(status=401) == 1
    api.sandbox.reset_requests()
    assert api.sandbox.request_count() == 0
