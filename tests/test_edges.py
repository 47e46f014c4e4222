"""At the edges the docs allow: hostile paging, echoed keys, full anomaly answers in an
unknown order, a drifting LevelFour, bad paths and values, one sync per dataset."""

from __future__ import annotations

import base64
import os
import re
import subprocess
import sys
import urllib.parse
import zlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from sandbox.stackspend import LINE_ITEMS_PATH
from tests.conftest import TODAY, Env, wait_until
from tests.levelfour.test_sync import assert_matches
from tests.stackspend.test_sync import START, assert_warehouse_matches_api, counts, state_of
from tests.warehouse import ANOMALY_FIELDS, PostgresWarehouse, rows, table_rows, truth_rows

ROOT = Path(__file__).parent.parent
ONE_DAY = ["--start-date", TODAY.isoformat(), "--end-date", TODAY.isoformat()]


def one_line(result_err: str) -> str:
    lines = result_err.strip().splitlines()
    assert len(lines) == 1, result_err
    return lines[0]


# --- paging ---------------------------------------------------------------------------


# each bound, plus the pages requested ahead while one is parsed
@pytest.mark.parametrize(
    ("mode", "reason", "most_requests"),
    [
        ("endless", "pages in a row brought no rows", 3 + 2),
        ("repeat", "more than the query can hold", 1_000 + 3),  # a day holds 1,000 pages
        ("trickle", "20 pages in a row brought fewer than 10 rows each", 20 + 2),
    ],
)
def test_paging_that_never_ends_fails_after_a_bound(
    env: Env, mode: str, reason: str, most_requests: int
) -> None:
    assert env.sync().code == 0
    before, state_before = counts(env), state_of(env)
    env.stackspend.set_paging_fault(mode)
    env.stackspend.reset_requests()
    result = env.sync("stackspend", "--resources", "line_items", *ONE_DAY)
    assert result.code == 1
    assert reason in one_line(result.err) and "PagingError" not in result.err
    assert env.stackspend.request_count(LINE_ITEMS_PATH) <= most_requests
    assert counts(env) == before and state_of(env) == state_before


# --- secrets --------------------------------------------------------------------------

KEY = "ss_live_a1b2/c3d4+e5f6=SECRET"


def key_forms() -> list[str]:
    return [
        KEY,
        KEY.replace("/", "\\/"),
        urllib.parse.quote(KEY, safe=""),
        re.sub("%[0-9A-F]{2}", lambda m: m.group().lower(), urllib.parse.quote(KEY, safe="")),
        urllib.parse.quote(KEY),
        urllib.parse.quote_plus(KEY, safe=""),
        base64.b64encode(KEY.encode()).decode().rstrip("="),
        base64.b64encode(f"Bearer {KEY}".encode()).decode()[12:-4],  # only the key's bits
        "".join(f"\\u{ord(c):04x}" for c in KEY),
    ]


def decoded_states(blobs: list[str]) -> str:
    """dlt's _dlt_pipeline_state rows: base64 of zlib-compressed JSON."""
    return "\n".join(zlib.decompress(base64.b64decode(blob)).decode() for blob in blobs)


def assert_no_key_anywhere(texts: list[str], env: Env) -> None:
    everything = "\n".join(texts)
    for path in env.pipelines_dir.rglob("*"):
        if path.is_file():
            everything += path.read_bytes().decode("utf-8", "replace")
    if env.duckdb_path.exists():
        states = rows(env.duckdb_path, "SELECT state FROM stackspend._dlt_pipeline_state")
        everything += decoded_states([state for (state,) in states])
    for form in key_forms():
        assert form not in everything, form


@pytest.mark.parametrize(
    "form",
    [
        "raw",
        "json-escaped",
        "unicode-escaped",
        "url-encoded",
        "url-encoded-lower",
        "url-encoded-path",
        "base64-bearer",
        "html-unicode-escaped",
    ],
)
def test_a_key_the_api_echoes_in_any_form_is_masked(
    env: Env, form: str, caplog: pytest.LogCaptureFixture
) -> None:
    assert env.sync().code == 0  # leaves state and a trace to search as well
    env.stackspend.echo_key_in_errors(form)
    env.setenv(SOURCES__STACKSPEND__API_KEY=KEY)  # unknown to the sandbox: 401, key quoted
    result = env.sync()
    assert result.code == 1
    assert "***" in one_line(result.err)
    assert_no_key_anywhere([result.out, result.err, caplog.text], env)


