"""costsync benchmarks against the sandbox: throughput, the rest_api baseline, pacing,
incremental, and what reading money exactly costs per page.

    make bench                                       # every section, 1M and 5M line items
    python benchmarks/bench.py --rows 5000000        # the large throughput figure
    python benchmarks/bench.py --sections throughput --scale-rows 5000000  # 1M vs 5M
    python benchmarks/bench.py --sections pacing --runs 1
    python benchmarks/bench.py --sections money      # the money guard, in-process

The sandbox runs in its own process (`costsync sandbox`) with its pages
pre-rendered by a warm-up sync, so it answers as fast as it can and the
figures measure costsync. Every sync is a real `costsync sync` child process:
the figures include start-up, HTTP, JSON parsing, dlt's extract, normalize and
load, and the warehouse merge. Figures are medians of `--runs` runs; peak RSS
is the sync process's own maximum resident set.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

BIN = Path(sys.executable).parent
COSTSYNC = str(BIN / "costsync")
DAYS = 90
WINDOW_DAYS = 30  # costsync's default
SECTIONS = ("throughput", "baseline", "pacing", "incremental", "fanout", "money")
KEY = "ss_demo_key"
POSTGRES_URL = os.environ.get(
    "DESTINATION__POSTGRES__CREDENTIALS", "postgresql://postgres:@127.0.0.1:5432/test"
)


@dataclass
class Run:
    """One measured sync."""

    seconds: float
    rows: int
    requests: int
    rate_limited: int
    peak_rss_mb: float
    sync_seconds: float  # as the sync reports it: from its start, imports excluded
    peak_anonymous_mb: float  # sampled every 20 ms: RSS without mapped library files

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds


class Sandbox:
    """A `costsync sandbox` process on a free loopback port."""

    def __init__(self, per_day: int, requests_per_minute: int | None = None) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        command = [COSTSYNC, "sandbox", "--port", str(self.port), "--days", str(DAYS)]
        command += ["--line-items-per-day", str(per_day), "--cache-rows", str(per_day * DAYS)]
        if requests_per_minute:
            command += ["--requests-per-minute", str(requests_per_minute)]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
        self._wait_ready()

    def count(self, status: str | None = None) -> int:
        """Requests answered so far (with `status`, if given)."""
        with urllib.request.urlopen(f"{self.url}/_sandbox/stackspend/stats") as answer:
            stats = json.load(answer)["data"]["requests"]
        return sum(
            n
            for by_status in stats.values()
            for code, n in by_status.items()
            if status is None or code == status
        )

    def admin(self, action: str, body: dict[str, object]) -> None:
        """POST a sandbox knob, e.g. admin("restate", {"dates": [...]})."""
        request = urllib.request.Request(
            f"{self.url}/_sandbox/stackspend/{action}",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request) as answer:
            answer.read()

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                self.count()
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("the sandbox did not start")


@contextmanager
def sandbox(per_day: int, requests_per_minute: int | None = None) -> Iterator[Sandbox]:
    server = Sandbox(per_day, requests_per_minute)
    try:
        yield server
    finally:
        server.stop()


def timed_sync(
    server: Sandbox,
    workdir: Path,
    *args: str,
    destination: str = "duckdb",
    rpm: int = 1_000_000,
    extra_env: dict[str, str] | None = None,
) -> Run:
    """Run `costsync sync stackspend ...` as a child process and measure it."""
    env = {
        **(extra_env or {}),
        **os.environ,
        "SOURCES__STACKSPEND__BASE_URL": server.url,
        "SOURCES__STACKSPEND__API_KEY": KEY,
        "SOURCES__STACKSPEND__REQUESTS_PER_MINUTE": str(rpm),
        "DESTINATION__POSTGRES__CREDENTIALS": POSTGRES_URL,
        "RUNTIME__DLTHUB_TELEMETRY": "false",
    }
    if destination == "duckdb":
        where = ["--duckdb-path", str(workdir / "bench.duckdb")]
    else:
        where = ["--destination", destination, "--dataset", _dataset(workdir)]
    command = [COSTSYNC, "sync", "stackspend", *where, "--pipelines-dir", str(workdir / "p"), *args]
    before, limited_before = server.count(), server.count("429")
    started = time.perf_counter()
    child = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    anonymous = AnonymousPeak(child.pid)
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - started
    anonymous.stop()
    out, err = child.stdout.read().decode(), child.stderr.read().decode()
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"sync failed: {err.strip()}")
    return Run(
        seconds=seconds,
        rows=_rows_loaded(out),
        requests=server.count() - before,
        rate_limited=server.count("429") - limited_before,
        peak_rss_mb=usage.ru_maxrss / 1024,
        sync_seconds=_sync_seconds(out),
        peak_anonymous_mb=anonymous.peak_kb / 1024,
    )


class AnonymousPeak:
    """Samples a process's anonymous resident memory (its heap: what it allocated).

    Peak RSS also counts the pages of shared libraries mapped in, which vary
    with the page cache by tens of MB from run to run; the anonymous part is
    the memory the sync itself uses.
    """

    def __init__(self, pid: int, every: float = 0.02) -> None:
        self.peak_kb = 0
        self._path = f"/proc/{pid}/status"
        self._every = every
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join()

    def _sample(self) -> None:
        while not self._stopped.is_set():
            try:
                with open(self._path) as status:
                    for line in status:
                        if line.startswith("RssAnon:"):
                            self.peak_kb = max(self.peak_kb, int(line.split()[1]))
            except OSError:
                return
            time.sleep(self._every)


@dataclass
class Figures:
    """Medians of one throughput measurement."""

    rows_per_second: float
    peak_rss_mb: float


def throughput(rows: int, runs: int, destinations: list[str]) -> dict[str, Figures]:
    """N line items, no rate limit, into a fresh DuckDB file / Postgres schema, each run
    beside one of the hand-written reference loader on the same bytes, in turns."""
    per_day = -(-rows // DAYS)
    args = ("--resources", "line_items", "--start-date", _first_day())
    medians: dict[str, Figures] = {}
    with sandbox(per_day) as server:
        _warm_up(server, args)
        for destination in destinations:
            print(f"\n## Throughput: {per_day * DAYS:,} line items → {destination}, no rate limit")
            measured, references = [], []
            for _ in range(runs):
                with tempfile.TemporaryDirectory() as workdir:
                    measured.append(
                        timed_sync(server, Path(workdir), *args, destination=destination)
                    )
                    references.append(reference_run(server, Path(workdir), destination))
                    if destination == "postgres":
                        _drop_postgres_dataset(_dataset(Path(workdir)))
            _report(measured)
            medians[destination] = Figures(
                statistics.median(r.rows_per_second for r in measured),
                statistics.median(r.peak_rss_mb for r in measured),
            )
            _report_ratios(medians[destination], references)
    return medians


def reference_run(server: Sandbox, workdir: Path, destination: str) -> Run:
    """One run of benchmarks/reference_loader.py, measured like a sync."""
    start, end = _first_day(), _today().isoformat()
    where = [str(workdir / "reference.duckdb")]
    if destination == "postgres":
        where = [POSTGRES_URL, f"{_dataset(workdir)}_reference"]
    command = [sys.executable, str(Path(__file__).parent / "reference_loader.py")]
    command += [server.url, KEY, start, end, destination, *where]
    started = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    anonymous = AnonymousPeak(child.pid)
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - started
    anonymous.stop()
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"the reference loader failed: {child.stderr.read().decode()}")
    if destination == "postgres":
        _drop_postgres_dataset(where[1])
    rows = int(child.stdout.read().decode().strip())
    return Run(seconds, rows, 0, 0, usage.ru_maxrss / 1024, seconds, anonymous.peak_kb / 1024)


def _report_ratios(costsync: Figures, references: list[Run]) -> None:
    rate = statistics.median(r.rows_per_second for r in references)
    rss = statistics.median(r.peak_rss_mb for r in references)
    print(
        f"  reference       {rate:>12,.0f} rows/s, peak RSS {rss:,.0f} MB"
        f"   (runs: {' / '.join(f'{r.rows_per_second:,.0f}' for r in references)})"
    )
    print(f"  rows/s ratio    {costsync.rows_per_second / rate:>12.2f} x the reference")
    print(f"  peak RSS ratio  {costsync.peak_rss_mb / rss:>12.2f} x the reference")


def scaling(small: Figures, large: Figures, small_rows: int, large_rows: int) -> None:
    """How the DuckDB figures change from `small_rows` to `large_rows` line items."""
    print(f"\n## Scaling: {large_rows:,} vs {small_rows:,} line items → duckdb")
    ratio = large.peak_rss_mb / small.peak_rss_mb
    print(
        f"  peak RSS ratio  {ratio:>12.2f} x"
        f"   ({large.peak_rss_mb:,.0f} MB vs {small.peak_rss_mb:,.0f} MB)"
    )
    speed = large.rows_per_second / small.rows_per_second
    print(f"  rows/s ratio    {speed:>12.2f} x")


def baseline(rows: int, costsync_rows_per_second: float | None) -> None:
    """The same endpoint through dlt's declarative rest_api source, merge on id, into DuckDB."""
    days = 9
    per_day = -(-rows // days)
    print(f"\n## Baseline: dlt rest_api, {per_day * days:,} line items → duckdb, merge on id")
    with sandbox(per_day) as server, tempfile.TemporaryDirectory() as workdir:
        script = _BASELINE.format(
            url=server.url,
            key=KEY,
            start=(_today() - timedelta(days=DAYS - 1)).isoformat(),
            end=(_today() - timedelta(days=DAYS - days)).isoformat(),
            db=str(Path(workdir) / "rest_api.duckdb"),
            dir=str(Path(workdir) / "p"),
        )
        started = time.perf_counter()
        child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE)
        _, status, usage = os.wait4(child.pid, 0)
        seconds = time.perf_counter() - started
        loaded = int(child.stdout.read().decode().strip() or 0)
        if os.waitstatus_to_exitcode(status) != 0:
            raise RuntimeError("the rest_api baseline failed")
    rate = loaded / seconds
    print(f"  rows            {loaded:>12,}")
    print(f"  wall time       {seconds:>12.2f} s")
    print(f"  throughput      {rate:>12,.0f} rows/s")
    print(f"  peak RSS        {usage.ru_maxrss / 1024:>12,.0f} MB")
    if costsync_rows_per_second:
        print(
            f"  costsync ratio  {costsync_rows_per_second / rate:>12.1f} x (costsync rows/s ÷ this)"
        )


