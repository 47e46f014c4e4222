"""The Airflow DAG `costsync` (pipelines/airflow_dag.py), parsed from a dags folder and run
with `dag.test()` against the sandbox APIs.

Runs in `.venv-airflow` (`make test-airflow`); Airflow is imported only inside the tests,
so `make test` in `.venv` collects this file and deselects it (`-m "not airflow"`).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from unittest import mock

import pytest

from sandbox.stackspend import LINE_ITEMS_PATH
from tests import test_workspaces
from tests.conftest import TODAY, Env
from tests.test_workspaces import Workspace, assert_lands_exactly
from tests.warehouse import (
    LINE_ITEM_FIELDS,
    DuckDBWarehouse,
    PostgresWarehouse,
    exact_sum,
    truth_rows,
)

pytestmark = [
    pytest.mark.airflow,
    # dlt's Airflow config provider reads Airflow Variables the pre-3.0 way
    pytest.mark.filterwarnings("ignore:Using Variable.get from `airflow.models`"),
    pytest.mark.filterwarnings("ignore:The `airflow.operators.python.get_current_context`"),
]

DAG_FILE = Path(__file__).parents[1] / "pipelines" / "airflow_dag.py"

# Two StackSpend workspaces, acme and globex, each on a sandbox server of its own.
workspaces = test_workspaces.workspaces


@pytest.fixture(scope="session")
def airflow_dags(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """An Airflow of the tests' own: home, SQLite metadata database and a dags folder
    holding the DAG file, in a temporary folder. Yields the dags folder."""
    home = tmp_path_factory.mktemp("airflow_home")
    dags = home / "dags"
    dags.mkdir()
    (dags / "costsync_dag.py").symlink_to(DAG_FILE)
    settings = {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
    }
    with pytest.MonkeyPatch.context() as patch:
        for name, value in settings.items():
            patch.setenv(name, value)
        airflow = Path(sys.executable).with_name("airflow")
        subprocess.run([str(airflow), "db", "migrate"], check=True, capture_output=True)
        yield dags


@pytest.fixture
def parse(airflow_dags: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A function parsing the dags folder as Airflow does and returning the DAG `costsync`,
    after checking the folder imported without errors. dlt's task groups set dlt's folders in the
    environment and make their working folders in the temp folder: both stay this test's."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))

    def parsed() -> Any:
        from airflow.dag_processing.dagbag import DagBag

        bag = DagBag(dag_folder=str(airflow_dags))
        assert bag.import_errors == {}
        return bag.dags["costsync"]

    with mock.patch.dict(os.environ):
        yield parsed


def run(dag: Any) -> dict[str, str]:
    """`dag.test()`: one DAG run, every task in this process; the run's state (key "run")
    and each task's."""
    for task in dag.tasks:
        task.retry_delay = timedelta(seconds=0)  # a retried task runs again at once
    dag_run = dag.test()
    return {"run": dag_run.state, **{ti.task_id: ti.state for ti in dag_run.get_task_instances()}}


def test_the_dag_parses_into_one_group_per_vendor_without_keys_or_workspaces(parse: Any) -> None:
    from dlt.helpers.airflow_helper import PipelineTasksGroup

    dag = parse()
    groups = {name: g for name, g in dag.task_group_dict.items() if name}
    assert set(groups) == {"stackspend", "levelfour"}
    assert all(isinstance(group, PipelineTasksGroup) for group in groups.values())
    assert set(dag.task_ids) == {"stackspend.sync", "levelfour.sync"}
    assert dag.schedule == "@daily" and not dag.catchup and dag.max_active_runs == 1
    assert all(task.retries == 2 for task in dag.tasks)


