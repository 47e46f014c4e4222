"""`costsync report`: its figures against SQL over the same tables, exact to the last decimal."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from collections.abc import Iterator
from datetime import date, timedelta
from decimal import Decimal
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import duckdb
import pytest

from pipelines import cli, report
from pipelines.report.figures import ReportData
from tests.conftest import TODAY, Env
from tests.warehouse import exact_sum, rows


def build(env: Env, *datasets: str) -> ReportData:
    """The report's figures over the test's DuckDB file (the default datasets unless named)."""
    output = env.duckdb_path.with_name("report.html")
    _, _, data = report.write_report("duckdb", str(env.duckdb_path), list(datasets), output)
    return data


def sync(env: Env, *vendors: str) -> None:
    for vendor in vendors:
        result = env.sync(vendor)
        assert result.code == 0, result.err


def cents(path: Path, sql: str) -> list[tuple[Any, ...]]:
    """`sql`'s rows with every Decimal rounded to the cent by the warehouse, as the report shows."""
    return [tuple(_shown(value) for value in row) for row in rows(path, sql)]


def _shown(value: Any) -> Any:
    if isinstance(value, Decimal):
        return f"{value:,.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


class Tables(HTMLParser):
    """The text of every cell of every `<table id=...>` in a page, by table id."""

    def __init__(self, page: str) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self._table: list[list[str]] | None = None
        self._cell: list[str] | None = None
        self.feed(page)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table":
            self._table = self.tables.setdefault(dict(attrs).get("id") or "", [])
        elif tag == "tr" and self._table is not None:
            self._table.append([])
        elif tag == "td" and self._table is not None:
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "td" and self._cell is not None and self._table is not None:
            self._table[-1].append("".join(self._cell).strip())
            self._cell = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)

    def body(self, table_id: str) -> list[tuple[str, ...]]:
        """The rows of a table that hold cells (the header row left out)."""
        return [tuple(row) for row in self.tables[table_id] if row]


def test_daily_spend_by_provider_and_credits_match_sql(env: Env) -> None:
    sync(env, "stackspend")
    figures = build(env).stackspend
    assert figures is not None
    expected = rows(
        env.duckdb_path,
        """SELECT usage_date, provider_type,
               SUM(CASE WHEN net_amount_usd >= 0 THEN net_amount_usd ELSE 0 END),
               SUM(CASE WHEN net_amount_usd < 0 THEN net_amount_usd ELSE 0 END),
               SUM(net_amount_usd)
           FROM stackspend.line_items GROUP BY ALL ORDER BY ALL""",
    )
    assert [dataclasses.astuple(row) for row in figures.by_day_and_provider] == expected
    per_day = rows(
        env.duckdb_path,
        """SELECT usage_date, SUM(CASE WHEN net_amount_usd >= 0 THEN net_amount_usd ELSE 0 END),
               SUM(CASE WHEN net_amount_usd < 0 THEN net_amount_usd ELSE 0 END), SUM(net_amount_usd)
           FROM stackspend.line_items GROUP BY ALL ORDER BY ALL""",
    )
    assert [dataclasses.astuple(row) for row in figures.by_day] == per_day
    # The totals equal the exact sum of what the API served.
    served = [item["net_amount_usd"] for item in env.stackspend.line_items(*synced_days())]
    assert figures.total.net == exact_sum(served)
    assert figures.total.credits == exact_sum([a for a in served if a < 0]) < 0
    assert figures.total.line_items == len(served)
    assert {row.provider: row.net for row in figures.by_provider} == dict(
        rows(
            env.duckdb_path,
            "SELECT provider_type, SUM(net_amount_usd) FROM stackspend.line_items GROUP BY 1",
        )
    )


def synced_days() -> tuple[date, date]:
    return TODAY - timedelta(days=20), TODAY


