"""Retry policies: pure arithmetic over attempt numbers."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass


@dataclass(frozen=True, kw_only=True, slots=True)
class RetryPolicy:
    """How a failed step attempt is retried.

    Attributes:
        max_attempts: total tries including the first (1 means no retry).
        initial_delay: seconds before the second attempt.
        multiplier: each further delay is the previous one times this.
        max_delay: upper bound of one delay, in seconds.
        jitter: fraction of the delay added or removed at random (0.1 is plus or minus 10%),
            derived from the step's idempotency key so that replay computes the same delay.
        non_retryable: exception types that fail the step at once.

    Example:
        >>> RetryPolicy(max_attempts=5, initial_delay=0.5, jitter=0).delay(3, seed="run-1:2")
        2.0
    """

    max_attempts: int = 3
    initial_delay: float = 1.0
    multiplier: float = 2.0
    max_delay: float = 60.0
    jitter: float = 0.1
    non_retryable: tuple[type[BaseException], ...] = ()

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1 (1 means: no retry)")
        if self.initial_delay < 0 or self.max_delay < 0:
            raise ValueError("delays must be zero or positive")
        if self.multiplier < 1:
            raise ValueError("multiplier must be at least 1")
        if not 0 <= self.jitter <= 1:
            raise ValueError("jitter is a fraction between 0 and 1")

    def delay(self, attempt: int, *, seed: str) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        base = min(self.max_delay, self.initial_delay * self.multiplier ** (attempt - 1))
        if not self.jitter or not base:
            return base
        digest = hashlib.blake2b(f"{seed}:{attempt}".encode(), digest_size=8).digest()
        unit = int.from_bytes(digest, "big") / 2**64  # in [0, 1)
        return max(0.0, base * (1 + self.jitter * (2 * unit - 1)))

    def retries(self, exc: BaseException, attempt: int) -> bool:
        """Whether failed attempt ``attempt`` with ``exc`` gets another try."""
        if attempt >= self.max_attempts:
            return False
        return not isinstance(exc, self.non_retryable)


NO_RETRY = RetryPolicy(max_attempts=1)
