"""Typed errors shared by the vendor clients.

One class per family of API answers, so callers can tell what to do:
`retriable` ones are retried by the HTTP client; the rest stop the sync and
carry the server's own message. No error message ever contains an API key.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping


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
    """403: the key lacks the scope an endpoint needs (`scope`, when known)."""

    scope: str = ""


class PlanRestrictedError(ForbiddenError):
    """403: the workspace's plan does not include API access."""


class RequestValidationError(ApiError):
    """422: a parameter (`parameter`, when the API names it) is missing or invalid."""

    parameter: str | None = None


class RateLimitedError(ApiError):
    """429: too many requests; `retry_after` is the wait the server asked for."""

    retriable = True
    retry_after: float | None = None


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


class AmountError(SchemaChangeError):
    """An amount its DECIMAL column cannot hold exactly: too large, or too many decimals."""


# The typed error of an answer: by the vendor's error code (403s tell scope and plan
# apart by it), else by HTTP status; other 5xx are server errors, the rest plain.
ERRORS_BY_CODE: dict[str, type[ApiError]] = {
    "INVALID_SCOPE": ScopeError,
    "PLAN_RESTRICTED": PlanRestrictedError,
}
ERRORS_BY_STATUS: dict[int, type[ApiError]] = {
    401: AuthenticationError,
    403: ForbiddenError,
    408: ServerError,
    422: RequestValidationError,
    429: RateLimitedError,
}


def error_for(
    vendor: str, endpoint: str, status: int, message: str | None, code: str | None = None
) -> ApiError:
    """The typed error for a non-200 answer, carrying the server's code and message."""
    kind = ERRORS_BY_CODE.get(code or "") if status == 403 else None
    kind = kind or ERRORS_BY_STATUS.get(status) or (ServerError if status >= 500 else ApiError)
    return kind(vendor, endpoint, status, message or f"HTTP {status}", code=code)


def refusal(error: ApiError) -> str:
    """Why the API refused a key, in a few words."""
    if isinstance(error, ScopeError):
        return f"the key lacks scope {error.scope or error.code}"
    if isinstance(error, PlanRestrictedError):
        return "the workspace's plan has no API access"
    if isinstance(error, ForbiddenError):
        return "the key is revoked or deleted"
    if isinstance(error, AuthenticationError):
        return "the key is not accepted"
    return str(error)


def readable(requests: Mapping[str, Callable[[], object]]) -> dict[str, str | None]:
    """Each request made once: None where the API answered, else why it refused."""
    found: dict[str, str | None] = {}
    for name, request in requests.items():
        try:
            request()
            found[name] = None
        except ApiError as error:
            found[name] = refusal(error)
    return found