@pytest.mark.parametrize(
    ("attribute", "column"), [("top_services", "service"), ("top_projects", "project_id")]
)
def test_top_services_and_projects_with_month_over_month_match_sql(
    env: Env, attribute: str, column: str
) -> None:
    sync(env, "stackspend")
    figures = build(env).stackspend
    assert figures is not None and figures.period is not None
    latest = TODAY.replace(day=1)
    previous = (latest - timedelta(days=1)).replace(day=1)
    assert (figures.period.latest_month, figures.period.previous_month) == (latest, previous)
    name = {
        "service": "provider_type || ' / ' || provider_service",
        "project_id": "project_id",
    }[column]
    expected = rows(
        env.duckdb_path,
        f"""SELECT {name} AS name, SUM(net_amount_usd) AS total,
                SUM(CASE WHEN usage_date >= DATE '{previous}' AND usage_date < DATE '{latest}'
                    THEN net_amount_usd ELSE 0 END) AS previous_month,
                SUM(CASE WHEN usage_date >= DATE '{latest}' THEN net_amount_usd ELSE 0 END)
            FROM stackspend.line_items GROUP BY name ORDER BY total DESC, name LIMIT 10""",
    )
    ranked = getattr(figures, attribute)
    assert [(r.name, r.total, r.previous_month, r.latest_month) for r in ranked] == expected
    assert all(r.change == r.latest_month - r.previous_month for r in ranked)
    assert len(ranked) == 10


def test_anomalies_and_their_excess_match_sql(env: Env) -> None:
    sync(env, "stackspend")
    figures = build(env).stackspend
    assert figures is not None and figures.anomalies
    expected = rows(
        env.duckdb_path,
        """SELECT id, actual_cost, expected_cost, actual_cost - expected_cost
           FROM stackspend.anomalies ORDER BY id""",
    )
    shown = sorted((a.id, a.actual_cost, a.expected_cost, a.excess) for a in figures.anomalies)
    assert shown == expected
    open_excess = [e for _, s, e in _anomaly_statuses(env) if s in ("new", "acknowledged")]
    totals = figures.anomaly_totals
    assert totals is not None
    assert totals.count == len(expected)
    assert totals.open_count == len(open_excess)
    assert totals.open_excess == exact_sum(open_excess)
    assert totals.excess == exact_sum([row[3] for row in expected])


def _anomaly_statuses(env: Env) -> list[tuple[str, str, Decimal]]:
    return [
        (a["id"], a["status"], a["actual_cost"] - a["expected_cost"])
        for a in env.stackspend.anomalies()
    ]


def test_levelfour_cost_by_month_and_service_match_sql(env: Env) -> None:
    sync(env, "levelfour")
    figures = build(env).levelfour
    assert figures is not None
    expected = rows(
        env.duckdb_path,
        """SELECT period, service, SUM(cost), SUM(previous_cost), SUM(cost) - SUM(previous_cost)
           FROM levelfour.spending_breakdown GROUP BY ALL ORDER BY ALL""",
    )
    assert [dataclasses.astuple(row) for row in figures.by_month_and_service] == expected
    for month in figures.by_month:
        served = env.levelfour.breakdown(month.period)
        assert month.cost == exact_sum([item["cost"] for item in served])
        assert month.previous_cost == exact_sum([item["previous_cost"] for item in served])
        assert month.change == month.cost - month.previous_cost


def test_reconciliation_agrees_then_shows_the_restated_day(env: Env) -> None:
    sync(env, "stackspend")
    figures = build(env).stackspend
    assert figures is not None and figures.reconciliation
    assert [day.usage_date for day in figures.reconciliation] == _days(*synced_days())
    assert all(day.agrees for day in figures.reconciliation)
    # Rollups re-read after a restatement, line items not: that day's line items no longer add up.
    env.stackspend.restate([TODAY])
    assert env.sync("stackspend", "--resources", "daily_rollups").code == 0
    days = {day.usage_date: day for day in build(env).stackspend.reconciliation}
    assert [d for d, day in days.items() if not day.agrees] == [TODAY]
    expected = rows(
        env.duckdb_path,
        """WITH li AS (SELECT usage_date AS d, provider_type AS p, SUM(net_amount_usd) AS cost
                       FROM stackspend.line_items GROUP BY ALL),
                r AS (SELECT "date" AS d, group_by, provider_type AS p, SUM(cost_usd) AS cost
                      FROM stackspend.daily_rollups GROUP BY ALL)
           SELECT li.d, SUM(li.cost),
               SUM(li.cost) - (SELECT SUM(cost) FROM r WHERE r.d = li.d AND group_by = 'service'),
               SUM(li.cost) - (SELECT SUM(cost) FROM r WHERE r.d = li.d AND group_by = 'category'),
               COUNT(*) FILTER (WHERE li.cost <> (SELECT cost FROM r WHERE r.d = li.d
                                AND group_by = 'provider' AND r.p = li.p))
           FROM li GROUP BY li.d ORDER BY li.d""",
    )
    shown = [
        (d, day.line_items_cost, day.service_diff, day.category_diff, day.providers_differing)
        for d, day in sorted(days.items())
    ]
    assert shown == expected
    assert days[TODAY].providers_differing > 0 and days[TODAY].service_diff != 0


