"""`costsync sandbox`: serve the sandbox APIs on loopback until interrupted."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime, timedelta

from sandbox import levelfour, stackspend
from sandbox.http import App, SandboxServer


def command_sandbox(args: argparse.Namespace) -> int:
    """Serve StackSpend and LevelFour on one port and print how to point costsync at them."""
    today = datetime.now(UTC).date()
    apps: list[App] = [
        stackspend.StackSpendSandbox(
            start_date=today - timedelta(days=args.days - 1),
            end_date=today,
            line_items_per_day=args.line_items_per_day,
            anomaly_order=args.anomaly_order,
            requests_per_minute=args.requests_per_minute,
            cache_rows=args.cache_rows,
        ),
        levelfour.LevelFourSandbox(requests_per_minute=args.requests_per_minute),
    ]
    server = SandboxServer(apps, host=args.host, port=args.port)
    try:
        server.serve_forever(on_ready=lambda: print(banner(server.url), flush=True))
    except KeyboardInterrupt:
        print("sandbox stopped")
    finally:
        server.stop()
    return 0


def banner(url: str) -> str:
    """What the sandbox prints when it is ready: the URL, demo keys, a command to try."""
    lines = [f"costsync sandbox serving on {url} (Ctrl-C to stop)", "", "StackSpend demo keys:"]
    lines += [f"  {key:<28} {what}" for key, what in stackspend.DEMO_KEYS.items()]
    lines += ["", "LevelFour demo keys:"]
    lines += [f"  {key:<28} {what}" for key, what in levelfour.DEMO_KEYS.items()]
    lines += [
        "",
        "Try:",
        f"  export SOURCES__STACKSPEND__BASE_URL={url}",
        f"  export SOURCES__STACKSPEND__API_KEY={stackspend.DEMO_KEY}",
        f"  export SOURCES__LEVELFOUR__BASE_URL={url}",
        f"  export SOURCES__LEVELFOUR__API_KEY={levelfour.DEMO_KEY}",
        "  costsync sync stackspend --duckdb-path sandbox.duckdb",
        "  costsync sync levelfour --duckdb-path sandbox.duckdb",
    ]
    return "\n".join(lines)
