"""Circuit breaker arithmetic: pure functions of (policy, state, now), shared by every backend.

closed ──(N failures in a row, or a failure rate over the window)──▶ open
open ──(open_for elapsed)──▶ half-open: up to ``half_open_probes`` requests go through
half-open ──(a probe succeeds)──▶ closed;  ──(a probe fails)──▶ open again

The state is a small JSON-able dataclass, so the PostgreSQL backend can keep it in a row and
every worker computes the same transitions.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any, Literal

BreakerStateName = Literal["closed", "open", "half_open"]


@dataclass(frozen=True, kw_only=True, slots=True)
class BreakerPolicy:
    """When a host's breaker opens and how it recovers.

    Attributes:
        failure_threshold: consecutive failures that open the breaker.
        failure_rate: fraction of failed calls in ``window`` that opens it (with at least
            ``min_calls`` calls in the window); None turns the rate rule off.
        window: seconds of the rolling count for ``failure_rate``.
        min_calls: calls needed in the window before the rate counts.
        open_for: seconds the breaker stays open before it lets probes through.
        half_open_probes: requests allowed at once while half-open.
    """

    failure_threshold: int = 5
    failure_rate: float | None = 0.5
    window: float = 60.0
    min_calls: int = 20
    open_for: float = 30.0
    half_open_probes: int = 1

    def __post_init__(self) -> None:
        if self.failure_threshold < 1 or self.min_calls < 1 or self.half_open_probes < 1:
            raise ValueError("failure_threshold, min_calls and half_open_probes must be >= 1")
        if self.failure_rate is not None and not 0 < self.failure_rate <= 1:
            raise ValueError("failure_rate is a fraction in (0, 1], or None")
        if self.window <= 0 or self.open_for <= 0:
            raise ValueError("window and open_for are positive seconds")


@dataclass(frozen=True, slots=True)
class BreakerState:
    state: BreakerStateName = "closed"
    consecutive: int = 0
    window_start: float = 0.0
    calls: int = 0
    failed: int = 0
    changed_at: float = 0.0
    probes: int = 0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> BreakerState:
        return cls(**data)


@dataclass(frozen=True, slots=True)
class Admission:
    allowed: bool
    retry_after: float  # when refused: seconds until a request may pass
    state: BreakerState
    transition: BreakerStateName | None  # the state entered by this check, if any


def admit(policy: BreakerPolicy, s: BreakerState, now: float) -> Admission:
    """May a request go now? Moves open to half-open when ``open_for`` has passed."""
    if s.state == "closed":
        return Admission(True, 0.0, s, None)
    reopen_at = s.changed_at + policy.open_for
    if s.state == "open":
        if now < reopen_at:
            return Admission(False, reopen_at - now, s, None)
        probing = replace(s, state="half_open", changed_at=now, probes=1)
        return Admission(True, 0.0, probing, "half_open")
    # half-open: a probe whose worker died never reports; after open_for more probes may go.
    if s.probes < policy.half_open_probes or now >= reopen_at:
        probes = s.probes + 1 if now < reopen_at else 1
        changed = s.changed_at if now < reopen_at else now
        return Admission(True, 0.0, replace(s, probes=probes, changed_at=changed), None)
    return Admission(False, max(0.0, reopen_at - now), s, None)


def record(
    policy: BreakerPolicy, s: BreakerState, ok: bool, now: float
) -> tuple[BreakerState, BreakerStateName | None]:
    """Account one finished request; returns the new state and the state entered, if any."""
    if s.state == "half_open":
        if ok:
            return BreakerState(state="closed", window_start=now, changed_at=now), "closed"
        return _open(s, now), "open"
    if s.state == "open":
        return s, None  # a late answer to a request admitted before the breaker opened
    if now - s.window_start >= policy.window:
        s = replace(s, window_start=now, calls=0, failed=0)
    calls = s.calls + 1
    failed = s.failed + (0 if ok else 1)
    consecutive = 0 if ok else s.consecutive + 1
    s = replace(s, calls=calls, failed=failed, consecutive=consecutive)
    if not ok and _trips(policy, s):
        return _open(s, now), "open"
    return s, None


def _trips(policy: BreakerPolicy, s: BreakerState) -> bool:
    if s.consecutive >= policy.failure_threshold:
        return True
    rate = policy.failure_rate
    return rate is not None and s.calls >= policy.min_calls and s.failed / s.calls >= rate


def _open(s: BreakerState, now: float) -> BreakerState:
    return BreakerState(state="open", window_start=now, changed_at=now)
