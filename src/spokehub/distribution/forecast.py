"""Predictive sync: judge a target's next delivery, and learn its retry schedule, from its history.

A target's delivery history lives in its ``dist_targets`` row (``detail.history``, oldest first,
``{at, ok, s}`` per delivery; ``detail.alt_history[i]`` for its alternative endpoints). Two
questions are asked of it:

- **Will the next delivery fail?** (``judge``, before a wave.) The intelligence layer's health
  forecast (``spokehub.intelligence.forecast.forecast``: a time-decayed failure probability
  with a Laplace prior, and the latency trend projected ahead) plus its EWMA detector run over
  the history to find a change point: the delivery where latency (or failures) left their
  baseline. A target is risky when the forecast calls it unhealthy, or when a latency change
  point was found and the latest delivery is still ``SLOWDOWN`` times slower than the baseline.
- **When should a failed delivery be retried?** (``retry_schedule``, after a failure.) The
  times the target took to recover before (from the first failure of a run of failures to the
  next success) give the retry times: a retry at each past recovery time, so the target is
  tried again when it came back before. No retry is sooner than the target's median delivery
  time. With fewer than ``MIN_RECOVERIES`` recoveries the documented default applies: a first
  retry after ``DEFAULT_FIRST`` seconds (a quarter of the bound when that is shorter),
  doubling. Either way all retries fit in ``maxRetryWait``.

Every verdict and schedule carries its reason in words (they go to the audit trail).
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from spokehub.intelligence.detectors import EWMA
from spokehub.intelligence.forecast import HealthPolicy, Observation
from spokehub.intelligence.forecast import forecast as health_forecast

HISTORY = 50  # deliveries kept per endpoint
SLOWDOWN = 3.0  # latest latency / baseline that makes a latency change point risky
MIN_RECOVERIES = 2  # recoveries needed before the retry schedule is learnt
MAX_LEARNT_RETRIES = 6
DEFAULT_FIRST = 1.0  # seconds: the default schedule's first delay, doubling after
DEFAULT_MAX_RETRY_WAIT = 60.0
# Distribution deliveries are rarer than calls to a service: look back a day, half-life 1 h.
DEFAULT_POLICY = HealthPolicy(window=86_400.0, half_life=3_600.0, max_failure=0.3)


@dataclass(frozen=True, slots=True)
class ChangePoint:
    """Where a series left its baseline: ``index`` (0-based) of ``count`` values."""

    metric: str  # "latency" or "failures"
    index: int
    count: int
    baseline: float
    latest: float

    def describe(self) -> str:
        if self.metric == "latency":
            return (
                f"latency change point at delivery {self.index + 1} of {self.count}: "
                f"{self.baseline:.3f}s before, {self.latest:.3f}s latest "
                f"(x{self.latest / self.baseline:.1f})"
                if self.baseline > 0
                else f"latency change point at delivery {self.index + 1} of {self.count}"
            )
        return (
            f"failure change point at delivery {self.index + 1} of {self.count}: failure rate "
            f"{self.baseline:.0%} before"
        )


@dataclass(frozen=True, slots=True)
class Verdict:
    """Whether the next delivery is forecast to fail, with the figures and reason behind it."""

    risky: bool
    reason: str
    failure_probability: float = 0.0
    observations: int = 0
    projected_latency: float | None = None
    change_points: list[ChangePoint] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "risky": self.risky,
            "reason": self.reason,
            "failure_probability": round(self.failure_probability, 3),
            "observations": self.observations,
            "projected_latency": self.projected_latency,
            "change_points": [c.describe() for c in self.change_points],
        }


def route_name(distribution: str, target: str, endpoint: int | None = None) -> str:
    """The target's (or one alternative endpoint's) name in the intelligence health book."""
    base = f"dist:{distribution}/{target}"
    return base if endpoint is None else f"{base}#alt{endpoint}"


def observations(history: Sequence[Mapping[str, Any]], now: float) -> list[Observation]:
    """The history as the intelligence layer's observations.

    Entries written before deliveries carried a time (``{ok, s}`` only) are placed one second
    apart, ending a second before ``now``.
    """
    out = []
    n = len(history)
    for i, h in enumerate(history):
        at = h.get("at")
        when = float(at) if isinstance(at, (int, float)) else now - (n - i)
        out.append(Observation(when, bool(h.get("ok")), float(h.get("s", 0.0))))
    return out


def policy_for(spec: Mapping[str, Any]) -> HealthPolicy:
    """The health policy of a target's ``spec.predictive`` (seconds already parsed)."""
    return HealthPolicy(
        window=float(spec.get("window") or DEFAULT_POLICY.window),
        half_life=float(spec.get("halfLife") or DEFAULT_POLICY.half_life),
        horizon=DEFAULT_POLICY.horizon,
        max_failure=float(spec.get("maxFailureRate", DEFAULT_POLICY.max_failure)),
        max_latency=float(spec["maxLatency"]) if spec.get("maxLatency") else None,
        min_observations=DEFAULT_POLICY.min_observations,
    )


