"""Workspaces: one pipeline and dataset per workspace, synced one by one or side by side."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta

import pytest

from sandbox.http import Request, Response, SandboxServer
from sandbox.levelfour import LevelFourSandbox
from sandbox.stackspend import LINE_ITEMS_ONLY_KEY, StackSpendSandbox
from tests.conftest import TODAY, Env
from tests.warehouse import LINE_ITEM_FIELDS, DuckDBWarehouse, exact_sum, truth_rows

START = TODAY - timedelta(days=20)
WORKSPACES = ("acme", "globex")


@dataclass
class Workspace:
    """A StackSpend workspace: its own server (its own data) and key."""

    name: str
    api: StackSpendSandbox
    key: str


@dataclass
class Rendezvous:
    """Mounted in front of each workspace's sandbox: a workspace's first request is held
    until every workspace has sent its first one (or `timeout` passes), so a test sees
    for certain whether their syncs were in flight together, whatever the timing."""

    parties: int
    timeout: float = 30.0
    met: set[str] = field(default_factory=set)
    _barrier: threading.Barrier = field(init=False)
    _seen: set[str] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self._barrier = threading.Barrier(self.parties, timeout=self.timeout)

    def gate(self, name: str) -> _Gate:
        """The app to mount ahead of workspace `name`'s sandbox."""
        return _Gate(self, name)

    def arrive(self, name: str) -> None:
        with self._lock:
            first = name not in self._seen
            self._seen.add(name)
        if not first:
            return
        try:
            self._barrier.wait()
        except threading.BrokenBarrierError:
            return
        with self._lock:
            self.met.add(name)


@dataclass
class _Gate:
    rendezvous: Rendezvous
    name: str

    def handle(self, request: Request) -> Response | None:
        self.rendezvous.arrive(self.name)
        return None  # the sandbox behind answers


@pytest.fixture
def workspaces(env: Env) -> Iterator[dict[str, Workspace]]:
    """Two StackSpend workspaces, each on a server of its own, configured as dlt documents."""
    with served_workspaces(env) as found:
        yield found


@contextmanager
def served_workspaces(
    env: Env, first_seed: int = 20, rendezvous: Rendezvous | None = None
) -> Iterator[dict[str, Workspace]]:
    """`WORKSPACES`, each a StackSpend sandbox server of its own (seeds from `first_seed`)
    with its own key, configured in the environment as dlt documents; behind
    `rendezvous`'s gate when given."""
    apps = {
        name: StackSpendSandbox(seed=seed, start_date=START, end_date=TODAY)
        for seed, name in enumerate(WORKSPACES, first_seed)
    }
    servers = {
        name: SandboxServer([rendezvous.gate(name), app] if rendezvous else [app]).start()
        for name, app in apps.items()
    }
    env.setenv(SOURCES__STACKSPEND__WORKSPACES=json.dumps(WORKSPACES))
    found = {}
    for name, app in apps.items():
        key = f"ss_{name}_key"
        app.add_key(key)
        prefix = f"STACKSPEND_{name.upper()}__SOURCES__STACKSPEND__"
        env.setenv(**{f"{prefix}API_KEY": key, f"{prefix}BASE_URL": servers[name].url})
        found[name] = Workspace(name, app, key)
    try:
        yield found
    finally:
        for server in servers.values():
            server.stop()


def assert_lands_exactly(env: Env, workspace: Workspace) -> None:
    dataset = f"stackspend_{workspace.name}"
    warehouse = DuckDBWarehouse(env.duckdb_path, {"stackspend": dataset})
    truth = workspace.api.line_items(START, TODAY)
    loaded = warehouse.sorted_rows("stackspend", "line_items", LINE_ITEM_FIELDS)
    assert loaded == truth_rows(truth, LINE_ITEM_FIELDS)
    table = warehouse.table("stackspend", "line_items")
    total = warehouse.rows(f"SELECT SUM(net_amount_usd), COUNT(DISTINCT id) FROM {table}")
    assert total[0] == (exact_sum([r["net_amount_usd"] for r in truth]), len(truth))


def test_all_workspaces_land_side_by_side_each_in_its_own_dataset(env: Env) -> None:
    rendezvous = Rendezvous(parties=len(WORKSPACES))
    with served_workspaces(env, rendezvous=rendezvous) as workspaces:
        result = env.sync("stackspend", "--all-workspaces")
    assert result.code == 0, result.err
    for workspace in workspaces.values():
        assert_lands_exactly(env, workspace)
        assert f"stackspend_{workspace.name} → duckdb" in result.out
        assert workspace.api.request_count() > 0
    # side by side: each workspace's first request waited for the other's to arrive
    assert rendezvous.met == set(WORKSPACES)
    status = env.cli("status", "--pipelines-dir", str(env.pipelines_dir))
    assert "stackspend_acme: last successful sync" in status.out
    assert "stackspend_globex: last successful sync" in status.out


