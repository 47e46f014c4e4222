"""A small threaded HTTP server that hosts the sandbox APIs on loopback.

Each sandbox API is an `App`: it answers the requests whose path it owns and
returns `None` for the rest. `SandboxServer` tries its apps in order, so one
port can serve StackSpend and LevelFour side by side.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol
from urllib.parse import parse_qs, urlsplit


@dataclass(frozen=True)
class Request:
    """One HTTP request as the apps see it."""

    method: str
    path: str
    query: Mapping[str, list[str]]
    headers: Mapping[str, str]  # keys lower-cased
    body: bytes = b""

    def param(self, name: str) -> str | None:
        """The first value of query parameter `name`, or None when absent."""
        values = self.query.get(name)
        return values[0] if values else None

    def header(self, name: str) -> str | None:
        """Header `name` (case-insensitive), or None when absent."""
        return self.headers.get(name.lower())

    def json(self) -> Any:
        """The request body parsed as JSON (an empty body is an empty object)."""
        return json.loads(self.body) if self.body else {}


@dataclass
class Response:
    """What an app answers: status, body bytes and extra headers."""

    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json"
    delay_seconds: float = 0.0  # sleep before answering (slow-response faults)
    truncate_to: int | None = None  # send only this many body bytes, then close

    @classmethod
    def json(cls, status: int, payload: Any, headers: dict[str, str] | None = None) -> Response:
        """A JSON response; `payload` must already hold JSON-safe values."""
        body = json.dumps(payload, separators=(",", ":")).encode()
        return cls(status=status, body=body, headers=dict(headers or {}))


class App(Protocol):
    """A sandbox API mounted on the server."""

    def handle(self, request: Request) -> Response | None:
        """Answer `request`, or return None when the path is not this app's."""
        ...


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out as separate writes
    server: _Server

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.verbose:
            super().log_message(format, *args)

    def _dispatch(self) -> None:
        request = self._read_request()
        response = self.server.route(request)
        self._send(response)

    def _read_request(self) -> Request:
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        return Request(
            method=self.command,
            path=parts.path,
            query=parse_qs(parts.query, keep_blank_values=True),
            headers=headers,
            body=body,
        )

    def _send(self, response: Response) -> None:
        if response.delay_seconds:
            time.sleep(response.delay_seconds)
        body = response.body
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in response.headers.items():
            self.send_header(name, value)
        if response.truncate_to is not None:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(body if response.truncate_to is None else body[: response.truncate_to])


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], apps: list[App], verbose: bool) -> None:
        super().__init__(address, _Handler)
        self.apps = apps
        self.verbose = verbose

    def route(self, request: Request) -> Response:
        for app in self.apps:
            response = app.handle(request)
            if response is not None:
                return response
        return Response.json(404, {"detail": "Not Found"})


class SandboxServer:
    """Serves sandbox apps on a loopback port in a background thread.

    Use as a context manager; `url` is the base URL to give a client.
    Port 0 picks a free port.
    """

    def __init__(
        self,
        apps: Iterable[App],
        host: str = "127.0.0.1",
        port: int = 0,
        verbose: bool = False,
    ) -> None:
        self._server = _Server((host, port), list(apps), verbose)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """Base URL, e.g. http://127.0.0.1:8765 (no trailing slash)."""
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def port(self) -> int:
        """The port actually bound."""
        return int(self._server.server_address[1])

    def start(self) -> SandboxServer:
        """Start serving in a daemon thread."""
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def serve_forever(self, on_ready: Callable[[], None] | None = None) -> None:
        """Serve in the calling thread until interrupted."""
        if on_ready:
            on_ready()
        self._server.serve_forever()

    def stop(self) -> None:
        """Stop serving and release the port."""
        self._server.shutdown()
        self._server.server_close()
        if self._thread:
            self._thread.join(timeout=5)

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