def _days(first: date, last: date) -> list[date]:
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def test_last_synced_comes_from_each_datasets_dlt_loads(env: Env) -> None:
    sync(env, "stackspend", "levelfour")
    data = build(env)
    loads = {
        dataset: rows(
            env.duckdb_path,
            f"SELECT MAX(inserted_at AT TIME ZONE 'UTC'), COUNT(*) FROM {dataset}._dlt_loads"
            " WHERE status = 0",
        )[0]
        for dataset in ("stackspend", "levelfour")
    }
    counts = {
        table: rows(env.duckdb_path, f"SELECT COUNT(*) FROM {table}")[0][0]
        for table in (
            "stackspend.line_items",
            "stackspend.daily_rollups",
            "stackspend.anomalies",
            "levelfour.spending_breakdown",
        )
    }
    assert {f"{s.dataset}.{s.table}": s.rows for s in data.syncs} == counts
    assert all((s.last_load_at, s.loads) == loads[s.dataset] for s in data.syncs)
    through = {s.table: s.data_through for s in data.syncs}
    assert through["line_items"] == through["daily_rollups"] == TODAY.isoformat()
    assert through["spending_breakdown"] == env.levelfour.current_period


def test_the_page_shows_every_figure_to_the_cent(env: Env) -> None:
    sync(env, "stackspend", "levelfour")
    output = env.duckdb_path.with_name("spend.html")
    result = env.cli("report", "--duckdb-path", str(env.duckdb_path), "--output", str(output))
    assert result.code == 0, result.err
    assert f"report: {output}" in result.out
    tables = Tables(output.read_text())
    providers = cents(
        env.duckdb_path,
        """SELECT provider_type, COUNT(*),
               ROUND(COALESCE(SUM(net_amount_usd) FILTER (WHERE net_amount_usd >= 0), 0), 2),
               ROUND(COALESCE(SUM(net_amount_usd) FILTER (WHERE net_amount_usd < 0), 0), 2),
               ROUND(SUM(net_amount_usd), 2) AS net
           FROM stackspend.line_items GROUP BY 1 ORDER BY SUM(net_amount_usd) DESC""",
    )
    total = cents(
        env.duckdb_path,
        """SELECT 'all providers', COUNT(*),
               ROUND(SUM(CASE WHEN net_amount_usd >= 0 THEN net_amount_usd ELSE 0 END), 2),
               ROUND(SUM(CASE WHEN net_amount_usd < 0 THEN net_amount_usd ELSE 0 END), 2),
               ROUND(SUM(net_amount_usd), 2)
           FROM stackspend.line_items""",
    )
    assert tables.body("table-providers") == providers + total
    by_month = cents(
        env.duckdb_path,
        """SELECT ROUND(SUM(cost), 2) FROM levelfour.spending_breakdown
           GROUP BY period ORDER BY period""",
    )
    shown_total = tables.body("table-levelfour")[-1]
    assert shown_total[0] == "all services"
    assert shown_total[1 : 1 + len(by_month)] == tuple(value for (value,) in by_month)
    excess = cents(
        env.duckdb_path,
        """SELECT strftime(detected_date AT TIME ZONE 'UTC', '%Y-%m-%d %H:%M'), provider_type,
               service, ROUND(actual_cost, 2), ROUND(expected_cost, 2),
               ROUND(actual_cost - expected_cost, 2)
           FROM stackspend.anomalies ORDER BY detected_date DESC, id DESC""",
    )
    shown = [
        (r[0], r[1], r[2], r[5], r[6], r[7].lstrip("+")) for r in tables.body("table-anomalies")
    ]
    assert shown == excess


def test_no_figure_is_a_float(env: Env) -> None:
    sync(env, "stackspend", "levelfour")
    data = build(env)
    floats = [value for value in _values(dataclasses.asdict(data)) if isinstance(value, float)]
    assert floats == []
    money = list(_money_fields(data))
    assert len(money) > 500
    assert all(isinstance(value, Decimal) for value in money)


def _values(value: Any) -> list[Any]:
    if isinstance(value, dict):
        return [v for item in value.values() for v in _values(item)]
    if isinstance(value, list | tuple):
        return [v for item in value for v in _values(item)]
    return [value]


