"""Health forecasts per target, and the workflow calls that hold or reroute work on them.

Every call to a target (a delivery, a health probe) can be recorded as an observation: when,
whether it worked, how long it took. ``forecast`` turns a target's recent observations into
a verdict that looks slightly ahead:

- the **failure probability** is a time-decayed failure rate (recent outcomes weigh more,
  half-life ``half_life`` seconds) with a Laplace prior, so two failures out of two do not
  read as certainty and an idle target drifts back towards "unknown" rather than "bad";
- the **latency trend** is the least-squares slope of latency over the window, projected
  ``horizon`` seconds ahead: a target getting slower is caught before it times out.

A target is healthy when the failure probability is at most ``max_failure`` and the projected
latency at most ``max_latency`` (when set). Every verdict carries its reason in words.

In workflows, ``wait_until_healthy`` re-checks with durable sleeps until the target is
healthy or ``max_wait`` passes, and ``choose_route`` picks the healthiest of several
endpoints. Both check inside steps, so the verdict a run acted on is in its ledger and a
replay acts on the same one.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, TypeVar

from spokehub.errors import SpokehubError
from spokehub.runtime.client import Client
from spokehub.runtime.context import current_client as _current_client
from spokehub.runtime.definitions import step
from spokehub.runtime.primitives import sleep
from spokehub.store.base import Tx

T = TypeVar("T")

__all__ = [
    "Forecast",
    "HealthBook",
    "HealthPolicy",
    "Observation",
    "TargetUnhealthy",
    "choose_route",
    "forecast",
    "record_outcome",
    "wait_until_healthy",
]


class TargetUnhealthy(SpokehubError):
    """A target stayed unhealthy for the whole bounded wait."""

    code = "target_unhealthy"


@dataclass(frozen=True, slots=True)
class Observation:
    at: float
    ok: bool
    latency: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class HealthPolicy:
    """What counts as healthy, and how far back and ahead to look.

    Attributes:
        window: seconds of history considered.
        half_life: seconds after which an outcome weighs half as much.
        horizon: seconds ahead the latency trend is projected.
        max_failure: the highest failure probability still called healthy.
        max_latency: the highest projected latency (seconds) still healthy; None: no limit.
        min_observations: below this many, the target is healthy for lack of evidence
            (a new target is not held back forever).
    """

    window: float = 900.0
    half_life: float = 300.0
    horizon: float = 60.0
    max_failure: float = 0.2
    max_latency: float | None = None
    min_observations: int = 3

    def __post_init__(self) -> None:
        if self.window <= 0 or self.half_life <= 0 or self.horizon < 0:
            raise ValueError("window and half_life must be positive, horizon not negative")
        if not 0 <= self.max_failure <= 1:
            raise ValueError("max_failure is a probability between 0 and 1")


@dataclass(frozen=True, slots=True)
class Forecast:
    """A target's health verdict at ``at``, with the figures behind it."""

    target: str
    at: float
    healthy: bool
    failure_probability: float
    observations: int
    latency: float | None  # the latest observed latency
    projected_latency: float | None
    latency_slope: float | None  # seconds of latency per second of time
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def forecast(
    target: str,
    observations: Sequence[Observation],
    now: float,
    policy: HealthPolicy = HealthPolicy(),
) -> Forecast:
    """The verdict for ``target`` at ``now`` from its observations (any order)."""
    recent = sorted((o for o in observations if now - policy.window <= o.at <= now), key=_at)
    decay = math.log(2) / policy.half_life
    weights = [math.exp(-decay * (now - o.at)) for o in recent]
    failed = sum(w for w, o in zip(weights, recent, strict=True) if not o.ok)
    probability = (failed + 1.0) / (sum(weights) + 2.0)  # Laplace: no data reads as 0.5
    timed = [(o.at, o.latency) for o in recent if o.latency is not None]
    latest = timed[-1][1] if timed else None
    slope = _slope(timed)
    projected = None
    if latest is not None:
        projected = max(latest + (slope or 0.0) * policy.horizon, 0.0)
    healthy, reason = _verdict(len(recent), probability, projected, slope, policy)
    return Forecast(
        target, now, healthy, round(probability, 6), len(recent), latest,
        None if projected is None else round(projected, 6),
        None if slope is None else round(slope, 9), reason,
    )  # fmt: skip


def _verdict(
    count: int,
    probability: float,
    projected: float | None,
    slope: float | None,
    policy: HealthPolicy,
) -> tuple[bool, str]:
    if count < policy.min_observations:
        return True, f"only {count} observation(s) in the window: healthy for lack of evidence"
    if probability > policy.max_failure:
        return False, (
            f"failure probability {probability:.0%} is above {policy.max_failure:.0%} "
            f"(time-decayed over {count} observations)"
        )
    if policy.max_latency is not None and projected is not None and projected > policy.max_latency:
        trend = f"rising {slope * 60:.3f}s per minute" if slope and slope > 0 else "flat"
        return False, (
            f"latency projected at {projected:.3f}s in {policy.horizon:.0f}s ({trend}) is "
            f"above {policy.max_latency:.3f}s"
        )
    return True, f"failure probability {probability:.0%} over {count} observations"


