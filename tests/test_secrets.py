"""A recognizable key, run through success and every error path, is never written anywhere."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from tests.conftest import CliResult, Env

STACKSPEND_KEY = "ss_SECRET_canary_7f3a9b2c"
LEVELFOUR_KEY = "l4_test_SECRET_canary_5e1d8c"


def leaks(env: Env, outputs: list[CliResult], caplog: pytest.LogCaptureFixture) -> list[str]:
    """Every place the canary keys turn up: CLI output, logs, files."""
    found = []
    for result in outputs:
        for key in (STACKSPEND_KEY, LEVELFOUR_KEY):
            if key in result.out or key in result.err:
                found.append("cli output")
    for key in (STACKSPEND_KEY, LEVELFOUR_KEY):
        if key in caplog.text:
            found.append("log records")
    for path in Path(env.pipelines_dir).rglob("*"):
        if path.is_file() and _contains(path):
            found.append(str(path))
    if env.duckdb_path.exists() and _contains(env.duckdb_path):
        found.append(str(env.duckdb_path))
    return found


def _contains(path: Path) -> bool:
    data = path.read_bytes()
    return any(key.encode() in data for key in (STACKSPEND_KEY, LEVELFOUR_KEY))


def test_keys_never_reach_output_logs_state_traces_or_warehouse(
    env: Env, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    env.stackspend.add_key(STACKSPEND_KEY)
    env.levelfour.add_key(LEVELFOUR_KEY)
    env.setenv(
        SOURCES__STACKSPEND__API_KEY=STACKSPEND_KEY,
        SOURCES__LEVELFOUR__API_KEY=LEVELFOUR_KEY,
        SOURCES__STACKSPEND__MAX_ATTEMPTS="2",
        SOURCES__LEVELFOUR__MAX_ATTEMPTS="2",
    )
    outputs = [env.sync("stackspend"), env.sync("levelfour")]
    assert [r.code for r in outputs] == [0, 0]
    # retries run out: 500s, then bodies that are not JSON
    env.stackspend.fail_next(5, status=500)
    env.levelfour.fail_next(5, status=503)
    outputs += [env.sync("stackspend"), env.sync("levelfour")]
    env.stackspend.clear_faults()
    env.levelfour.clear_faults()
    env.stackspend.configure_faults(invalid_json_rate=1.0)
    outputs.append(env.sync("stackspend"))
    env.stackspend.clear_faults()
    # refused keys
    env.stackspend.revoke_key(STACKSPEND_KEY)
    env.levelfour.revoke_key(LEVELFOUR_KEY)
    outputs += [
        env.sync("stackspend"),
        env.sync("levelfour"),
        env.cli("status", "--pipelines-dir", str(env.pipelines_dir)),
    ]
    assert [r.code for r in outputs[2:-1]] == [1, 1, 1, 1, 1]
    assert leaks(env, outputs, caplog) == []
    planted = env.pipelines_dir / "stackspend" / "planted.txt"
    planted.write_text(STACKSPEND_KEY)  # the search itself finds a leak where there is one
    assert leaks(env, outputs, caplog) == [str(planted)]


def test_a_key_with_a_newline_is_refused_without_echoing_it(env: Env) -> None:
    env.setenv(SOURCES__STACKSPEND__API_KEY=STACKSPEND_KEY + "\n")
    result = env.sync()
    assert result.code == 2
    assert STACKSPEND_KEY not in result.err