@pytest.mark.postgres
def test_no_key_reaches_the_postgres_tables(
    env: Env, pg_datasets: dict[str, str], postgres_url: str
) -> None:
    env.stackspend.add_key(KEY)
    env.setenv(SOURCES__STACKSPEND__API_KEY=KEY)
    dataset = pg_datasets["stackspend"]
    assert env.sync_postgres("stackspend", dataset).code == 0
    env.stackspend.echo_key_in_errors("json-escaped")
    env.stackspend.revoke_key(KEY)
    assert env.sync_postgres("stackspend", dataset).code == 1
    warehouse = PostgresWarehouse(postgres_url, pg_datasets)
    tables = warehouse.rows(
        f"SELECT table_name FROM information_schema.tables WHERE table_schema = '{dataset}'"
    )
    dumped = ""
    for (table,) in tables:
        dumped += str(warehouse.rows(f'SELECT * FROM "{dataset}"."{table}"'))
    states = warehouse.rows(f'SELECT state FROM "{dataset}"."_dlt_pipeline_state"')
    dumped += decoded_states([state for (state,) in states])
    for form in key_forms():
        assert form not in dumped, form


# --- anomalies ------------------------------------------------------------------------


def test_full_anomaly_answers_holding_the_newest_are_completed_by_filters(env: Env) -> None:
    api = env.stackspend
    api.anomaly_order = "newest-asc"  # the newest 500 after `since`, oldest first
    moment = datetime.combine(TODAY - timedelta(days=3), datetime.min.time(), UTC)
    for hour in range(10):
        api.add_anomalies(100, at=moment + timedelta(hours=hour))
    assert env.sync("stackspend", "--resources", "anomalies").code == 0
    truth = api.anomalies(datetime.combine(START, datetime.min.time(), UTC))
    assert len(truth) > 1_000
    loaded = table_rows(env.duckdb_path, "stackspend.anomalies", ANOMALY_FIELDS)
    assert loaded == truth_rows(truth, ANOMALY_FIELDS)


def test_anomalies_splits_by_provider_when_severity_and_status_do_not_suffice(env: Env) -> None:
    api = env.stackspend
    api.anomaly_order = "newest-asc"
    moment = datetime.combine(TODAY - timedelta(days=2), datetime.min.time(), UTC)
    for provider in ("aws", "gcp", "openai"):
        api.add_anomalies(300, moment, provider_type=provider, severity="low", status="new")
    assert env.sync("stackspend", "--resources", "anomalies").code == 0
    truth = api.anomalies(datetime.combine(START, datetime.min.time(), UTC))
    loaded = table_rows(env.duckdb_path, "stackspend.anomalies", ANOMALY_FIELDS)
    assert loaded == truth_rows(truth, ANOMALY_FIELDS)


def test_anomalies_no_filter_can_complete_fail_naming_the_filters(env: Env) -> None:
    api = env.stackspend
    api.anomaly_order = "newest-asc"
    moment = datetime.combine(TODAY - timedelta(days=2), datetime.min.time(), UTC)
    api.add_anomalies(600, moment, provider_type="aws", severity="high", status="new")
    result = env.sync("stackspend", "--resources", "anomalies")
    assert result.code == 1
    line = one_line(result.err)
    assert "severity=high, status=new, provider_type=aws" in line
    assert "anomaly_lookback_days" in line
    assert (
        not env.duckdb_path.exists()
        or not rows(
            env.duckdb_path,
            "SELECT count(*) FROM information_schema.tables WHERE table_name = 'anomalies'",
        )[0][0]
    )


# --- LevelFour drift ------------------------------------------------------------------


def test_levelfour_raw_with_a_changed_field_type_fails_naming_it(env: Env) -> None:
    assert env.sync("levelfour").code == 0
    env.levelfour.drift_field("cost", "12.48 USD")
    result = env.sync("levelfour")
    assert result.code == 1
    assert "field 'cost'" in one_line(result.err) and "12.48 USD" in result.err
    env.levelfour.clear_drift()
    again = env.sync("levelfour")
    assert again.code == 0
    assert "format=table" not in again.out  # still reading raw
    assert_matches(env)


def test_levelfour_summary_says_when_the_table_format_is_in_use(env: Env) -> None:
    env.levelfour.set_raw(False)
    result = env.sync("levelfour")
    assert result.code == 0, result.err
    assert "format=table" in result.out and "refuses format=raw" in result.out


# --- bad input ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (
            ["--duckdb-path", "/nonexistent-dir/x.duckdb"],
            "the folder /nonexistent-dir does not exist",
        ),
        (["--end-date", "9999-12-31"], "--end-date: must be a day from 2000-01-01"),
        (["--start-date", "1999-12-31"], "--start-date: must be a day from 2000-01-01"),
        (["--dataset", 'x"; drop table y; --'], "--dataset must be a plain name"),
        (["--dataset", "Finance"], "--dataset must be a plain name"),
        (["--dataset", "a" * 64], "--dataset must be a plain name"),
    ],
)
def test_bad_paths_dates_and_names_exit_2_before_any_request(
    env: Env, flags: list[str], message: str
) -> None:
    args = ["sync", "stackspend", "--pipelines-dir", str(env.pipelines_dir)]
    if "--duckdb-path" not in flags:
        args += ["--duckdb-path", str(env.duckdb_path)]
    result = env.cli(*args, *flags)
    assert result.code == 2
    assert message in one_line(result.err)
    assert env.stackspend.request_count() == 0


