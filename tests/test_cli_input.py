"""Bad flags and config values: exit 2, one line naming the key and rule, no request sent."""

from __future__ import annotations

import pytest

from tests.conftest import Env


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--start-date", "2025-13-01"], "--start-date"),
        (["--start-date", "2025-02-30"], "not a real day"),
        (["--start-date", "01/02/2025"], "YYYY-MM-DD"),
        (["--end-date", "tomorrow"], "--end-date"),
        (["--start-date", "2025-03-02", "--end-date", "2025-03-01"], "is after --end-date"),
        (["--resources", "line_items,invoices"], "unknown resource invoices"),
        (["--resources", ","], "--resources"),
        (["--destination", "snowflake"], "invalid choice: 'snowflake'"),
        (["--duckdb-path", "x.duckdb", "--destination", "postgres"], "--duckdb-path"),
        (["--no-such-flag"], "unrecognized arguments"),
    ],
)
def test_bad_flags_exit_2_before_any_request(env: Env, flags: list[str], message: str) -> None:
    result = env.sync("stackspend", *flags)
    assert result.code == 2
    assert message in result.err
    assert len(result.err.strip().splitlines()) == 1
    assert env.stackspend.request_count() == 0


def test_unknown_vendor_exits_2(env: Env) -> None:
    result = env.cli("sync", "stackspin")
    assert result.code == 2
    assert "invalid choice: 'stackspin'" in result.err


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        (
            "REQUESTS_PER_MINUTE",
            "0",
            "sources.stackspend.requests_per_minute: must be an integer >= 1",
        ),
        ("REQUESTS_PER_MINUTE", "-5", "requests_per_minute: must be an integer >= 1"),
        (
            "REQUESTS_PER_MINUTE",
            "fast",
            "sources.stackspend.requests_per_minute: must be a whole number",
        ),
        ("REQUESTS_PER_MINUTE", "1.5", "requests_per_minute: must be a whole number"),
        ("LOOKBACK_DAYS", "-1", "sources.stackspend.lookback_days: must be an integer >= 0"),
        ("ANOMALY_LOOKBACK_DAYS", "-2", "anomaly_lookback_days: must be an integer >= 0"),
        ("START_DATE", "2025-02-29", "sources.stackspend.start_date: is not a real day"),
        ("START_DATE", "last week", "start_date: must be a date written YYYY-MM-DD"),
        ("BASE_URL", "http://api.stackspend.com", "must use https:// unless the host is loopback"),
        ("BASE_URL", "ftp://api.stackspend.com", "must be an https:// URL"),
        ("API_KEY", "", "sources.stackspend.api_key"),
        ("API_KEY", "ss_key with space", "whitespace or control characters"),
        ("API_KEY", "ss_key\n", "whitespace or control characters"),
        ("API_KEY", " ss_key", "whitespace or control characters"),
        ("API_KEY", "ss_key_\u20ac", "contains characters outside ASCII"),
        (
            "TIMEOUT_SECONDS",
            "0",
            "sources.stackspend.timeout_seconds: must be a number of seconds > 0",
        ),
        ("TIMEOUT_SECONDS", "nan", "timeout_seconds: must be a number of seconds > 0"),
        (
            "BACKOFF_SECONDS",
            "-1",
            "sources.stackspend.backoff_seconds: must be a number of seconds >= 0",
        ),
        ("BACKOFF_SECONDS", "inf", "backoff_seconds: must be a number of seconds >= 0"),
        ("MAX_ATTEMPTS", "0", "sources.stackspend.max_attempts: must be an integer >= 1"),
        ("WINDOW_DAYS", "0", "sources.stackspend.window_days: must be an integer >= 1"),
    ],
)
def test_bad_config_values_exit_2_before_any_request(
    env: Env, variable: str, value: str, message: str
) -> None:
    env.setenv(**{f"SOURCES__STACKSPEND__{variable}": value})
    result = env.sync()
    assert result.code == 2
    assert message in result.err
    assert len(result.err.strip().splitlines()) == 1
    assert env.stackspend.request_count() == 0
    assert "ss_key" not in result.err


def test_missing_api_key_names_the_variable(env: Env) -> None:
    env.monkeypatch.delenv("SOURCES__STACKSPEND__API_KEY")
    result = env.sync()
    assert result.code == 2
    assert "sources.stackspend.api_key: is missing: set SOURCES__STACKSPEND__API_KEY" in result.err
    assert env.stackspend.request_count() == 0


def test_http_base_url_is_allowed_on_loopback(env: Env) -> None:
    assert env.url.startswith("http://127.0.0.1")
    assert env.sync("stackspend", "--resources", "anomalies").code == 0


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("REOPEN_MONTHS", "-1", "sources.levelfour.reopen_months: must be an integer >= 0"),
        ("REOPEN_MONTHS", "one", "sources.levelfour.reopen_months: must be a whole number"),
        (
            "START_PERIOD",
            "2025-1",
            "sources.levelfour.start_period: must be a month written YYYY-MM",
        ),
        ("START_PERIOD", "2025-00", "start_period: must be a month written YYYY-MM"),
        (
            "REQUESTS_PER_MINUTE",
            "0",
            "sources.levelfour.requests_per_minute: must be an integer >= 1",
        ),
        ("BASE_URL", "http://api.levelfour.ai", "must use https:// unless the host is loopback"),
        ("API_KEY", "", "sources.levelfour.api_key: is empty"),
        ("API_KEY", "l4_test_with space", "whitespace or control characters"),
        ("API_KEY", "l4_live_tab\there", "whitespace or control characters"),
    ],
)
def test_bad_levelfour_config_exits_2_before_any_request(
    env: Env, variable: str, value: str, message: str
) -> None:
    env.setenv(**{f"SOURCES__LEVELFOUR__{variable}": value})
    result = env.sync("levelfour")
    assert result.code == 2
    assert message in result.err
    assert len(result.err.strip().splitlines()) == 1
    assert env.levelfour.request_count() == 0


def test_config_start_after_flag_end_exits_2(env: Env) -> None:
    env.setenv(SOURCES__STACKSPEND__START_DATE="2025-03-01")
    result = env.sync("stackspend", "--end-date", "2025-02-01")
    assert result.code == 2
    assert "sources.stackspend.start_date: 2025-03-01 is after" in result.err
    assert env.stackspend.request_count() == 0


@pytest.mark.parametrize("flag", ["--dataset", "--pipelines-dir", "--duckdb-path"])
def test_empty_names_exit_2(env: Env, flag: str) -> None:
    result = env.cli("sync", "stackspend", flag, "")
    assert result.code == 2
    assert flag in result.err
    assert env.stackspend.request_count() == 0


def test_a_base_url_with_credentials_is_refused_without_echoing_them(env: Env) -> None:
    env.setenv(SOURCES__STACKSPEND__BASE_URL="http://user:hunter2@api.example.com")
    result = env.sync()
    assert result.code == 2
    assert "must not carry credentials" in result.err
    assert "hunter2" not in result.err
    assert env.stackspend.request_count() == 0
