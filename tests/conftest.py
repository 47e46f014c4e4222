"""Shared fixtures: isolated dlt folders, sandbox servers, an in-process CLI."""

from __future__ import annotations

import os

os.environ["RUNTIME__DLTHUB_TELEMETRY"] = "false"

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from pipelines import cli
from sandbox import levelfour, stackspend
from sandbox.http import SandboxServer
from sandbox.levelfour import LevelFourSandbox
from sandbox.stackspend import StackSpendSandbox
from tests.bigquery_emulator import BigQueryEmulator, emulator_installed, running_emulator

# The tests fix "today" once, at import: the sandboxes' data ends on it, and costsync's
# own default end date is the real today when each sync runs. A run that crossed midnight
# UTC would compare two different days, so close to midnight the run first waits for the
# new day (the whole suite takes under DAY_MARGIN; override with the environment variable).
DAY_MARGIN = timedelta(minutes=float(os.environ.get("COSTSYNC_TEST_DAY_MARGIN_MINUTES", "30")))


def today_with_room(margin: timedelta = DAY_MARGIN) -> tuple[date, float]:
    """Today (UTC), after waiting for midnight when less than `margin` of today is left;
    and how long that wait was (seconds)."""
    now = datetime.now(UTC)
    left = datetime.combine(now.date() + timedelta(days=1), datetime.min.time(), UTC) - now
    waited = 0.0
    if left < margin:
        waited = left.total_seconds() + 2
        time.sleep(waited)
    return datetime.now(UTC).date(), waited


TODAY, WAITED_FOR_MIDNIGHT = today_with_room()


def pytest_report_header() -> str | None:
    """Say so when the run waited for midnight UTC before starting."""
    if not WAITED_FOR_MIDNIGHT:
        return None
    return f"waited {WAITED_FOR_MIDNIGHT:.0f} s for midnight UTC, so the whole run sees one date"


POSTGRES_URL = os.environ.get(
    "COSTSYNC_TEST_POSTGRES", "postgresql://postgres:@127.0.0.1:5432/test"
)


@dataclass
class CliResult:
    """What one `costsync ...` invocation did."""

    code: int
    out: str
    err: str


@dataclass
class Env:
    """A test's sandbox, warehouse file and pipelines folder."""

    url: str
    stackspend: StackSpendSandbox
    levelfour: LevelFourSandbox
    duckdb_path: Path
    pipelines_dir: Path
    capsys: pytest.CaptureFixture[str]
    monkeypatch: pytest.MonkeyPatch

    def sync(self, vendor: str = "stackspend", *args: str) -> CliResult:
        """`costsync sync VENDOR` into this test's DuckDB file and pipelines folder."""
        return self.cli(
            "sync",
            vendor,
            "--duckdb-path",
            str(self.duckdb_path),
            "--pipelines-dir",
            str(self.pipelines_dir),
            *args,
        )

    def sync_postgres(self, vendor: str, dataset: str, *args: str) -> CliResult:
        """`costsync sync VENDOR --destination postgres` into `dataset`."""
        self.monkeypatch.setenv("DESTINATION__POSTGRES__CREDENTIALS", POSTGRES_URL)
        return self.cli(
            "sync",
            vendor,
            "--destination",
            "postgres",
            "--dataset",
            dataset,
            "--pipelines-dir",
            str(self.pipelines_dir / "postgres"),
            *args,
        )

    def sync_bigquery(self, vendor: str, dataset: str, *args: str) -> CliResult:
        """`costsync sync VENDOR --destination bigquery` into `dataset` (see `bq_datasets`)."""
        return self.cli(
            "sync",
            vendor,
            "--destination",
            "bigquery",
            "--dataset",
            dataset,
            "--pipelines-dir",
            str(self.pipelines_dir / "bigquery"),
            *args,
        )

    def cli(self, *argv: str) -> CliResult:
        """Run the CLI in-process and capture what it printed."""
        self.capsys.readouterr()
        code = cli.run(list(argv))
        captured = self.capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    def setenv(self, **values: str) -> None:
        """Set environment variables for the rest of the test."""
        for name, value in values.items():
            self.monkeypatch.setenv(name, value)


def wait_until(condition: Callable[[], bool], timeout: float = 60.0, what: str = "") -> None:
    """Poll `condition` until it holds; fail the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"gave up after {timeout:.0f} s waiting for {what or condition}")
        time.sleep(0.05)


@pytest.fixture(autouse=True)
def isolated_dlt(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test gets its own dlt data dir and no vendor config from the environment."""
    monkeypatch.setenv("DLT_DATA_DIR", str(tmp_path_factory.mktemp("dlt_data")))
    for name in list(os.environ):
        if name.startswith(("SOURCES__", "DESTINATION__")):
            monkeypatch.delenv(name)