def _money_fields(value: Any) -> Iterator[Any]:
    """Every non-null value of a field typed Decimal, in `value` and the dataclasses it holds."""
    if isinstance(value, list):
        for item in value:
            yield from _money_fields(item)
    elif dataclasses.is_dataclass(value):
        for field in dataclasses.fields(value):
            held = getattr(value, field.name)
            if "Decimal" in str(field.type) and held is not None:
                yield held
            else:
                yield from _money_fields(held)


def test_one_vendor_loaded_still_reports_and_says_what_is_missing(env: Env) -> None:
    assert env.sync("stackspend", "--resources", "line_items").code == 0
    env.setenv(DESTINATION__DUCKDB__CREDENTIALS=str(env.duckdb_path))  # as `costsync sync` reads
    output = env.duckdb_path.with_name("one.html")
    result = env.cli("report", "--output", str(output))
    assert result.code == 0, result.err
    assert "not in it: LevelFour: not in this report" in result.out
    assert "not in it: StackSpend daily_rollups: not loaded" in result.out
    page = output.read_text()
    assert "LevelFour: not in this report" in page
    assert "StackSpend anomalies: not loaded" in page
    assert 'data-chart="daily-spend"' in page
    assert 'data-chart="levelfour"' not in page and 'id="table-reconciliation"' not in page


def test_named_datasets_are_read_whatever_their_names(env: Env) -> None:
    for vendor, dataset in (("stackspend", "finops_ss"), ("levelfour", "finops_l4")):
        assert env.sync(vendor, "--dataset", dataset).code == 0
    data = build(env, "finops_l4", "finops_ss")
    assert data.stackspend is not None and data.stackspend.dataset == "finops_ss"
    assert data.levelfour is not None and data.levelfour.dataset == "finops_l4"
    assert data.missing == []
    only = build(env, "finops_l4")
    assert only.stackspend is None
    assert only.missing == ["StackSpend: not in this report (no --dataset holds its tables)"]


def make_duckdb(path: Path, *statements: str) -> Path:
    with duckdb.connect(str(path)) as connection:
        for statement in statements:
            connection.execute(statement)
    return path


@pytest.mark.parametrize(
    ("setup", "flags", "message"),
    [
        ((), ["--duckdb-path", "{tmp}/nothing.duckdb"], "no DuckDB file at {tmp}/nothing.duckdb"),
        (("SELECT 1",), ["--duckdb-path", "{db}"], "no costsync tables in duckdb {db}"),
        (
            ("CREATE SCHEMA stackspend", "CREATE TABLE stackspend.line_items (id TEXT)"),
            ["--duckdb-path", "{db}", "--dataset", "finops"],
            "--dataset: no dataset finops in duckdb {db}",
        ),
        (
            ("CREATE SCHEMA other", "CREATE TABLE other.t (x INT)"),
            ["--duckdb-path", "{db}", "--dataset", "other"],
            "--dataset: dataset other holds no costsync tables",
        ),
        (
            (
                "CREATE SCHEMA a",
                "CREATE TABLE a.line_items (id TEXT)",
                "CREATE SCHEMA b",
                "CREATE TABLE b.anomalies (id TEXT)",
            ),
            ["--duckdb-path", "{db}", "--dataset", "a", "--dataset", "b"],
            "datasets a and b both hold StackSpend tables",
        ),
        (
            (),
            ["--destination", "postgres", "--duckdb-path", "x.duckdb"],
            "--duckdb-path: goes with",
        ),
        ((), ["--destination", "postgres"], "destination.postgres.credentials: are missing"),
        ((), ["--destination", "bigquery"], "invalid choice: 'bigquery'"),
        ((), ["--dataset", " "], "--dataset: must not be empty"),
        (
            ("CREATE SCHEMA stackspend", "CREATE TABLE stackspend.line_items (id TEXT)"),
            ["--duckdb-path", "{db}", "--output", "{tmp}/no/such/dir/r.html"],
            "--output: cannot write {tmp}/no/such/dir/r.html",
        ),
    ],
)
def test_bad_input_exits_2_with_one_line(
    env: Env, tmp_path: Path, setup: tuple[str, ...], flags: list[str], message: str
) -> None:
    database = make_duckdb(tmp_path / "made.duckdb", *setup) if setup else tmp_path / "x"
    values = {"tmp": str(tmp_path), "db": str(database)}
    result = env.cli("report", *(flag.format(**values) for flag in flags))
    assert result.code == 2
    assert message.format(**values) in result.err
    assert len(result.err.strip().splitlines()) == 1
    assert "Traceback" not in result.err


