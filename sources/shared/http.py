"""The HTTP loop both vendor clients share: pacing, retries, typed errors.

A vendor client supplies two things: how to turn an error response into a
typed `ApiError`, and how to decode a 200 body. This module does the rest.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable, Mapping
from typing import Any, TypeVar
from urllib.parse import urlencode

import requests

from sources.shared.connection import Connection
from sources.shared.errors import (
    ApiError,
    InvalidResponseError,
    RateLimitedError,
    ServerError,
)
from sources.shared.pacing import limiter_for
from sources.shared.progress import RequestStats
from sources.shared.retry import call_with_retries
from sources.shared.secrets import SecretMask

logger = logging.getLogger("costsync")

T = TypeVar("T")
# (HTTP status, response headers, body text with secrets masked, endpoint path)
ErrorParser = Callable[[int, Mapping[str, str], str, str], ApiError]
Decoder = Callable[[bytes], T]


class ApiSession:
    """Sends paced GET requests and retries what is worth retrying.

    The credentials live only in the session's headers: they are never
    formatted into a URL, a log line or an exception.
    """

    def __init__(
        self,
        vendor: str,
        connection: Connection,
        auth_headers: Mapping[str, str],
        parse_error: ErrorParser,
        stats: RequestStats | None = None,
    ) -> None:
        self.vendor = vendor
        self.base_url = connection.base_url.rstrip("/")
        self.limiter = limiter_for(
            self.base_url, connection.api_key, connection.requests_per_minute
        )
        self.parse_error = parse_error
        self.retry = connection.retry
        self.timeout_seconds = connection.timeout_seconds
        self.stats = stats or RequestStats()
        self.stats.requests_per_minute = connection.requests_per_minute
        self.mask = SecretMask((connection.api_key,))
        # who is asking, without the key: syncs of several workspaces share one process
        self.caller = (self.base_url, hashlib.sha256(connection.api_key.encode()).hexdigest()[:16])
        self._headers = {"User-Agent": "costsync", "Accept": "application/json", **auth_headers}
        self._session = session_for(self.base_url)

    def get(
        self,
        path: str,
        params: Mapping[str, Any],
        decode: Decoder[T],
        peek: Callable[[bytes], None] | None = None,
    ) -> T:
        """GET `path` and return `decode(body)`, retrying retriable failures.

        `peek`, if given, sees each 200 body before it is decoded (a pager uses
        it to request the next page while this one is being parsed).
        """

        def attempt() -> T:
            try:
                return self._attempt(path, params, decode, peek)
            except ApiError as error:
                raise error.masked(self.mask) from None  # a decoded body can unescape a key

        return call_with_retries(attempt, self.retry, self.limiter.pause, self._before_retry)

    def _send(self, path: str, params: Mapping[str, Any]) -> requests.Response:
        """One GET straight through the session's adapter.

        `Session.get` would also merge cookies, environment settings (proxies,
        .netrc credentials) and follow redirects; none of them should apply,
        and skipping them halves the client's time per request.
        """
        url = f"{self.base_url}{path}?{urlencode(params)}"
        prepared = requests.PreparedRequest()
        prepared.prepare(method="GET", url=url, headers=self._headers)
        response = self._session.get_adapter(url).send(prepared, timeout=self.timeout_seconds)
        _ = response.content  # read the body here: a cut-off body is a retriable connection error
        return response

    def _attempt(
        self,
        path: str,
        params: Mapping[str, Any],
        decode: Decoder[T],
        peek: Callable[[bytes], None] | None,
    ) -> T:
        ticket = self.limiter.acquire()
        self.stats.count(path)
        try:
            response = self._send(path, params)
        except requests.Timeout:
            raise ServerError(self.vendor, path, None, "timed out waiting for the API") from None
        except requests.RequestException as error:
            reason = type(error).__name__
            raise ServerError(self.vendor, path, None, f"connection failed ({reason})") from None
        finally:
            self.limiter.release(ticket)
        if response.is_redirect:
            # never follow: the key would travel to wherever the redirect points
            location = self.mask(str(response.headers.get("Location")))
            message = f"the API redirected to {location!r}; check base_url"
            raise ApiError(self.vendor, path, response.status_code, message)
        if response.status_code != 200:
            text = self.mask(response.text)
            raise self.parse_error(response.status_code, response.headers, text, path)
        if peek is not None:
            peek(response.content)
        try:
            return decode(response.content)
        except ApiError:
            raise
        except ValueError as error:
            raise InvalidResponseError(
                self.vendor, path, 200, f"the response body is not valid JSON ({error})"
            ) from None

    def _before_retry(self, error: ApiError, wait: float, attempt: int) -> None:
        self.stats.retries += 1
        if isinstance(error, RateLimitedError):
            self.stats.rate_limited += 1
        logger.info(  # the CLI shows it on a terminal; the summary counts the retries
            "%s %s: %s; retrying in %.1fs (attempt %d of %d)",
            self.vendor,
            error.endpoint,
            error.server_message,
            wait,
            attempt,
            self.retry.max_attempts,
        )


_sessions: dict[str, requests.Session] = {}
_sessions_lock = threading.Lock()


def session_for(base_url: str) -> requests.Session:
    """The process's connection pool for `base_url`, kept across a sync's loads.

    Only its transport adapter is used (see `ApiSession._send`), which is
    safe to share between threads; reusing it saves a TCP and TLS handshake
    per window. It holds no credentials: those travel in each request's headers.
    """
    with _sessions_lock:
        if base_url not in _sessions:
            _sessions[base_url] = requests.Session()
        return _sessions[base_url]
