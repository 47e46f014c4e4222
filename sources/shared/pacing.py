"""Client-side pacing to an API's requests-per-minute limit.

APIs count requests in a rolling minute. Sending one request every
60/limit seconds never exceeds such a window, and never idles either: the
wait is measured from when the previous request was *due*, so time spent
waiting for responses counts toward the interval, and a wake-up that comes
a little late (a sleep that overran, a thread waiting for the GIL) does not
push every later request back: over a thousand requests those few
milliseconds would add up to seconds.

The server times a request when it arrives, somewhere between when we sent
it and when its answer came back. So a request may go only once the one
`limit` requests before it has been *answered* a full minute ago: network
delays (a slow TLS handshake, a congested link) can then never squeeze
`limit + 1` arrivals into the server's minute. On a fast link this costs
nothing; otherwise about one round trip per minute.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import deque
from collections.abc import Callable

from sources.shared import cancel

WINDOW_SECONDS = 60.0
SAFETY_SECONDS = 0.05  # clock granularity at the server
POLL_SECONDS = 0.01  # how often to look again while the request to wait for is in flight


class Ticket:
    """One request's passage: when it was sent and when it was answered."""

    __slots__ = ("answered", "sent")

    def __init__(self, sent: float) -> None:
        self.sent = sent
        self.answered: float | None = None


class RateLimiter:
    """Spaces calls evenly at `requests_per_minute` and keeps any 60 s window within it."""

    def __init__(
        self,
        requests_per_minute: int,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = cancel.wait,
    ) -> None:
        if requests_per_minute < 1:
            raise ValueError("requests_per_minute must be an integer >= 1")
        self.requests_per_minute = requests_per_minute
        self.interval = WINDOW_SECONDS / requests_per_minute
        self._clock = clock
        self._sleep = sleep
        self._recent: deque[Ticket] = deque(maxlen=requests_per_minute)
        self._due: float | None = None  # when the last request was due on the even timeline
        self._lock = threading.Lock()

    def acquire(self) -> Ticket:
        """Block until the next request may be sent; `release` the ticket when answered."""
        with self._lock:
            while (delay := self._delay(self._clock())) > 0:
                self._sleep(delay)
            ticket = Ticket(self._clock())
            self._recent.append(ticket)
            self._due = self._slot(ticket.sent)
            return ticket

    def release(self, ticket: Ticket) -> None:
        """The request of `ticket` got its answer (or failed) now."""
        ticket.answered = self._clock()

    def pause(self, seconds: float) -> None:
        """Hold every caller back `seconds` from now (the server asked us to wait)."""
        with self._lock:
            self._sleep(seconds)

    def _slot(self, sent: float) -> float:
        """The slot on the even timeline of a request sent at `sent`.

        A request less than an interval late keeps its slot, so the lateness
        does not add up; one later than that (nothing was asked for a while)
        starts the timeline again, rather than catching up in a burst.
        """
        if self._due is None:
            return sent
        due = self._due + self.interval
        return due if sent - due < self.interval else sent

    def _delay(self, now: float) -> float:
        if self._due is None:
            return 0.0
        spacing = self._due + self.interval - now
        window = 0.0
        if len(self._recent) == self.requests_per_minute:
            oldest = self._recent[0]
            if oldest.answered is None:
                window = max(POLL_SECONDS, oldest.sent + WINDOW_SECONDS - now)
            else:
                window = oldest.answered + WINDOW_SECONDS + SAFETY_SECONDS - now
        return max(spacing, window, 0.0)


_limiters: dict[tuple[str, str, int], RateLimiter] = {}
_limiters_lock = threading.Lock()


def limiter_for(base_url: str, api_key: str, requests_per_minute: int) -> RateLimiter:
    """The process-wide limiter for one API key at one base URL.

    A sync runs the source several times (one load per date window); sharing
    the limiter keeps the pacing continuous across those runs. The key is
    stored only as a digest.
    """
    digest = hashlib.sha256(api_key.encode()).hexdigest()
    slot = (base_url, digest, requests_per_minute)
    with _limiters_lock:
        if slot not in _limiters:
            _limiters[slot] = RateLimiter(requests_per_minute)
        return _limiters[slot]
