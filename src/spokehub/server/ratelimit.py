"""A limit on failed dashboard logins per client address, kept in the server's memory.

After ``attempts`` failed logins from one address within ``window`` seconds, that address
gets 429 (with ``Retry-After``) until the oldest failure leaves the window; the token it
sends is not even checked. Successful logins do not count. Behind a reverse proxy every
client shares the proxy's address; each server process counts on its own.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

__all__ = ["LoginLimiter"]


class LoginLimiter:
    def __init__(
        self,
        *,
        attempts: int = 5,
        window: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.attempts = attempts
        self.window = window
        self._clock = clock
        self._failures: dict[str, deque[float]] = {}

    def _recent(self, address: str) -> deque[float]:
        now = self._clock()
        failures = self._failures.get(address)
        if failures is None:
            return deque()
        while failures and failures[0] <= now - self.window:
            failures.popleft()
        if not failures:
            del self._failures[address]
        return failures

    def retry_after(self, address: str) -> float | None:
        """Seconds until ``address`` may try again, or None when it may try now."""
        failures = self._recent(address)
        if len(failures) < self.attempts:
            return None
        return max(0.0, failures[0] + self.window - self._clock())

    def failed(self, address: str) -> None:
        self._recent(address)
        if len(self._failures) > 10_000:  # a flood of addresses must not grow memory forever
            self._failures.clear()
        self._failures.setdefault(address, deque()).append(self._clock())