def test_default_duckdb_file_is_costsync_duckdb_in_the_working_directory(
    env: Env, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = env.cli("report")
    assert result.code == 2
    assert f"no DuckDB file at {tmp_path / 'costsync.duckdb'}" in result.err


def test_a_file_another_process_writes_exits_1_with_one_line(env: Env, tmp_path: Path) -> None:
    path = make_duckdb(tmp_path / "busy.duckdb", "CREATE SCHEMA s")
    hold = "import duckdb, sys; c = duckdb.connect(sys.argv[1]); print('open', flush=True); input()"
    with subprocess.Popen(
        [sys.executable, "-c", hold, str(path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    ) as writer:
        assert writer.stdout is not None and writer.stdin is not None
        assert writer.stdout.readline().strip() == b"open"
        result = env.cli("report", "--duckdb-path", str(path))
        writer.stdin.close()
    assert result.code == 1
    assert f"cannot open {path}" in result.err
    assert len(result.err.strip().splitlines()) == 1


def test_demo_report_tells_how_to_install_the_extra_when_missing(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(report, "report_installed", lambda: False)
    line = report.demo_report(str(tmp_path / "costsync_demo.duckdb"))
    assert line.startswith("Spend report: not written (the report extra is not installed)")
    assert "pip install -e '.[report]'" in line
    assert not list(tmp_path.iterdir())


@pytest.mark.postgres
def test_postgres_report_shows_the_same_figures_as_duckdb(
    env: Env, postgres_url: str, pg_datasets: dict[str, str]
) -> None:
    sync(env, "stackspend", "levelfour")
    for vendor, dataset in pg_datasets.items():
        result = env.sync_postgres(vendor, dataset)
        assert result.code == 0, result.err
    on_duckdb = build(env)
    output = env.duckdb_path.with_name("pg.html")
    _, _, on_postgres = report.write_report("postgres", None, list(pg_datasets.values()), output)
    assert on_postgres.where == "postgres 127.0.0.1:5432/test"
    for vendor in ("stackspend", "levelfour"):
        assert _figures(getattr(on_postgres, vendor)) == _figures(getattr(on_duckdb, vendor))
    assert [(s.table, s.rows, s.data_through) for s in on_postgres.syncs] == [
        (s.table, s.rows, s.data_through) for s in on_duckdb.syncs
    ]


def _figures(figures: Any) -> dict[str, Any]:
    """The figures, lists sorted (the warehouses' text collations order ties differently)."""
    found = dataclasses.asdict(figures)
    found.pop("dataset")
    return {
        key: sorted(value, key=_canonical) if isinstance(value, list) else value
        for key, value in found.items()
    }


def _canonical(row: dict[str, Any]) -> str:
    return repr([v.normalize() if isinstance(v, Decimal) else v for v in row.values()])


@pytest.mark.slow
def test_demo_ends_by_writing_the_report_next_to_its_database(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    database = tmp_path / "costsync_demo.duckdb"
    assert cli.run(["demo", "--duckdb-path", str(database)]) == 0
    last_line = capsys.readouterr().out.strip().splitlines()[-1]
    written = tmp_path / "costsync_demo_report.html"
    assert last_line.endswith(f": {written}") and last_line.startswith("Spend report (")
    assert written.stat().st_size > 1_000_000
    # The demo built the dbt models too: the report's reconciliation is dbt's, day by day.
    dbt_days = rows(
        database,
        """SELECT usage_date, SUM(line_item_count), MAX(day_line_items_cost_usd),
               SUM(provider_rollup_cost_usd), MAX(day_service_rollup_cost_usd),
               MAX(day_category_rollup_cost_usd), COUNT(*) FILTER (WHERE provider_diff <> 0),
               MAX(service_diff), MAX(category_diff)
           FROM analytics.stackspend_reconciliation GROUP BY usage_date ORDER BY usage_date""",
    )
    _, _, data = report.write_report("duckdb", str(database), None, tmp_path / "again.html")
    assert data.stackspend is not None and data.stackspend.reconciliation is not None
    shown = [
        (
            day.usage_date,
            day.line_items,
            day.line_items_cost,
            day.provider_rollups_cost,
            day.service_rollups_cost,
            day.category_rollups_cost,
            day.providers_differing,
            day.service_diff,
            day.category_diff,
        )
        for day in data.stackspend.reconciliation
    ]
    assert shown == dbt_days
