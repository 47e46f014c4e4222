"""Retry policy, kept apart from the calls it protects.

Retriable: 429 (after the wait the server names), 5xx, connection errors,
timeouts and bodies that are not valid JSON. Everything else is fatal.
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

_RETRY_AFTER_IN_MESSAGE = re.compile(r"retry after (\d+(?:\.\d+)?)\s*s", re.IGNORECASE)


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry.

    Attributes:
        max_attempts: attempts per request, the first one included.
        backoff_seconds: the first backoff; it doubles each attempt.
        max_backoff_seconds: the longest single backoff.
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

    def rate_limit_wait(self, asked: float | None, attempt: int, rng: random.Random) -> float:
        """Seconds to wait after a 429 that asked for `asked` (None: it did not say)."""
        if asked is None:
            return self.backoff(attempt, rng)
        return max(self.min_retry_after_seconds, asked)

    def backoff(self, attempt: int, rng: random.Random | None = None) -> float:
        """Seconds to wait after failed attempt number `attempt` (1-based): full jitter."""
        ceiling = min(self.max_backoff_seconds, self.backoff_seconds * 2 ** (attempt - 1))
        return (rng or random).uniform(ceiling / 2, ceiling)


def retry_after_seconds(headers: Mapping[str, str], message: str | None) -> float | None:
    """The wait a 429 asks for: the Retry-After header, else "Retry after N seconds"."""
    header = headers.get("Retry-After")
    if header:
        seconds = _parse_retry_after_header(header)
        if seconds is not None and math.isfinite(seconds):
            return seconds
    match = _RETRY_AFTER_IN_MESSAGE.search(message or "")
    return float(match.group(1)) if match else None


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