def _slope(points: Sequence[tuple[float, float]]) -> float | None:
    if len(points) < 3:
        return None
    n = len(points)
    mean_t = sum(t for t, _ in points) / n
    mean_y = sum(y for _, y in points) / n
    var = sum((t - mean_t) ** 2 for t, _ in points)
    if var == 0:
        return None
    return sum((t - mean_t) * (y - mean_y) for t, y in points) / var


def _at(o: Observation) -> float:
    return o.at


class HealthBook:
    """Observations of targets, kept in the spokehub database (shared by every worker)."""

    def __init__(self, client: Client, *, keep: int = 500) -> None:
        self._client = client
        self._keep = keep

    async def _tx(self, fn: Callable[[Tx], T], *, write: bool = True) -> T:
        await self._client.ensure_schema()
        return await self._client.store.transact(fn, write=write)

    async def record(
        self, target: str, *, ok: bool, latency: float | None = None, at: float | None = None
    ) -> None:
        """Record one outcome of a call to ``target``."""
        _check_target(target)
        when = self._client.clock.now() if at is None else at

        def insert(tx: Tx) -> None:
            tx.execute(
                "INSERT INTO target_health (target, at, ok, latency) VALUES (?, ?, ?, ?)",
                (target, when, 1 if ok else 0, latency),
            )

        await self._tx(insert)

    async def observations(self, target: str, *, since: float) -> list[Observation]:
        _check_target(target)

        def select(tx: Tx) -> list[Observation]:
            rows = tx.execute(
                "SELECT at, ok, latency FROM target_health WHERE target = ? AND at >= ? "
                "ORDER BY at DESC LIMIT ?",
                (target, since, self._keep),
            ).fetchall()
            return [Observation(float(r[0]), bool(r[1]), r[2]) for r in rows]

        return await self._tx(select, write=False)

    async def forecast(
        self, target: str, policy: HealthPolicy = HealthPolicy(), *, now: float | None = None
    ) -> Forecast:
        at = self._client.clock.now() if now is None else now
        seen = await self.observations(target, since=at - policy.window)
        return forecast(target, seen, at, policy)


def _check_target(target: str) -> None:
    if not isinstance(target, str) or not target.strip():
        raise ValueError("a target is named by a non-empty string")


def _running_client() -> Client:
    client: Client | None = _current_client()
    if client is None:
        raise SpokehubError("this call works only inside a step of a running workflow")
    return client


# -- in workflows -----------------------------------------------------------------------------
@step(name="spokehub.health.check")
async def _check(target: str, policy: dict[str, Any]) -> dict[str, Any]:
    book = HealthBook(_running_client())
    return (await book.forecast(target, HealthPolicy(**policy))).to_dict()


@step(name="spokehub.health.record")
async def _record(target: str, ok: bool, latency: float | None) -> None:
    await HealthBook(_running_client()).record(target, ok=ok, latency=latency)


async def record_outcome(target: str, *, ok: bool, latency: float | None = None) -> None:
    """Record, from workflow code, how a call to ``target`` went (a step: recorded once)."""
    await _record(target, ok, latency)


async def wait_until_healthy(
    target: str,
    *,
    max_wait: float,
    interval: float = 30.0,
    policy: HealthPolicy = HealthPolicy(),
) -> Forecast:
    """Hold the run until ``target`` is forecast healthy; durable sleeps between checks.

    Returns the healthy forecast. Raises ``TargetUnhealthy`` (with the last reason) when the
    target is still unhealthy ``max_wait`` seconds after the first check.
    """
    if max_wait < 0 or interval <= 0:
        raise ValueError("max_wait must be >= 0 and interval > 0")
    first = current = Forecast(**await _check(target, asdict(policy)))
    while not current.healthy:
        left = first.at + max_wait - current.at
        if left <= 0:
            raise TargetUnhealthy(
                f"target {target!r} stayed unhealthy for {max_wait:g}s: {current.reason}"
            )
        await sleep(min(interval, left))
        current = Forecast(**await _check(target, asdict(policy)))
    return current


@dataclass(frozen=True, slots=True)
class RouteChoice:
    """The route ``choose_route`` picked, every route's forecast, and why."""

    route: str
    forecasts: list[Forecast]
    reason: str


@step(name="spokehub.health.choose_route")
async def _choose(routes: list[str], policy: dict[str, Any]) -> dict[str, Any]:
    book = HealthBook(_running_client())
    rules = HealthPolicy(**policy)
    seen = [await book.forecast(route, rules) for route in routes]
    healthy = [f for f in seen if f.healthy]
    if healthy:
        best = healthy[0]
        skipped = [f"{f.target} ({f.reason})" for f in seen[: seen.index(best)]]
        why = f"{best.target} is healthy: {best.reason}"
        if skipped:
            why += "; skipped " + ", ".join(skipped)
    else:
        best = min(seen, key=lambda f: f.failure_probability)
        why = f"no route is healthy; {best.target} has the lowest failure probability"
    return {"route": best.target, "forecasts": [f.to_dict() for f in seen], "reason": why}


async def choose_route(
    routes: Sequence[str], *, policy: HealthPolicy = HealthPolicy()
) -> RouteChoice:
    """Pick the first healthy route in order of preference, else the least unhealthy one."""
    if not routes:
        raise ValueError("choose_route needs at least one route")
    out = await _choose(list(routes), asdict(policy))
    return RouteChoice(out["route"], [Forecast(**f) for f in out["forecasts"]], out["reason"])
