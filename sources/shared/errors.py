"""Typed errors shared by the vendor clients.

One class per family of API answers, so callers can tell what to do:
`retriable` ones are retried by the HTTP client; the rest stop the sync and
carry the server's own message. No error message ever contains an API key.
"""

from __future__ import annotations

from collections.abc import Callable


class CostsyncError(Exception):
    """Base of every error costsync raises on purpose."""


class ConfigError(CostsyncError, ValueError):
    """A configuration value or argument breaks its rule; raised before any request."""

    def __init__(self, key: str, rule: str) -> None:
        super().__init__(f"{key}: {rule}")
        self.key = key
        self.rule = rule


class ApiError(CostsyncError):
    """The API answered a request with an error.

    Attributes:
        vendor: "StackSpend" or "LevelFour".
        endpoint: the path that was called.
        status: the HTTP status, or None when no response arrived.
        code: the vendor's error code when it sends one (e.g. INVALID_SCOPE).
        server_message: what the server said, verbatim.
    """

    retriable = False
    max_message_chars = 400

    def __init__(
        self,
        vendor: str,
        endpoint: str,
        status: int | None,
        server_message: str,
        code: str | None = None,
    ) -> None:
        self.vendor = vendor
        self.endpoint = endpoint
        self.status = status
        self.code = code
        self.server_message = server_message
        super().__init__(self._describe())

    def masked(self, mask: Callable[[str], str]) -> ApiError:
        """This error with `mask` applied to the server's message (and so to its text)."""
        self.server_message = mask(str(self.server_message))
        self.args = (self._describe(),)
        return self

    def _describe(self) -> str:
        label = " ".join(str(p) for p in (self.status, self.code) if p is not None)
        label = f" ({label})" if label else ""
        message = " ".join(str(self.server_message).split())
        if len(message) > self.max_message_chars:
            message = message[: self.max_message_chars - 3] + "..."
        return f"{self.vendor} {self.endpoint}{label}: {message}"


class AuthenticationError(ApiError):
    """401: no key, a malformed key or an unknown key."""


class ForbiddenError(ApiError):
    """403: the key is valid but revoked or deleted."""


class ScopeError(ForbiddenError):
    """403: the key lacks the scope an endpoint needs."""

    def __init__(self, *args: object, scope: str, **kwargs: object) -> None:
        self.scope = scope
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]


class PlanRestrictedError(ForbiddenError):
    """403: the workspace's plan does not include API access."""


class RequestValidationError(ApiError):
    """422: a parameter is missing or has an invalid value."""

    def __init__(self, *args: object, parameter: str | None = None, **kwargs: object) -> None:
        self.parameter = parameter
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]


class RateLimitedError(ApiError):
    """429: too many requests; `retry_after` is the wait the server asked for."""

    retriable = True

    def __init__(self, *args: object, retry_after: float | None = None, **kwargs: object) -> None:
        self.retry_after = retry_after
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]


class ServerError(ApiError):
    """5xx, a dropped connection, a timeout: worth retrying."""

    retriable = True


class InvalidResponseError(ApiError):
    """A 200 whose body is not the JSON the docs describe (cut short, garbled)."""

    retriable = True


class RetriesExhaustedError(ApiError):
    """Retriable failures kept coming until the retry budget ran out."""

    def __init__(self, last: ApiError, attempts: int, reason: str | None = None) -> None:
        self.last = last
        self.attempts = attempts
        why = f"gave up after {attempts} attempts" + (f" ({reason})" if reason else "")
        super().__init__(
            last.vendor,
            last.endpoint,
            last.status,
            f"{why}; last error: {last.server_message}",
            code=last.code,
        )


class PagingError(ApiError):
    """The API's pagination cannot be followed safely (a loop, a missing cursor)."""


class SchemaChangeError(ApiError):
    """A field arrived with a type the warehouse column cannot hold without loss."""
