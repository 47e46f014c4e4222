"""Against a server enforcing the configured limit, a sync gets no 429 and does not idle.

Checked on the request schedule the server saw, never on this process's wall clock
(benchmarks/bench.py measures that)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from sandbox.stackspend import StackSpendSandbox
from tests.conftest import TODAY, Env

RATE = 240  # requests per minute, enforced by the sandbox over a sliding 60 s window


@pytest.fixture
def stackspend_app() -> StackSpendSandbox:
    """21 days of 12,000 line items: about 260 requests, more than a minute's worth."""
    return StackSpendSandbox(
        seed=3, start_date=TODAY - timedelta(days=20), end_date=TODAY, line_items_per_day=12_000
    )


@pytest.mark.slow
def test_a_sync_at_the_servers_limit_gets_no_429_and_wastes_no_time(env: Env) -> None:
    env.stackspend.set_rate_limit(RATE)
    env.setenv(SOURCES__STACKSPEND__REQUESTS_PER_MINUTE=str(RATE))
    result = env.sync("stackspend")
    assert result.code == 0, result.err
    sent = env.stackspend.request_count()
    assert sent > RATE  # enough to fill the server's window
    assert env.stackspend.request_count(status=429) == 0
    # paced: the requests span no more than their spacing, plus one window's safety margin
    times = [r.time for r in env.stackspend.requests]
    spacing = (sent - 1) * 60 / RATE
    assert max(times) - min(times) <= 1.01 * spacing + 0.3