def test_the_dag_has_one_group_per_workspace_each_its_own_pipeline(
    parse: Any, env: Env, airflow_dags: Path
) -> None:
    env.setenv(SOURCES__STACKSPEND__WORKSPACES='["acme", "globex"]')
    config = airflow_dags / ".dlt" / "config.toml"  # dlt's project folder is the dags folder
    config.parent.mkdir(exist_ok=True)
    config.write_text('[sources.levelfour]\nworkspaces = ["acme"]\n')
    try:
        dag = parse()
    finally:
        config.unlink()
    pipelines = {name for name in dag.task_group_dict if name}
    assert pipelines == {"stackspend_acme", "stackspend_globex", "levelfour_acme"}
    assert set(dag.task_ids) == {f"{name}.sync" for name in pipelines}
    assert env.stackspend.request_count() == 0 and env.levelfour.request_count() == 0


def test_a_run_lands_every_workspace_in_its_own_dataset_and_keeps_its_state_there(
    parse: Any, env: Env, workspaces: dict[str, Workspace]
) -> None:
    env.setenv(DESTINATION__DUCKDB__CREDENTIALS=str(env.duckdb_path))
    dag = parse()
    states = run(dag)
    assert states == {
        "run": "success",
        "stackspend_acme.sync": "success",
        "stackspend_globex.sync": "success",
        "levelfour.sync": "success",
    }
    for workspace in workspaces.values():
        assert_lands_exactly(env, workspace)
    assert_levelfour_lands(env)

    # The next run starts from each workspace's state, restored from its dataset (every
    # run's working folder is removed after it): acme re-reads its lookback (today) only,
    # globex also the day it restated before that, which its verification finds.
    env.setenv(SOURCES__STACKSPEND__LOOKBACK_DAYS="1")
    restated = workspaces["globex"].api.restate_last(2)
    for workspace in workspaces.values():
        workspace.api.reset_requests()
    assert set(run(dag).values()) == {"success"}
    assert line_item_starts(workspaces["acme"]) == {TODAY.isoformat()}
    assert line_item_starts(workspaces["globex"]) == {day.isoformat() for day in restated}
    for workspace in workspaces.values():
        assert_lands_exactly(env, workspace)


def test_a_revoked_key_fails_only_its_groups_task_at_once_with_one_line(
    parse: Any, env: Env, workspaces: dict[str, Workspace]
) -> None:
    from airflow.sdk.exceptions import AirflowFailException

    env.setenv(DESTINATION__DUCKDB__CREDENTIALS=str(env.duckdb_path))
    workspaces["acme"].api.revoke_key(workspaces["acme"].key)
    dag = parse()
    states = run(dag)
    assert states == {
        "run": "failed",
        "stackspend_acme.sync": "failed",
        "stackspend_globex.sync": "success",
        "levelfour.sync": "success",
    }
    assert workspaces["acme"].api.request_count() == 1  # refused, not retried
    assert_lands_exactly(env, workspaces["globex"])
    with pytest.raises(AirflowFailException) as failure:
        dag.task_dict["stackspend_acme.sync"].python_callable()
    message = str(failure.value)
    assert "revoked" in message and "STACKSPEND_ACME__SOURCES__STACKSPEND__API_KEY" in message
    assert "\n" not in message and workspaces["acme"].key not in message


def test_a_missing_key_fails_its_task_before_any_request(
    parse: Any, env: Env, workspaces: dict[str, Workspace]
) -> None:
    from airflow.sdk.exceptions import AirflowFailException

    env.monkeypatch.delenv("SOURCES__STACKSPEND__API_KEY")
    env.monkeypatch.delenv("STACKSPEND_GLOBEX__SOURCES__STACKSPEND__API_KEY")
    dag = parse()
    with pytest.raises(AirflowFailException) as failure:
        dag.task_dict["stackspend_globex.sync"].python_callable()
    assert str(failure.value) == (
        "sources.stackspend.api_key of workspace globex: is missing: set"
        " STACKSPEND_GLOBEX__SOURCES__STACKSPEND__API_KEY or add it to"
        " [stackspend_globex.sources.stackspend] in .dlt/secrets.toml"
    )
    assert workspaces["globex"].api.request_count() == 0