@pytest.fixture
def stackspend_app() -> StackSpendSandbox:
    """21 days of StackSpend data ending today, 150 line items a day (several pages)."""
    return StackSpendSandbox(
        seed=7, start_date=TODAY - timedelta(days=20), end_date=TODAY, line_items_per_day=150
    )


@pytest.fixture
def levelfour_app() -> LevelFourSandbox:
    """Six months of LevelFour data ending this month, 60 items a month."""
    return LevelFourSandbox(seed=11)


@pytest.fixture
def env(
    stackspend_app: StackSpendSandbox,
    levelfour_app: LevelFourSandbox,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Env]:
    """A running sandbox and the config pointing costsync at it."""
    with SandboxServer([stackspend_app, levelfour_app]) as server:
        for vendor, key in (("STACKSPEND", stackspend.DEMO_KEY), ("LEVELFOUR", levelfour.DEMO_KEY)):
            monkeypatch.setenv(f"SOURCES__{vendor}__API_KEY", key)
            monkeypatch.setenv(f"SOURCES__{vendor}__BASE_URL", server.url)
            monkeypatch.setenv(f"SOURCES__{vendor}__REQUESTS_PER_MINUTE", "100000")
            monkeypatch.setenv(f"SOURCES__{vendor}__BACKOFF_SECONDS", "0.01")
        start = (TODAY - timedelta(days=20)).isoformat()
        monkeypatch.setenv("SOURCES__STACKSPEND__START_DATE", start)
        yield Env(
            url=server.url,
            stackspend=stackspend_app,
            levelfour=levelfour_app,
            duckdb_path=tmp_path / "warehouse.duckdb",
            pipelines_dir=tmp_path / "pipelines",
            capsys=capsys,
            monkeypatch=monkeypatch,
        )


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """The test Postgres; its tests skip where none is reachable, except under CI=true."""
    import psycopg2

    try:
        psycopg2.connect(POSTGRES_URL, connect_timeout=5).close()
    except psycopg2.OperationalError as error:
        reason = f"no Postgres at {POSTGRES_URL} ({str(error).strip()})"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason}; CI=true requires the Postgres tests to run")
        pytest.skip(f"{reason}; set COSTSYNC_TEST_POSTGRES to run the Postgres tests")
    return POSTGRES_URL


@pytest.fixture
def pg_datasets(postgres_url: str) -> Iterator[dict[str, str]]:
    """Fresh Postgres dataset names for this test, dropped (with staging) afterwards."""
    import uuid

    import psycopg2

    prefix = f"t{uuid.uuid4().hex[:10]}"
    yield {"stackspend": f"{prefix}_stackspend", "levelfour": f"{prefix}_levelfour"}
    with psycopg2.connect(postgres_url) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT nspname FROM pg_namespace WHERE nspname LIKE %s", (f"{prefix}%",))
        for (schema,) in cursor.fetchall():
            cursor.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture(scope="session")
def bigquery_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BigQueryEmulator]:
    """bqemulator on loopback for the session; without its virtualenv its tests skip,
    except under CI=true."""
    if not emulator_installed():
        reason = "the BigQuery emulator is not installed (make .venv-bqemulator/.installed)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason}; CI=true requires the BigQuery tests to run")
        pytest.skip(reason)
    with running_emulator(tmp_path_factory.mktemp("bqemulator")) as emulator:
        yield emulator


@pytest.fixture
def bq_datasets(
    bigquery_emulator: BigQueryEmulator, monkeypatch: pytest.MonkeyPatch
) -> Iterator[dict[str, str]]:
    """Fresh BigQuery dataset names on the emulator, costsync's BigQuery destination pointed
    at it; the datasets (with dlt's `_staging` ones) are dropped afterwards."""
    import uuid

    for name, value in bigquery_emulator.environment().items():
        monkeypatch.setenv(name, value)
    prefix = f"t{uuid.uuid4().hex[:10]}"
    yield {"stackspend": f"{prefix}_stackspend", "levelfour": f"{prefix}_levelfour"}
    client = bigquery_emulator.client()
    for dataset in client.list_datasets():
        if dataset.dataset_id.startswith(prefix):
            client.delete_dataset(dataset.reference, delete_contents=True, not_found_ok=True)
