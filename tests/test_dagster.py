"""Dagster: one dlt asset group per vendor and workspace, materialized as costsync syncs."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from dagster import AssetKey, Definitions, ExecuteInProcessResult, materialize

from pipelines.assembly import prepare
from pipelines.destinations import dataset_lock
from sources.shared.errors import ConfigError
from tests.conftest import TODAY, Env
from tests.levelfour.test_sync import SYNCED
from tests.test_workspaces import (
    START,
    Workspace,
    assert_lands_exactly,
    served_workspaces,
)
from tests.warehouse import (
    BREAKDOWN_FIELDS,
    DuckDBWarehouse,
    PostgresWarehouse,
    table_exists,
    truth_rows,
)

REPOSITORY = Path(__file__).resolve().parent.parent
STACKSPEND_TABLES = ("line_items", "daily_rollups", "anomalies")


def definitions() -> Definitions:
    """The definitions as Dagster loads them, from this test's configuration."""
    from pipelines.dagster_definitions import build_definitions

    return build_definitions()


def keys(*pipelines: str) -> set[str]:
    tables = {"stackspend": STACKSPEND_TABLES, "levelfour": ("spending_breakdown",)}
    return {f"{p}/{t}" for p in pipelines for t in tables[p.split("_")[0]]}


def asset_keys(defs: Definitions) -> set[str]:
    return {key.to_user_string() for key in defs.resolve_asset_graph().get_all_asset_keys()}


def run_all(defs: Definitions) -> ExecuteInProcessResult:
    """The definitions' job (every asset), in this process."""
    return defs.resolve_job_def("costsync").execute_in_process(raise_on_error=False)


def failures(result: ExecuteInProcessResult) -> dict[str, str]:
    """Each failed step's error message."""
    return {
        event.step_key or "": event.step_failure_data.error.message.strip()
        for event in result.get_step_failure_events()
        if event.step_failure_data.error is not None
    }


def materialized(result: ExecuteInProcessResult) -> dict[str, dict[str, object]]:
    """Each materialized asset's metadata values."""
    return {
        event.asset_key.to_user_string(): {
            name: value.value for name, value in event.materialization.metadata.items()
        }
        for event in result.get_asset_materialization_events()
        if event.asset_key is not None
    }


@pytest.fixture(autouse=True)
def dagster_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A Dagster instance folder of the test's own, telemetry off."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("DAGSTER_DISABLE_TELEMETRY", "1")
    return home


@pytest.fixture
def warehouse_env(env: Env) -> Env:
    """The sandbox, with the definitions' DuckDB file set the way the contract says."""
    env.setenv(DESTINATION__DUCKDB__CREDENTIALS=str(env.duckdb_path))
    return env


@pytest.fixture
def workspaces(warehouse_env: Env) -> Iterator[dict[str, Workspace]]:
    """Two StackSpend workspaces, each on a server of its own with its own key."""
    with served_workspaces(warehouse_env, first_seed=40) as found:
        yield found


def assert_levelfour_lands_exactly(env: Env, dataset: str = "levelfour") -> None:
    warehouse = DuckDBWarehouse(env.duckdb_path, {"levelfour": dataset})
    truth = [item for period in SYNCED for item in env.levelfour.breakdown(period)]
    loaded = warehouse.sorted_rows("levelfour", "spending_breakdown", BREAKDOWN_FIELDS)
    assert loaded == truth_rows(truth, BREAKDOWN_FIELDS)


def test_without_workspaces_each_vendor_is_one_group_with_a_daily_job(warehouse_env: Env) -> None:
    defs = definitions()
    assert asset_keys(defs) == keys("stackspend", "levelfour")
    graph = defs.resolve_asset_graph()
    assert graph.get(AssetKey(["stackspend", "line_items"])).group_name == "stackspend"
    schedule = defs.resolve_schedule_def("costsync_daily")
    assert (schedule.cron_schedule, schedule.execution_timezone) == ("0 6 * * *", "UTC")
    assert schedule.job_name == "costsync"
    job = defs.resolve_job_def("costsync")
    assert {key.to_user_string() for key in job.asset_layer.selected_asset_keys} == asset_keys(defs)
    assert warehouse_env.stackspend.request_count() == 0


