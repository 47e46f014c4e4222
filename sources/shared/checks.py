"""Checks on configuration values, run before any request is sent.

Each failure raises `ConfigError(key, rule)`: the key as the user set it
(e.g. `sources.stackspend.lookback_days`) and the rule it broke. A secret's
value is never repeated in a message.
"""

from __future__ import annotations

import ipaddress
import math
import re
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from sources.shared.errors import ConfigError

_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")
_PERIOD = re.compile(r"(\d{4})-(\d{2})")
_LOOPBACK_NAMES = {"localhost", "localhost.localdomain"}
# No cost data is older than this; a date before it is a typo.
FIRST_DAY = date(2000, 1, 1)
# Upper bounds: beyond these a value is a typo, and would overflow dates or sleeps.
MAX_REQUESTS_PER_MINUTE = 1_000_000
MAX_ATTEMPTS = 100
MAX_DAYS = 36_600  # a hundred years
MAX_WINDOW_DAYS = 366
MAX_MONTHS = 1_200


def check_api_key(key: str, value: Any) -> str:
    """An API key: a non-empty string without whitespace or control characters."""
    if not isinstance(value, str) or not value:
        raise ConfigError(key, "is empty; set it in .dlt/secrets.toml or the environment")
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in value):
        raise ConfigError(
            key, "contains whitespace or control characters (it is refused, not trimmed)"
        )
    if not value.isascii():
        raise ConfigError(key, "contains characters outside ASCII, which no API key has")
    return value


def check_base_url(key: str, value: Any) -> str:
    """An https:// URL; plain http:// is allowed only on loopback hosts."""
    if not isinstance(value, str) or not value:
        raise ConfigError(key, "must be a URL such as https://api.example.com")
    parts = urlsplit(value)
    if parts.username or parts.password:
        raise ConfigError(key, "must not carry credentials (user:password@); set api_key instead")
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ConfigError(key, f"must be an https:// URL (got {value!r})")
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        raise ConfigError(key, f"must use https:// unless the host is loopback (got {value!r})")
    if parts.query or parts.fragment:
        raise ConfigError(key, "must not carry a query or fragment")
    return value.rstrip("/")


def is_loopback(host: str) -> bool:
    """True for localhost, 127.0.0.0/8 and ::1."""
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_int(key: str, value: Any, minimum: int, maximum: int | None = None) -> int:
    """An integer from `minimum` to `maximum` (booleans are not integers here)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(key, f"must be an integer >= {minimum} (got {_shown(value)})")
    if maximum is not None and value > maximum:
        raise ConfigError(
            key, f"must be an integer from {minimum} to {maximum:,} (got {_shown(value)})"
        )
    return int(value)


def check_seconds(key: str, value: Any, allow_zero: bool, maximum: float = 3600.0) -> float:
    """A finite number of seconds, positive (or zero when `allow_zero`), at most `maximum`."""
    try:
        seconds = float(value)
    except (TypeError, ValueError, OverflowError):
        seconds = math.nan
    low_ok = seconds >= 0 if allow_zero else seconds > 0
    if isinstance(value, bool) or not math.isfinite(seconds) or not low_ok:
        rule = "a number of seconds >= 0" if allow_zero else "a number of seconds > 0"
        raise ConfigError(key, f"must be {rule} (got {_shown(value)})")
    if seconds > maximum:
        raise ConfigError(key, f"must be at most {maximum:g} seconds (got {_shown(value)})")
    return seconds


def latest_day() -> date:
    """The latest day a sync may ask for: tomorrow in UTC (somewhere it is already)."""
    return datetime.now(UTC).date() + timedelta(days=1)


def check_day_range(key: str, day: date) -> date:
    """`day` must lie from `FIRST_DAY` to `latest_day()`."""
    if not FIRST_DAY <= day <= latest_day():
        rule = f"must be a day from {FIRST_DAY.isoformat()} to {latest_day().isoformat()}"
        raise ConfigError(key, f"{rule} (got {day.isoformat()})")
    return day


def parse_day(key: str, value: Any) -> date:
    """A real calendar day written YYYY-MM-DD (a `date` passes as is)."""
    if isinstance(value, date) and not isinstance(value, datetime):
        return check_day_range(key, value)
    if not isinstance(value, str) or not _DAY.fullmatch(value):
        raise ConfigError(key, f"must be a date written YYYY-MM-DD (got {value!r})")
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise ConfigError(key, f"is not a real day (got {value!r})") from None
    return check_day_range(key, day)


def parse_period(key: str, value: Any) -> date:
    """A month written YYYY-MM, returned as its first day."""
    match = _PERIOD.fullmatch(value) if isinstance(value, str) else None
    if not match or not 1 <= int(match.group(2)) <= 12 or int(match.group(1)) < 1:
        raise ConfigError(key, f"must be a month written YYYY-MM (got {_shown(value)})")
    month = date(int(match.group(1)), int(match.group(2)), 1)
    if not FIRST_DAY <= month <= latest_day():
        latest = latest_day().strftime("%Y-%m")
        raise ConfigError(key, f"must be a month from 2000-01 to {latest} (got {value})")
    return month


def _shown(value: Any) -> str:
    """A value as a message quotes it: shortened, so a huge one stays one short line."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def check_order(start_key: str, start: date, end_key: str, end: date) -> None:
    """`start` must not come after `end`."""
    if start > end:
        raise ConfigError(start_key, f"{start.isoformat()} is after {end_key} {end.isoformat()}")
