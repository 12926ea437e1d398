"""Token bucket arithmetic: pure functions of (limit, bucket, now), shared by every backend."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, kw_only=True, slots=True)
class RateLimit:
    """At most ``requests`` per ``period`` seconds, with bursts up to ``burst`` (default: all).

    Example:
        >>> RateLimit(requests=10, period=1.0)  # ten requests a second
        RateLimit(requests=10, period=1.0, burst=None)
    """

    requests: int
    period: float
    burst: int | None = None

    def __post_init__(self) -> None:
        if self.requests < 1 or self.period <= 0 or (self.burst is not None and self.burst < 1):
            raise ValueError(
                "a rate limit is RateLimit(requests=N, period=SECONDS) with N >= 1, SECONDS > 0"
            )

    @property
    def capacity(self) -> float:
        return float(self.burst if self.burst is not None else self.requests)

    @property
    def per_second(self) -> float:
        return self.requests / self.period


@dataclass(frozen=True, slots=True)
class Bucket:
    tokens: float
    updated_at: float


def take(limit: RateLimit, bucket: Bucket | None, now: float) -> tuple[bool, float, Bucket]:
    """Take one token: (taken, seconds until one is available if not, new bucket)."""
    if bucket is None:
        bucket = Bucket(limit.capacity, now)
    elapsed = max(0.0, now - bucket.updated_at)
    tokens = min(limit.capacity, bucket.tokens + elapsed * limit.per_second)
    if tokens >= 1.0:
        return True, 0.0, Bucket(tokens - 1.0, now)
    return False, (1.0 - tokens) / limit.per_second, Bucket(tokens, now)
