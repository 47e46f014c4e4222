"""A local BigQuery for the tests: bqemulator on loopback, and a token endpoint for its keys.

bqemulator speaks BigQuery's REST API over DuckDB; costsync reaches it through
`BIGQUERY_EMULATOR_HOST`, which google-cloud-bigquery honours. It runs from its
own virtualenv (`.venv-bqemulator`, built by `make .venv-bqemulator/.installed`
from `tests/bqemulator-requirements.txt`): it is a test tool, and its DuckDB is
pinned to the spatial extension it loads at start. The extension is installed
into `.venv-bqemulator/home/.duckdb/extensions` (DuckDB's extension folder is
`$HOME/.duckdb/extensions`; the emulator runs with that HOME), so nothing is
fetched from the network and nothing is written to the user's home.

A service-account key is real enough for google-auth: it signs a JWT and posts
it to the key's `token_uri`, here a loopback endpoint that grants any request
a token. The emulator accepts any token.

    .venv/bin/python -m tests.bigquery_emulator

serves both until interrupted and prints the exports that point costsync (and
dbt's `bigquery` target) at them.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from sandbox.http import Request, Response, SandboxServer

ROOT = Path(__file__).parent.parent
EMULATOR_VENV = ROOT / ".venv-bqemulator"
EMULATOR = EMULATOR_VENV / "bin" / "bqemulator"
EMULATOR_HOME = EMULATOR_VENV / "home"
PROJECT = "costsync-test"
START_TIMEOUT_SECONDS = 60
_LISTENING = re.compile(r'"port": (\d+), "event": "(rest|grpc)\.listen"')


class TokenEndpoint:
    """An OAuth token endpoint that grants every request an hour-long access token."""

    def handle(self, request: Request) -> Response | None:
        """Answer any POST (google-auth's signed JWT grant) with a token."""
        if request.method != "POST":
            return None
        return Response.json(200, {"access_token": "emulator", "expires_in": 3600})


@dataclass(frozen=True)
class BigQueryEmulator:
    """A running emulator: its REST endpoint and a service-account key that works with it."""

    url: str
    project: str
    service_account: dict[str, str]
    log: Path

    def environment(self) -> dict[str, str]:
        """What costsync (dlt's BigQuery destination) needs to load into the emulator."""
        return {
            "BIGQUERY_EMULATOR_HOST": self.url,
            "DESTINATION__BIGQUERY__CREDENTIALS": json.dumps(self.service_account),
            # the emulator does not gunzip load files (dlt gzips its JSONL state rows)
            "NORMALIZE__DATA_WRITER__DISABLE_COMPRESSION": "true",
        }

    def client(self) -> Any:
        """A google-cloud-bigquery client on the emulator."""
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import bigquery

        return bigquery.Client(
            project=self.project,
            credentials=AnonymousCredentials(),
            client_options={"api_endpoint": self.url},
        )


def emulator_installed() -> bool:
    """Whether `make .venv-bqemulator/.installed` has built the emulator's virtualenv."""
    return EMULATOR.exists() and (EMULATOR_VENV / ".installed").exists()


def service_account_key(project: str, token_uri: str) -> dict[str, str]:
    """A service-account key as Google issues it, with a fresh RSA key and `token_uri`."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return {
        "type": "service_account",
        "project_id": project,
        "private_key_id": "costsync-test",
        "private_key": pem,
        "client_email": f"loader@{project}.iam.gserviceaccount.com",
        "client_id": "1",
        "token_uri": token_uri,
    }


@contextmanager
def running_emulator(work_dir: Path) -> Iterator[BigQueryEmulator]:
    """Start the token endpoint and the emulator on free loopback ports; stop both after.

    The emulator keeps its data in memory and logs (JSON lines) to `work_dir/bqemulator.log`.
    """
    log = work_dir / "bqemulator.log"
    environment = {k: v for k, v in os.environ.items() if not k.startswith("BQEMU_")}
    # DuckDB finds the spatial extension under $HOME; the avro one is optional and
    # would be fetched from the network, so it is left off.
    environment.update(HOME=str(EMULATOR_HOME), BQEMU_ENABLE_FORMAT_EXTENSIONS="false")
    command = [
        str(EMULATOR),
        "start",
        "--rest-host",
        "127.0.0.1",
        "--grpc-host",
        "127.0.0.1",
        "--rest-port",
        "0",
        "--grpc-port",
        "0",
        "--ephemeral",
        "--project",
        PROJECT,
        "--no-admin",
    ]
    with SandboxServer([TokenEndpoint()]) as tokens, log.open("w") as output:
        process = subprocess.Popen(
            command, cwd=work_dir, env=environment, stdout=output, stderr=subprocess.STDOUT
        )
        try:
            port = _rest_port(process, log)
            key = service_account_key(PROJECT, f"{tokens.url}/token")
            yield BigQueryEmulator(f"http://127.0.0.1:{port}", PROJECT, key, log)
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _rest_port(process: subprocess.Popen[bytes], log: Path) -> int:
    """The REST port the emulator bound, once both its servers listen (read from its log)."""
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        ports = dict((kind, int(port)) for port, kind in _LISTENING.findall(log.read_text()))
        if len(ports) == 2:
            return ports["rest"]
        if process.poll() is not None:
            break
        time.sleep(0.05)
    tail = "\n".join(log.read_text().splitlines()[-15:])
    raise RuntimeError(f"bqemulator did not start (exit {process.poll()}); its log ends:\n{tail}")


def main() -> None:
    """Serve the emulator and its token endpoint until interrupted; print the exports."""
    if not emulator_installed():
        raise SystemExit("bqemulator is not installed: run make .venv-bqemulator/.installed")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # stop the emulator too
    work_dir = Path(tempfile.mkdtemp(prefix="costsync-bqemulator-"))
    with running_emulator(work_dir) as emulator:
        keyfile = work_dir / "service-account.json"
        keyfile.write_text(json.dumps(emulator.service_account))
        exports = {**emulator.environment(), "COSTSYNC_BIGQUERY_KEYFILE": str(keyfile)}
        exports["DESTINATION__BIGQUERY__CREDENTIALS"] = f"$(cat {shlex.quote(str(keyfile))})"
        exports["COSTSYNC_BIGQUERY_PROJECT"] = emulator.project
        print(
            f"BigQuery emulator at {emulator.url} (project {emulator.project}); log {emulator.log}"
        )
        for name, value in exports.items():
            quoted = f'"{value}"' if value.startswith("$(") else shlex.quote(value)
            print(f"export {name}={quoted}")
        print("Ctrl-C stops it; its data lives in memory.", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