def test_one_workspace_failing_never_stops_the_other(
    env: Env, workspaces: dict[str, Workspace]
) -> None:
    assert env.sync("stackspend", "--all-workspaces").code == 0
    workspaces["acme"].api.revoke_key(workspaces["acme"].key)
    workspaces["globex"].api.restate_last(2)
    result = env.sync("stackspend", "--all-workspaces")
    assert result.code == 1
    errors = result.err.strip().splitlines()
    assert len(errors) == 1 and errors[0].startswith("costsync: error: stackspend_acme:")
    assert "revoked" in errors[0]
    assert "STACKSPEND_ACME__SOURCES__STACKSPEND__API_KEY" in errors[0]
    assert_lands_exactly(env, workspaces["globex"])  # its restatement landed


def test_one_workspace_syncs_alone_with_workspace(
    env: Env, workspaces: dict[str, Workspace]
) -> None:
    result = env.sync("stackspend", "--workspace", "globex")
    assert result.code == 0, result.err
    assert_lands_exactly(env, workspaces["globex"])
    assert workspaces["acme"].api.request_count() == 0


def test_a_workspace_falls_back_to_the_vendor_section_for_what_it_leaves_unset(
    env: Env, workspaces: dict[str, Workspace]
) -> None:
    env.setenv(SOURCES__STACKSPEND__LOOKBACK_DAYS="1")  # shared by both workspaces
    assert env.sync("stackspend", "--workspace", "acme").code == 0
    workspaces["acme"].api.reset_requests()
    assert env.sync("stackspend", "--workspace", "acme").code == 0
    starts = {
        r.params["start_date"][0] for r in workspaces["acme"].api.requests if "line-items" in r.path
    }
    assert starts == {TODAY.isoformat()}


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        ([], "lists acme, globex: name one with --workspace NAME"),
        (["--workspace", "initech"], "lists no workspace 'initech'"),
        (["--workspace", "Acme"], "--workspace"),
        (["--all-workspaces", "--dataset", "x"], "--dataset goes with one workspace"),
        (["--all-workspaces", "--workspace", "acme"], "not allowed with argument"),
    ],
)
def test_bad_workspace_choices_exit_2_before_any_request(
    env: Env, workspaces: dict[str, Workspace], flags: list[str], message: str
) -> None:
    result = env.sync("stackspend", *flags)
    assert result.code == 2
    assert message in result.err and len(result.err.strip().splitlines()) == 1
    assert all(w.api.request_count() == 0 for w in workspaces.values())


def test_a_workspace_without_its_key_exits_2_before_any_workspace_sends_a_request(
    env: Env, workspaces: dict[str, Workspace]
) -> None:
    env.monkeypatch.delenv("SOURCES__STACKSPEND__API_KEY")
    env.monkeypatch.delenv("STACKSPEND_GLOBEX__SOURCES__STACKSPEND__API_KEY")
    result = env.sync("stackspend", "--all-workspaces")
    assert result.code == 2
    assert "api_key of workspace globex: is missing" in result.err
    assert "STACKSPEND_GLOBEX__SOURCES__STACKSPEND__API_KEY" in result.err
    assert all(w.api.request_count() == 0 for w in workspaces.values())


def test_check_says_which_resources_each_key_can_read(
    env: Env, workspaces: dict[str, Workspace]
) -> None:
    env.setenv(STACKSPEND_GLOBEX__SOURCES__STACKSPEND__API_KEY=LINE_ITEMS_ONLY_KEY)
    result = env.cli("check", "stackspend")
    assert result.code == 1
    lines = dict(line.split(": ", 1) for line in result.out.strip().splitlines())
    assert "NOT" not in lines["stackspend_acme"]
    assert "line_items readable" in lines["stackspend_globex"]
    assert (
        "anomalies NOT readable (the key lacks scope anomalies:read)" in lines["stackspend_globex"]
    )
    assert all(w.api.request_count() <= 3 for w in workspaces.values())
    alone = env.cli("check", "stackspend", "--workspace", "acme")
    assert alone.code == 0 and "stackspend_globex" not in alone.out


def test_levelfour_workspaces_land_in_their_datasets(env: Env) -> None:
    apps = {name: LevelFourSandbox(seed=seed) for seed, name in enumerate(WORKSPACES, 30)}
    with SandboxServer([apps["acme"]]) as acme, SandboxServer([apps["globex"]]) as globex:
        env.setenv(SOURCES__LEVELFOUR__WORKSPACES='["acme", "globex"]')
        for name, server in (("acme", acme), ("globex", globex)):
            env.setenv(**{f"LEVELFOUR_{name.upper()}__SOURCES__LEVELFOUR__BASE_URL": server.url})
        result = env.sync("levelfour", "--all-workspaces")
        assert result.code == 0, result.err
    for name, app in apps.items():
        warehouse = DuckDBWarehouse(env.duckdb_path, {"levelfour": f"levelfour_{name}"})
        table = warehouse.table("levelfour", "spending_breakdown")
        periods = [p for (p,) in warehouse.rows(f"SELECT DISTINCT period FROM {table}")]
        expected = [item for p in periods for item in app.breakdown(p)]
        assert warehouse.rows(f"SELECT SUM(cost) FROM {table}")[0][0] == exact_sum(
            [item["cost"] for item in expected]
        )