def test_keys_can_live_in_the_airflow_variable_dlt_reads(
    parse: Any, env: Env, workspaces: dict[str, Workspace]
) -> None:
    env.setenv(DESTINATION__DUCKDB__CREDENTIALS=str(env.duckdb_path))
    env.monkeypatch.delenv("SOURCES__STACKSPEND__API_KEY")
    env.monkeypatch.delenv("STACKSPEND_GLOBEX__SOURCES__STACKSPEND__API_KEY")
    secrets = f'[stackspend_globex.sources.stackspend]\napi_key = "{workspaces["globex"].key}"\n'
    env.setenv(AIRFLOW_VAR_DLT_SECRETS_TOML=secrets)  # the Variable dlt_secrets_toml
    dag = parse()
    dag.task_dict["stackspend_globex.sync"].python_callable()
    assert_lands_exactly(env, workspaces["globex"])


def test_a_dataset_another_sync_holds_fails_the_task_for_a_retry(
    parse: Any, env: Env, workspaces: dict[str, Workspace]
) -> None:
    from airflow.sdk.exceptions import AirflowFailException

    from pipelines.assembly import prepare

    env.setenv(DESTINATION__DUCKDB__CREDENTIALS=str(env.duckdb_path))
    dag = parse()
    holder = prepare("stackspend", duckdb_path=str(env.duckdb_path), workspace="acme")
    with holder.session(), pytest.raises(RuntimeError) as failure:
        dag.task_dict["stackspend_acme.sync"].python_callable()
    # the DAG file's own SyncFailedError (Airflow imports the file under a name of its own)
    assert type(failure.value).__name__ == "SyncFailedError"
    assert not isinstance(failure.value, AirflowFailException)
    assert "another sync is loading dataset 'stackspend_acme'" in str(failure.value)
    assert workspaces["acme"].api.request_count() == 0


@pytest.mark.postgres
def test_destination_type_postgres_lands_there(parse: Any, env: Env, postgres_url: str) -> None:
    workspace = f"t{uuid.uuid4().hex[:10]}"
    dataset = f"stackspend_{workspace}"
    env.setenv(
        SOURCES__STACKSPEND__WORKSPACES=f'["{workspace}"]',
        DESTINATION_TYPE="postgres",
        DESTINATION__POSTGRES__CREDENTIALS=postgres_url,
    )
    dag = parse()
    try:
        rows = dag.task_dict[f"{dataset}.sync"].python_callable()
        warehouse = PostgresWarehouse(postgres_url, {"stackspend": dataset})
        truth = env.stackspend.line_items(test_workspaces.START, TODAY)
        loaded = warehouse.sorted_rows("stackspend", "line_items", LINE_ITEM_FIELDS)
        assert loaded == truth_rows(truth, LINE_ITEM_FIELDS) and rows["line_items"] == len(truth)
    finally:
        drop_schemas(postgres_url, dataset)


def drop_schemas(url: str, prefix: str) -> None:
    """Drop the Postgres schemas named `prefix...` (a dataset and its staging dataset)."""
    import psycopg2

    with psycopg2.connect(url) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT nspname FROM pg_namespace WHERE nspname LIKE %s", (f"{prefix}%",))
        for (schema,) in cursor.fetchall():
            cursor.execute(f'DROP SCHEMA "{schema}" CASCADE')


def line_item_starts(workspace: Workspace) -> set[str]:
    """The first days of the line-item windows a workspace's server was asked for."""
    requests = workspace.api.requests
    return {r.params["start_date"][0] for r in requests if r.path == LINE_ITEMS_PATH}


def assert_levelfour_lands(env: Env) -> None:
    warehouse = DuckDBWarehouse(env.duckdb_path, {"levelfour": "levelfour"})
    table = warehouse.table("levelfour", "spending_breakdown")
    periods = [p for (p,) in warehouse.rows(f"SELECT DISTINCT period FROM {table}")]
    expected = [item for period in periods for item in env.levelfour.breakdown(period)]
    assert periods and warehouse.rows(f"SELECT SUM(cost), COUNT(*) FROM {table}")[0] == (
        exact_sum([item["cost"] for item in expected]),
        len(expected),
    )
