"""How a vendor client reaches its API: every value checked once, for both vendors."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import dlt
from dlt.common.configuration import inject_section, known_sections, with_config
from dlt.common.configuration.specs.config_section_context import ConfigSectionContext

from sources.shared.checks import (
    MAX_ATTEMPTS,
    MAX_REQUESTS_PER_MINUTE,
    check_api_key,
    check_base_url,
    check_int,
    check_seconds,
)
from sources.shared.errors import ConfigError
from sources.shared.retry import RetryPolicy


@dataclass(frozen=True)
class Connection:
    """A vendor API's address, key, rate limit, retry policy and answer timeout."""

    base_url: str
    api_key: str
    requests_per_minute: int
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    timeout_seconds: float = 60.0


def checked_connection(
    section: str,
    base_url: Any,
    api_key: Any,
    requests_per_minute: Any,
    max_attempts: Any,
    backoff_seconds: Any,
    timeout_seconds: Any,
    key_prefixes: tuple[str, ...] = (),
) -> Connection:
    """The connection the values of config `section` describe, or `ConfigError` naming
    the first key that breaks its rule (a key must start with one of `key_prefixes`)."""
    url = check_base_url(f"{section}.base_url", base_url)
    key = check_api_key(f"{section}.api_key", api_key)
    if key_prefixes and not key.startswith(key_prefixes):
        raise ConfigError(f"{section}.api_key", f"must start with {' or '.join(key_prefixes)}")
    return Connection(
        base_url=url,
        api_key=key,
        requests_per_minute=check_int(
            f"{section}.requests_per_minute", requests_per_minute, 1, MAX_REQUESTS_PER_MINUTE
        ),
        retry=RetryPolicy(
            max_attempts=check_int(f"{section}.max_attempts", max_attempts, 1, MAX_ATTEMPTS),
            backoff_seconds=check_seconds(f"{section}.backoff_seconds", backoff_seconds, True),
        ),
        timeout_seconds=check_seconds(f"{section}.timeout_seconds", timeout_seconds, False),
    )


def configured_connection(
    vendor: str,
    base_url: str,
    requests_per_minute: int,
    pipeline_name: str | None = None,
    key_prefixes: tuple[str, ...] = (),
) -> Connection:
    """The connection dlt's configuration gives `vendor` (section `sources.<vendor>`,
    under `<pipeline_name>.` first when given, as a source of that pipeline reads it),
    checked; `base_url` and `requests_per_minute` are the defaults."""

    @with_config(sections=(known_sections.SOURCES, vendor))
    def read(
        api_key: str = dlt.secrets.value,
        base_url: str = base_url,
        requests_per_minute: int = requests_per_minute,
        max_attempts: int = 10,
        backoff_seconds: float = 1.0,
        timeout_seconds: float = 60.0,
    ) -> Connection:
        section = f"{known_sections.SOURCES}.{vendor}"
        return checked_connection(
            section,
            base_url,
            api_key,
            requests_per_minute,
            max_attempts,
            backoff_seconds,
            timeout_seconds,
            key_prefixes,
        )

    scope = ConfigSectionContext(
        pipeline_name=pipeline_name, sections=(known_sections.SOURCES, vendor)
    )
    with inject_section(scope):
        return read()