def change_point(values: Sequence[float], metric: str) -> ChangePoint | None:
    """The first value where an EWMA chart, warmed up on the first half, alarms upwards."""
    if len(values) < 6:
        return None
    warmup = len(values) // 2
    base = statistics.fmean(values[:warmup])
    # A flat baseline has sigma 0: a floor of a fifth of the level keeps wobbles quiet.
    chart = EWMA(alpha=0.3, limit=3.0, warmup=warmup, min_sigma=max(0.2 * base, 1e-3))
    for i, v in enumerate(values):
        alarm = chart.update(v)
        if alarm is not None and alarm.score > 0:
            return ChangePoint(metric, i, len(values), base, values[-1])
    return None


def judge(
    name: str,
    history: Sequence[Mapping[str, Any]],
    now: float,
    policy: HealthPolicy = DEFAULT_POLICY,
) -> Verdict:
    """Is the next delivery to ``name`` forecast to fail? (history oldest first)."""
    seen = observations(history, now)
    health = health_forecast(name, seen, now, policy)
    ordered = sorted(seen, key=lambda o: o.at)
    latencies = [o.latency or 0.0 for o in ordered if o.ok]
    points = [
        p
        for p in (
            change_point(latencies, "latency"),
            change_point([0.0 if o.ok else 1.0 for o in ordered], "failures"),
        )
        if p is not None
    ]
    slow = next(
        (
            p
            for p in points
            if p.metric == "latency" and p.baseline > 0 and p.latest >= SLOWDOWN * p.baseline
        ),
        None,
    )
    found = "; ".join(p.describe() for p in points)

    def verdict(risky: bool, reason: str) -> Verdict:
        return Verdict(
            risky,
            reason,
            health.failure_probability,
            health.observations,
            health.projected_latency,
            points,
        )

    if not health.healthy:
        return verdict(True, health.reason + (f"; {found}" if found else ""))
    if slow is not None and health.observations >= policy.min_observations:
        return verdict(True, f"deliveries slowed down: {found}")
    return verdict(False, health.reason + (f"; {found}" if found else ""))


def remember(
    history: Sequence[Mapping[str, Any]], ok: bool, seconds: float, at: float
) -> list[dict[str, Any]]:
    """The history with one more delivery, bounded to the last ``HISTORY``."""
    entry = {"at": round(at, 3), "ok": ok, "s": round(seconds, 4)}
    return [*map(dict, history), entry][-HISTORY:]


def recoveries(history: Sequence[Mapping[str, Any]], now: float) -> list[float]:
    """Seconds from the first failure of each run of failures to the next success."""
    out: list[float] = []
    failed_at: float | None = None
    for o in sorted(observations(history, now), key=lambda o: o.at):
        if not o.ok and failed_at is None:
            failed_at = o.at
        elif o.ok and failed_at is not None:
            out.append(round(o.at - failed_at, 3))
            failed_at = None
    return out


@dataclass(frozen=True, slots=True)
class RetrySchedule:
    """Delays (seconds, each after the previous attempt) and why these."""

    delays: list[float]
    reason: str
    learnt: bool

    def to_dict(self) -> dict[str, Any]:
        return {"delays": self.delays, "reason": self.reason, "learnt": self.learnt}


def retry_schedule(
    history: Sequence[Mapping[str, Any]], now: float, *, max_wait: float
) -> RetrySchedule:
    """When to retry a failed delivery, learnt from the target's own history."""
    if max_wait <= 0:
        return RetrySchedule([], "maxRetryWait is 0: failed deliveries are not retried", False)
    past = recoveries(history, now)
    took = [float(h.get("s", 0.0)) for h in history if h.get("ok")]
    floor = round(statistics.median(took), 3) if took else 0.0
    if len(past) < MIN_RECOVERIES:
        return _default_schedule(len(past), max_wait)
    times = sorted({max(t, floor) for t in past})
    within = [t for t in times if t <= max_wait]
    if not within:
        why = (
            f"past recoveries took {_seconds(times)}, longer than maxRetryWait "
            f"{max_wait:g}s: one retry at the bound"
        )
        return RetrySchedule([round(max_wait, 3)], why, True)
    if len(within) > MAX_LEARNT_RETRIES:  # evenly spread quantiles of the recovery times
        step = (len(within) - 1) / (MAX_LEARNT_RETRIES - 1)
        within = sorted({within[round(i * step)] for i in range(MAX_LEARNT_RETRIES)})
    delays = [round(b - a, 3) for a, b in zip([0.0, *within], within, strict=False)]
    why = (
        f"{len(past)} past recoveries took {_seconds(sorted(past))}"
        f"{f' (no retry sooner than the median delivery, {floor:g}s)' if floor else ''}: "
        f"retry at t+{', t+'.join(f'{t:g}s' for t in within)}"
    )
    return RetrySchedule(delays, why, True)


def _default_schedule(found: int, max_wait: float) -> RetrySchedule:
    delay = min(DEFAULT_FIRST, max_wait / 4)
    delays: list[float] = []
    total = 0.0
    while total < max_wait - 1e-9:
        d = min(delay, max_wait - total)
        delays.append(round(d, 3))
        total += d
        delay *= 2
    why = (
        f"history has {found} recovery(ies), {MIN_RECOVERIES} are needed to learn from: "
        f"default schedule, {delays[0]:g}s doubling within maxRetryWait {max_wait:g}s"
    )
    return RetrySchedule(delays, why, False)


def _seconds(values: Sequence[float]) -> str:
    return ", ".join(f"{v:g}s" for v in values)