def pacing(runs: int, rate: int = 600, per_day: int = 11_112) -> None:
    """The sandbox enforces `rate` per minute; the client is configured to the same rate."""
    print(f"\n## Pacing: sandbox enforcing {rate}/min, client configured {rate}/min")
    args = ("--resources", "line_items", "--start-date", _first_day())
    minimum = sum(-(-(days * per_day) // 1000) for days in _window_lengths())
    with sandbox(per_day, requests_per_minute=rate) as server:
        measured = []
        for _ in range(runs):
            with tempfile.TemporaryDirectory() as workdir:
                measured.append(timed_sync(server, Path(workdir), *args, rpm=rate))
                time.sleep(60)  # let the server's window empty before the next run
        requests = statistics.median(r.requests for r in measured)
        seconds = statistics.median(r.seconds for r in measured)
        sync_seconds = statistics.median(r.sync_seconds for r in measured)
        paced = requests * 60 / rate
        print(
            f"  requests made   {requests:>12,.0f}   minimum {minimum:,} (Σ ⌈window rows / 1000⌉)"
        )
        print(f"  over minimum    {(requests / minimum - 1) * 100:>12.2f} %")
        print(f"  429s received   {max(r.rate_limited for r in measured):>12,}")
        print(f"  wall time       {seconds:>12.2f} s   requests ÷ rate = {paced:.2f} s")
        print(f"  wall ÷ paced    {seconds / paced:>12.3f}   (process start to exit)")
        print(
            f"  sync ÷ paced    {sync_seconds / paced:>12.3f}"
            f"   (sync {sync_seconds:.2f} s: imports excluded)"
        )


def incremental(per_day: int = 11_112) -> None:
    """After a 90-day backfill, the next (daily) runs' requests: with nothing changed,
    and after the API restated two days weeks back (found by verification)."""
    print("\n## Incremental: a daily run after a 90-day backfill")
    args = ("--start-date", _first_day())
    with sandbox(per_day) as server, tempfile.TemporaryDirectory() as workdir:
        backfill = timed_sync(server, Path(workdir), *args)
        daily = timed_sync(server, Path(workdir), *args)
        late = [(_today() - timedelta(days=n)).isoformat() for n in (45, 20)]
        server.admin("restate", {"dates": late})
        restated = timed_sync(server, Path(workdir), *args)
    lookback = -(-3 * per_day // 1000)
    pages = -(-per_day // 1000)
    print(f"  backfill        {backfill.requests:>12,} requests, {backfill.seconds:.1f} s")
    print(
        f"  daily run       {daily.requests:>12,} requests, {daily.seconds:.1f} s"
        f"   (lookback: {lookback} line-item pages + 3 rollups + 1 anomalies = {lookback + 4};"
        " the rollups also verify the 90 synced days)"
    )
    print(
        f"  2 days restated {restated.requests:>12,} requests, {restated.seconds:.1f} s"
        f"   (the daily run + {pages} pages for each of {', '.join(late)}"
        f" = {lookback + 4 + 2 * pages})"
    )


def money(repeats: int = 200) -> None:
    """One 1,000-row line-items page parsed in-process, with and without the money guard."""
    import pyarrow as pa
    import pyarrow.json as pajson

    from sandbox.http import Request
    from sandbox.stackspend import DEMO_KEY, LINE_ITEMS_PATH, StackSpendSandbox
    from sources.shared.arrow_json import may_misread_decimals, read_document
    from sources.stackspend.settings import LINE_ITEM_WIRE, PAGE_META_WIRE

    schema = pa.schema([("data", pa.list_(LINE_ITEM_WIRE)), ("meta", PAGE_META_WIRE)])
    pages = {}
    for notation in ("plain", "exponent"):
        app = StackSpendSandbox(seed=1, line_items_per_day=1000, amount_notation=notation)
        day = [app.start_date.isoformat()]
        query = {"start_date": day, "end_date": day, "limit": ["1000"]}
        request = Request("GET", LINE_ITEMS_PATH, query, {"x-api-key": DEMO_KEY})
        pages[notation] = app.handle(request).body
    plain = pages["plain"]
    options = pajson.ReadOptions(use_threads=False, block_size=len(plain) + 1)
    parse = pajson.ParseOptions(explicit_schema=schema, unexpected_field_behavior="infer")

    steps: dict[str, Callable[[], object]] = {
        "alone": lambda: pajson.read_json(io.BytesIO(plain), options, parse),
        "scan": lambda: may_misread_decimals(plain),
        "guarded": lambda: read_document(plain, schema, "StackSpend", LINE_ITEMS_PATH),
        "exponents": lambda: read_document(
            pages["exponent"], schema, "StackSpend", LINE_ITEMS_PATH
        ),
    }
    times: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(repeats):  # interleaved, so a busy moment weighs on every step alike
        for name, step in steps.items():
            started = time.perf_counter()
            step()
            times[name].append(time.perf_counter() - started)
    ms = {name: statistics.median(spent) * 1000 for name, spent in times.items()}
    least = {name: min(spent) * 1000 for name, spent in times.items()}
    print(
        f"\n## Money guard: one 1,000-row line-items page ({len(plain) / 1000:,.0f} kB),"
        f" in-process, median (min) of {repeats}"
    )
    rows = (
        ("pyarrow alone", "alone", "the JSON parse, unguarded"),
        ("guard scan", "scan", f"{ms['scan'] / ms['alone'] * 100:.0f}% of the parse"),
        ("read_document", "guarded", "parse + scan: what a sync does per page"),
        ("with exponents", "exponents", "every amount 1.248e1-style: re-read exactly"),
    )
    for label, name, note in rows:
        print(f"  {label:<15} {ms[name]:>12.2f} ms ({least[name]:.2f})   {note}")
    print(f"  per 1M items    {ms['scan']:>12.2f} s    of guard scans (1,000 pages)")


def fanout(workspaces: int = 4, rate: int = 120, per_day: int = 1_000, days: int = 30) -> None:
    """N workspaces, each its own key at `rate` requests a minute: one alone, then all
    side by side with --all-workspaces; the limit is per key, so side by side should
    take about as long as one."""
    print(f"\n## Fan-out: {workspaces} workspaces, {rate} requests/minute per key")
    names = [f"w{n}" for n in range(1, workspaces + 1)]
    env = {"SOURCES__STACKSPEND__WORKSPACES": json.dumps(names)}
    args = ("--start-date", (_today() - timedelta(days=days - 1)).isoformat())
    with sandbox(per_day, requests_per_minute=rate) as server:
        for name in names:
            key = f"ss_bench_{name}"
            server.admin("keys", {"key": key})
            env[f"STACKSPEND_{name.upper()}__SOURCES__STACKSPEND__API_KEY"] = key
        with tempfile.TemporaryDirectory() as workdir:
            one = timed_sync(
                server, Path(workdir), *args, "--workspace", names[0], rpm=rate, extra_env=env
            )
        with tempfile.TemporaryDirectory() as workdir:
            every = timed_sync(
                server, Path(workdir), *args, "--all-workspaces", rpm=rate, extra_env=env
            )
    print(
        f"  one workspace    {one.seconds:>9.1f} s, {one.requests:,} requests,"
        f" {one.rate_limited} 429s"
    )
    print(
        f"  all {workspaces} at once    {every.seconds:>9.1f} s, {every.requests:,} requests,"
        f" {every.rate_limited} 429s"
    )
    print(
        f"  side by side ÷ one {every.seconds / one.seconds:>7.2f}"
        f"   (one after another would be {workspaces:.2f})"
    )


def _warm_up(server: Sandbox, args: tuple[str, ...]) -> None:
    """One untimed sync, so the sandbox has every page rendered before the timed ones."""
    with tempfile.TemporaryDirectory() as workdir:
        timed_sync(server, Path(workdir), *args)


def _report(runs: list[Run]) -> None:
    def median(figure: Callable[[Run], float]) -> float:
        return statistics.median(map(figure, runs))

    print(f"  rows            {median(lambda r: r.rows):>12,.0f}")
    print(f"  wall time       {median(lambda r: r.seconds):>12.2f} s")
    print(f"  throughput      {median(lambda r: r.rows_per_second):>12,.0f} rows/s")
    print(f"  requests        {median(lambda r: r.requests):>12,.0f}")
    print(f"  429s            {median(lambda r: r.rate_limited):>12,.0f}")
    print(f"  peak RSS        {median(lambda r: r.peak_rss_mb):>12,.0f} MB")
    print(
        f"  peak anonymous  {median(lambda r: r.peak_anonymous_mb):>12,.0f} MB"
        "   (RSS less shared library pages, which vary with the page cache)"
    )
    print("  runs (rows/s)   " + ", ".join(f"{r.rows_per_second:,.0f}" for r in runs))


def _window_lengths() -> list[int]:
    lengths, left = [], DAYS
    while left > 0:
        lengths.append(min(WINDOW_DAYS, left))
        left -= WINDOW_DAYS
    return lengths


def _rows_loaded(summary: str) -> int:
    for line in summary.splitlines():
        parts = line.split()
        if parts and parts[0] == "line_items":
            return int(parts[1].replace(",", ""))
    raise RuntimeError(f"no line_items row count in: {summary!r}")


def _sync_seconds(summary: str) -> float:
    first = summary.splitlines()[0]
    return float(first.rsplit(",", 1)[-1].strip().removesuffix(" s"))


def _cpu_reference() -> float:
    """Seconds one core takes for a fixed pure-Python loop."""
    started = time.perf_counter()
    sum(range(10**8))
    return time.perf_counter() - started


def _dataset(workdir: Path) -> str:
    return f"bench_{workdir.name.lower()}"


def _drop_postgres_dataset(dataset: str) -> None:
    import psycopg2

    with psycopg2.connect(POSTGRES_URL) as connection, connection.cursor() as cursor:
        for schema in (dataset, f"{dataset}_staging"):
            cursor.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _today() -> date:
    return datetime.now(UTC).date()


def _first_day() -> str:
    return (_today() - timedelta(days=DAYS - 1)).isoformat()


_BASELINE = """
import dlt
from dlt.sources.rest_api import rest_api_source

source = rest_api_source({{
    "client": {{
        "base_url": "{url}",
        "auth": {{
            "type": "api_key", "name": "X-API-Key", "api_key": "{key}", "location": "header"
        }},
        "paginator": {{
            "type": "cursor", "cursor_path": "meta.next_cursor", "cursor_param": "cursor"
        }},
    }},
    "resources": [{{
        "name": "line_items",
        "primary_key": "id",
        "write_disposition": "merge",
        "endpoint": {{
            "path": "/api/v1/public/line-items",
            "params": {{"start_date": "{start}", "end_date": "{end}", "limit": 1000}},
            "data_selector": "data",
        }},
    }}],
}})
pipeline = dlt.pipeline("baseline", destination=dlt.destinations.duckdb("{db}"),
                        dataset_name="baseline", pipelines_dir="{dir}")
pipeline.run(source)
with pipeline.sql_client() as client:
    print(client.execute_sql("SELECT COUNT(*) FROM line_items")[0][0])
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="line items for throughput")
    parser.add_argument(
        "--scale-rows",
        type=int,
        default=0,
        help="also sync this many line items into DuckDB and compare (e.g. 5000000)",
    )
    parser.add_argument("--baseline-rows", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--sections", default=",".join(SECTIONS))
    parser.add_argument("--destinations", default="duckdb,postgres")
    args = parser.parse_args()
    print(f"costsync benchmarks — {os.cpu_count()} cores, python {sys.version.split()[0]}")
    print(
        f"cpu reference: sum(range(10**8)) in {_cpu_reference():.2f} s"
        " (compare machines by it: the figures below scale with it)"
    )
    sections = args.sections.split(",")
    rates: dict[str, Figures] = {}
    if "throughput" in sections:
        rates = throughput(args.rows, args.runs, args.destinations.split(","))
        if args.scale_rows and "duckdb" in rates:
            large = throughput(args.scale_rows, args.runs, ["duckdb"])["duckdb"]
            scaling(rates["duckdb"], large, args.rows, args.scale_rows)
    if "baseline" in sections:
        duckdb = rates.get("duckdb")
        baseline(args.baseline_rows, duckdb.rows_per_second if duckdb else None)
    if "pacing" in sections:
        pacing(args.runs)
    if "incremental" in sections:
        incremental()
    if "fanout" in sections:
        fanout()
    if "money" in sections:
        money()


if __name__ == "__main__":
    main()
