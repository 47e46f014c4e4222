"""Retry policy, kept apart from the calls it protects, on tenacity (as dlt's own
`dlt.sources.helpers.requests.retry` is).

Retriable: what the typed errors mark `retriable` — 429 (after the wait the server
names), 5xx, connection errors, timeouts and bodies that are not valid JSON.
Everything else is fatal and raised at once.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar

from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    wait_random_exponential,
)
from tenacity.stop import stop_base
from tenacity.wait import wait_base

from sources.shared.errors import ApiError, RateLimitedError, RetriesExhaustedError

logger = logging.getLogger("costsync")
T = TypeVar("T")

_RETRY_AFTER_IN_MESSAGE = re.compile(r"retry after (\d+(?:\.\d+)?)\s*s", re.IGNORECASE)


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry.

    Attributes:
        max_attempts: attempts per request, the first one included.
        backoff_seconds: the first backoff's ceiling; it doubles each attempt, and
            each wait is drawn between 0 and the ceiling ("full jitter").
        max_backoff_seconds: the highest ceiling.
        max_retry_after_seconds: the longest wait accepted from a 429; a server asking
            for longer ends the retries at once.
        min_retry_after_seconds: the shortest wait after a 429, whatever it asks
            (`Retry-After: 0` from a server still refusing would be a busy loop).
    """

    max_attempts: int = 10
    backoff_seconds: float = 1.0
    max_backoff_seconds: float = 60.0
    max_retry_after_seconds: float = 300.0
    min_retry_after_seconds: float = 1.0


class wait_retry_after_or_backoff(wait_base):
    """What a 429 asks for (at least `min_retry_after_seconds`), else full-jitter backoff."""

    def __init__(self, policy: RetryPolicy) -> None:
        self.policy = policy
        self.backoff = wait_random_exponential(
            multiplier=policy.backoff_seconds, max=policy.max_backoff_seconds
        )

    def __call__(self, retry_state: RetryCallState) -> float:
        asked = _asked(retry_state)
        wait = float(self.backoff(retry_state)) if asked is None else asked
        if _rate_limited(retry_state):
            return max(self.policy.min_retry_after_seconds, wait)
        return wait


class stop_when_asked_too_long(stop_base):
    """Stop retrying at once when a 429 asks for longer than the policy accepts."""

    def __init__(self, policy: RetryPolicy) -> None:
        self.policy = policy

    def __call__(self, retry_state: RetryCallState) -> bool:
        asked = _asked(retry_state)
        return asked is not None and asked > self.policy.max_retry_after_seconds


def call_with_retries(
    attempt: Callable[[], T],
    policy: RetryPolicy,
    pause: Callable[[float], None],
    on_retry: Callable[[ApiError, float, int], None],
) -> T:
    """`attempt()`, retried as `policy` says while it raises a retriable `ApiError`.

    `pause(seconds)` does the waiting (the pacer, so no other request goes meanwhile);
    `on_retry(error, wait, next_attempt)` hears of each retry before it.

    Raises:
        RetriesExhaustedError: the attempts ran out, or a 429 asked for too long a wait.
        ApiError: a fatal one, at once.
    """
    retrying = Retrying(
        stop=stop_after_attempt(policy.max_attempts) | stop_when_asked_too_long(policy),
        wait=wait_retry_after_or_backoff(policy),
        retry=retry_if_exception(lambda error: isinstance(error, ApiError) and error.retriable),
        sleep=pause,
        before_sleep=lambda state: on_retry(
            _error(state), state.upcoming_sleep, state.attempt_number + 1
        ),
        retry_error_callback=lambda state: _give_up(state, policy),
    )
    return retrying(attempt)


def retry_after_seconds(headers: Mapping[str, str], message: str | None) -> float | None:
    """The wait a 429 asks for: the Retry-After header, else "Retry after N seconds"."""
    header = headers.get("Retry-After")
    if header:
        seconds = _parse_retry_after_header(header)
        if seconds is not None and math.isfinite(seconds):
            return seconds
    match = _RETRY_AFTER_IN_MESSAGE.search(message or "")
    return float(match.group(1)) if match else None


def _give_up(retry_state: RetryCallState, policy: RetryPolicy) -> Any:
    error = _error(retry_state)
    asked = _asked(retry_state)
    reason = None
    if asked is not None and asked > policy.max_retry_after_seconds:
        reason = f"the API asks to wait {asked:,.0f} s before retrying"
    raise RetriesExhaustedError(error, retry_state.attempt_number, reason)


def _error(retry_state: RetryCallState) -> ApiError:
    outcome = retry_state.outcome
    error = outcome.exception() if outcome is not None else None
    assert isinstance(error, ApiError)  # only ApiErrors are retried
    return error


def _rate_limited(retry_state: RetryCallState) -> bool:
    outcome = retry_state.outcome
    return outcome is not None and isinstance(outcome.exception(), RateLimitedError)


def _asked(retry_state: RetryCallState) -> float | None:
    """The wait the last answer asked for, when it was a 429 that named one."""
    outcome = retry_state.outcome
    error = outcome.exception() if outcome is not None else None
    return error.retry_after if isinstance(error, RateLimitedError) else None


def _parse_retry_after_header(value: str) -> float | None:
    """Retry-After as delay-seconds or as an HTTP-date."""
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - datetime.now(UTC)).total_seconds())