def test_each_workspace_is_its_own_group_and_pipeline_and_loads_without_any_key(
    warehouse_env: Env, workspaces: dict[str, Workspace]
) -> None:
    for name in ("SOURCES__STACKSPEND__API_KEY", "STACKSPEND_ACME__SOURCES__STACKSPEND__API_KEY"):
        warehouse_env.monkeypatch.delenv(name)
    defs = definitions()
    assert asset_keys(defs) == keys("stackspend_acme", "stackspend_globex", "levelfour")
    ops = [node.name for node in defs.resolve_job_def("costsync").graph.node_defs]
    assert sorted(ops) == ["levelfour", "stackspend_acme", "stackspend_globex"]
    graph = defs.resolve_asset_graph()
    for op in ops:
        groups = {graph.get(k).group_name for k in graph.get_all_asset_keys() if k.path[0] == op}
        assert groups == {op}
    assert all(w.api.request_count() == 0 for w in workspaces.values())


def test_a_destination_other_than_costsyncs_is_refused_when_loading(env: Env) -> None:
    env.setenv(DESTINATION_TYPE="snowflake")
    with pytest.raises(ConfigError, match="destination_type: must be one of duckdb"):
        definitions()


def test_materializing_every_asset_lands_each_workspace_in_its_dataset_exactly(
    warehouse_env: Env, workspaces: dict[str, Workspace]
) -> None:
    env = warehouse_env
    result = run_all(definitions())
    assert result.success, failures(result)
    for workspace in workspaces.values():
        assert_lands_exactly(env, workspace)
    assert_levelfour_lands_exactly(env)
    found = materialized(result)
    assert set(found) == keys("stackspend_acme", "stackspend_globex", "levelfour")
    acme = found["stackspend_acme/line_items"]
    assert acme["rows_loaded"] == len(workspaces["acme"].api.line_items(START, TODAY))
    assert acme["dagster/table_name"] == "stackspend_acme.line_items"
    assert acme["requests"] == workspaces["acme"].api.request_count()
    assert str(acme["position"]).startswith(f"synced {START.isoformat()}..")
    status = env.cli("status")
    for name in ("stackspend_acme", "stackspend_globex", "levelfour"):
        assert f"{name}: last successful sync" in status.out


def test_a_revoked_key_fails_its_workspace_while_the_other_lands_its_restatement(
    warehouse_env: Env, workspaces: dict[str, Workspace]
) -> None:
    env = warehouse_env
    assert run_all(definitions()).success
    workspaces["acme"].api.revoke_key(workspaces["acme"].key)
    restated = workspaces["globex"].api.restate_last(2)
    result = run_all(definitions())
    assert not result.success
    failed = failures(result)
    assert set(failed) == {"stackspend_acme"}
    message = failed["stackspend_acme"]
    assert len(message.splitlines()) == 1
    assert "stackspend_acme: " in message and "revoked" in message
    assert "STACKSPEND_ACME__SOURCES__STACKSPEND__API_KEY" in message
    assert workspaces["acme"].key not in message
    assert_lands_exactly(env, workspaces["globex"])  # its restatement landed
    verification = materialized(result)["stackspend_globex/line_items"]["verification"]
    days = ", ".join(day.isoformat() for day in restated)
    assert f"{len(restated)} changed ({days}), {len(restated)} re-read" in str(verification)


def test_a_missing_key_fails_its_workspace_when_materializing(
    warehouse_env: Env, workspaces: dict[str, Workspace]
) -> None:
    env = warehouse_env
    env.monkeypatch.delenv("SOURCES__STACKSPEND__API_KEY")
    env.monkeypatch.delenv("STACKSPEND_GLOBEX__SOURCES__STACKSPEND__API_KEY")
    result = run_all(definitions())
    message = failures(result)["stackspend_globex"]
    assert "api_key of workspace globex: is missing" in message
    assert "set STACKSPEND_GLOBEX__SOURCES__STACKSPEND__API_KEY" in message
    assert workspaces["globex"].api.request_count() == 0
    assert_lands_exactly(env, workspaces["acme"])


