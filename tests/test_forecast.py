"""Health forecasts: the pure verdict, the shared history, and holding/rerouting runs."""

from __future__ import annotations

import pytest

from spokehub import Client, step, workflow
from spokehub.intelligence.forecast import (
    HealthBook,
    HealthPolicy,
    Observation,
    TargetUnhealthy,
    choose_route,
    forecast,
    record_outcome,
    wait_until_healthy,
)
from spokehub.runtime.client import _sync
from spokehub.testing import FakeClock, run_until_idle

NOW = 1_700_000_000.0


def test_no_evidence_is_healthy_for_lack_of_evidence() -> None:
    f = forecast("cms", [], NOW)
    assert f.healthy
    assert "lack of evidence" in f.reason
    assert f.failure_probability == 0.5


def test_recent_failures_make_a_target_unhealthy_and_old_ones_fade() -> None:
    recent = [Observation(NOW - i * 10, ok=False) for i in range(5)]
    f = forecast("cms", recent, NOW)
    assert not f.healthy
    assert "failure probability" in f.reason
    # the same failures an hour ago, and successes since: healthy again
    old = [Observation(NOW - 3600 + i, ok=False) for i in range(5)]
    since = [Observation(NOW - 60 * i, ok=True) for i in range(1, 8)]
    g = forecast("cms", old + since, NOW, HealthPolicy(window=7200))
    assert g.healthy
    assert g.failure_probability < 0.2


def test_a_rising_latency_is_caught_before_it_crosses_the_limit() -> None:
    # latency climbs 0.01 s per second: 1.0 s now, 1.6 s projected a minute ahead
    points = [Observation(NOW - 100 + t, ok=True, latency=t * 0.01) for t in range(0, 101, 10)]
    policy = HealthPolicy(max_latency=1.5, horizon=60)
    f = forecast("web", points, NOW, policy)
    assert f.latency == pytest.approx(1.0)
    assert f.latency_slope == pytest.approx(0.01)
    assert f.projected_latency == pytest.approx(1.6)
    assert not f.healthy
    assert "rising" in f.reason
    # the same level, flat: healthy
    flat = [Observation(NOW - 100 + t, ok=True, latency=1.0) for t in range(0, 101, 10)]
    assert forecast("web", flat, NOW, policy).healthy


def test_observations_outside_the_window_are_ignored() -> None:
    old = [Observation(NOW - 10_000, ok=False) for _ in range(10)]
    assert forecast("x", old, NOW).observations == 0


def test_bad_policy_is_refused() -> None:
    with pytest.raises(ValueError, match="probability"):
        HealthPolicy(max_failure=2)
    with pytest.raises(ValueError, match="positive"):
        HealthPolicy(window=0)


def test_health_book_is_shared_through_the_database(client: Client, clock: FakeClock) -> None:
    book = HealthBook(client)
    for _ in range(4):
        _sync(book.record("cms", ok=False, latency=2.0))
        clock.advance(1)
    f = _sync(book.forecast("cms"))
    assert f.observations == 4
    assert not f.healthy
    other = HealthBook(client)  # another worker's view of the same database
    assert _sync(other.forecast("cms")).failure_probability == f.failure_probability
    with pytest.raises(ValueError, match="non-empty"):
        _sync(book.record(" ", ok=True))


@step
async def fc_deliver(target: str) -> str:
    return f"delivered to {target}"


@workflow
async def fc_hold_then_deliver(target: str, max_wait: float) -> str:
    verdict = await wait_until_healthy(target, max_wait=max_wait, interval=60)
    return await fc_deliver(f"{target} ({verdict.reason})")


@workflow
async def fc_route(routes: list[str]) -> str:
    choice = await choose_route(routes)
    await record_outcome(choice.route, ok=True, latency=0.1)
    return choice.route + " | " + choice.reason


def _fail(client: Client, target: str, n: int) -> None:
    book = HealthBook(client)
    for _ in range(n):
        _sync(book.record(target, ok=False))


def test_wait_until_healthy_holds_then_releases(client: Client, clock: FakeClock) -> None:
    _fail(client, "cms", 5)
    handle = client.start(fc_hold_then_deliver, "cms", 3600.0)
    run_until_idle(client, advance_time=False)
    assert handle.status().value == "waiting"
    book = HealthBook(client)
    clock.advance(30 * 60)  # the failures fade, and the target answers again
    for _ in range(6):
        _sync(book.record("cms", ok=True))
    run_until_idle(client)
    result = handle.result(timeout=5)
    assert result.startswith("delivered to cms")
    checks = [e for e in handle.events() if e.data.get("name") == "spokehub.health.check"]
    assert len([e for e in checks if e.kind.value == "step_completed"]) >= 2


def test_wait_until_healthy_gives_up_after_max_wait(client: Client, clock: FakeClock) -> None:
    _fail(client, "cms", 50)
    handle = client.start(fc_hold_then_deliver, "cms", 120.0)
    run_until_idle(client)
    with pytest.raises(Exception, match="stayed unhealthy for 120s"):
        handle.result(timeout=5)
    assert TargetUnhealthy.code == "target_unhealthy"


def test_choose_route_prefers_the_first_healthy_route(client: Client) -> None:
    _fail(client, "eu-primary", 5)
    handle = client.start(fc_route, ["eu-primary", "eu-secondary"])
    run_until_idle(client)
    result = handle.result(timeout=5)
    assert result.startswith("eu-secondary | eu-secondary is healthy")
    assert "skipped eu-primary" in result
    assert _sync(HealthBook(client).forecast("eu-secondary")).observations == 1