def test_a_folder_as_the_duckdb_path_exits_2(env: Env, tmp_path: Path) -> None:
    result = env.cli("sync", "stackspend", "--duckdb-path", str(tmp_path))
    assert result.code == 2
    assert "is a folder" in one_line(result.err)
    assert env.stackspend.request_count() == 0


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("REQUESTS_PER_MINUTE", "100000000000000000000", "from 1 to 1,000,000"),
        ("WINDOW_DAYS", "100000", "window_days: must be an integer from 1 to 366"),
        ("LOOKBACK_DAYS", "99999999", "lookback_days: must be an integer from 0 to 36,600"),
        ("MAX_ATTEMPTS", "1000", "max_attempts: must be an integer from 1 to 100"),
        ("TIMEOUT_SECONDS", "1e400", "timeout_seconds: must be a number of seconds > 0"),
        ("BACKOFF_SECONDS", "86400", "backoff_seconds: must be at most 3600 seconds"),
        ("END_DATE", "9999-12-31", "sources.stackspend.end_date: must be a day from"),
        ("VERIFY_DAYS", "1000000", "verify_days: must be an integer from 0 to 36,600"),
    ],
)
def test_huge_values_exit_2_before_any_request(
    env: Env, variable: str, value: str, message: str
) -> None:
    env.setenv(**{f"SOURCES__STACKSPEND__{variable}": value})
    result = env.sync()
    assert result.code == 2
    assert message in one_line(result.err)
    assert env.stackspend.request_count() == 0


def test_a_duckdb_file_held_by_another_process_is_named_exit_1(env: Env) -> None:
    duckdb.connect(str(env.duckdb_path)).close()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); print('held', flush=True);"
            " time.sleep(120)",
            str(env.duckdb_path),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        result = env.sync()
        assert result.code == 1
        line = one_line(result.err)
        assert "is open in another process" in line and f"PID {holder.pid}" in line
    finally:
        holder.kill()
        holder.wait(timeout=30)


# --- one sync per dataset -------------------------------------------------------------


def start_slow_sync(env: Env, *where: str) -> subprocess.Popen[str]:
    """A sync in a child process, kept busy by slow answers, once it is really running."""
    env.stackspend.configure_faults(slow_rate=1.0, slow_seconds=0.4)
    child = subprocess.Popen(
        [sys.executable, "-m", "pipelines.cli", "sync", "stackspend", *where],
        cwd=ROOT,
        env=os.environ,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    wait_until(lambda: env.stackspend.request_count() > 0, what="the first sync's requests")
    return child


def test_a_second_sync_of_one_duckdb_dataset_refuses_from_another_pipelines_folder(
    env: Env,
) -> None:
    first = start_slow_sync(
        env, "--duckdb-path", str(env.duckdb_path), "--pipelines-dir", str(env.pipelines_dir)
    )
    other = env.cli(
        "sync",
        "stackspend",
        "--duckdb-path",
        str(env.duckdb_path),
        "--pipelines-dir",
        str(env.pipelines_dir.parent / "elsewhere"),
    )
    assert other.code == 1
    line = one_line(other.err)
    assert "another sync is loading dataset 'stackspend'" in line and str(first.pid) in line
    _, err = first.communicate(timeout=300)
    assert first.returncode == 0, err
    env.stackspend.clear_faults()
    assert_warehouse_matches_api(env)


@pytest.mark.postgres
def test_a_second_sync_of_one_postgres_dataset_refuses_from_another_pipelines_folder(
    env: Env, pg_datasets: dict[str, str], postgres_url: str
) -> None:
    dataset = pg_datasets["stackspend"]
    env.setenv(DESTINATION__POSTGRES__CREDENTIALS=postgres_url)
    first = start_slow_sync(
        env,
        "--destination",
        "postgres",
        "--dataset",
        dataset,
        "--pipelines-dir",
        str(env.pipelines_dir / "a"),
    )
    other = env.sync_postgres("stackspend", dataset)  # its own pipelines folder
    assert other.code == 1
    line = one_line(other.err)
    assert f"another sync is loading dataset '{dataset}'" in line and str(first.pid) in line
    _, err = first.communicate(timeout=300)
    assert first.returncode == 0, err