def test_a_selected_table_materializes_alone(
    warehouse_env: Env, workspaces: dict[str, Workspace]
) -> None:
    env = warehouse_env
    defs = definitions()
    selected = AssetKey(["stackspend_acme", "line_items"])
    result = materialize(list(defs.assets or []), selection=[selected])
    assert set(materialized(result)) == {"stackspend_acme/line_items"}
    assert_lands_exactly(env, workspaces["acme"])
    tables = DuckDBWarehouse(env.duckdb_path, {}).rows(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'stackspend_acme'"
        " AND table_name NOT LIKE '_dlt%'"
    )
    assert tables == [("line_items",)]
    assert workspaces["globex"].api.request_count() == 0


def test_a_dataset_another_sync_is_loading_fails_at_once_and_changes_nothing(
    warehouse_env: Env, workspaces: dict[str, Workspace]
) -> None:
    defs = definitions()
    acme = prepare("stackspend", workspace="acme")
    with dataset_lock(acme.pipeline, acme.duckdb_path):
        result = defs.resolve_job_def("costsync").execute_in_process(
            asset_selection=[AssetKey(["stackspend_acme", "line_items"])], raise_on_error=False
        )
    message = failures(result)["stackspend_acme"]
    assert "another sync is loading dataset 'stackspend_acme'" in message
    assert "nothing was done" in message
    assert workspaces["acme"].api.request_count() == 0
    assert not table_exists(warehouse_env.duckdb_path, "stackspend_acme.line_items")


@pytest.mark.postgres
def test_postgres_destination_from_costsync_destination(
    warehouse_env: Env, postgres_url: str
) -> None:
    env = warehouse_env
    workspace = f"t{uuid.uuid4().hex[:10]}"
    env.setenv(
        DESTINATION_TYPE="postgres",
        DESTINATION__POSTGRES__CREDENTIALS=postgres_url,
        SOURCES__LEVELFOUR__WORKSPACES=f'["{workspace}"]',
    )
    dataset = f"levelfour_{workspace}"
    try:
        result = (
            definitions()
            .resolve_job_def("costsync")
            .execute_in_process(asset_selection=[AssetKey([dataset, "spending_breakdown"])])
        )
        assert result.success
        warehouse = PostgresWarehouse(postgres_url, {"levelfour": dataset})
        truth = [item for period in SYNCED for item in env.levelfour.breakdown(period)]
        loaded = warehouse.sorted_rows("levelfour", "spending_breakdown", BREAKDOWN_FIELDS)
        assert loaded == truth_rows(truth, BREAKDOWN_FIELDS)
    finally:
        import psycopg2

        with psycopg2.connect(postgres_url) as connection, connection.cursor() as cursor:
            cursor.execute(f'DROP SCHEMA IF EXISTS "{dataset}" CASCADE')
            cursor.execute(f'DROP SCHEMA IF EXISTS "{dataset}_staging" CASCADE')


def test_the_materialize_command_loads_every_vendor_and_workspace(
    warehouse_env: Env, workspaces: dict[str, Workspace]
) -> None:
    env = warehouse_env
    command = [
        str(Path(sys.executable).parent / "dagster"),
        *("asset", "materialize", "-f", "pipelines/dagster_definitions.py", "--select", "*"),
    ]
    done = subprocess.run(  # DAGSTER_HOME: the test's own (dagster_home)
        command,
        cwd=REPOSITORY,
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    for workspace in workspaces.values():
        assert_lands_exactly(env, workspace)
    assert_levelfour_lands_exactly(env)
    assert 'RUN_SUCCESS - Finished execution of run for "__ASSET_JOB"' in done.stderr
