"""Predictive sync: a target forecast to fail is held until healthy, or routed elsewhere."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from spokehub import Client
from spokehub.distribution import inventory, service
from spokehub.distribution.demo.cms import CmsServer
from spokehub.distribution.demo.scenario import DIST
from spokehub.distribution.errors import ManifestError
from spokehub.distribution.forecast import judge, remember, retry_schedule, route_name
from spokehub.distribution.manifests import load_hub
from spokehub.intelligence.forecast import HealthBook
from tests.dist_support import AUTO_GATE, demo_hub, real_client, rollout
from tests.flaky_cms import FlakyCms

# Written before deliveries carried a time: the forecast places them a second apart.
FAILING = [{"ok": True, "s": 0.01}] * 4 + [{"ok": False, "s": 0.01}] * 3


def timed(entries: list[tuple[bool, float]], *, every: float = 60.0) -> list[dict[str, Any]]:
    """``[(ok, seconds)]`` as deliveries ``every`` seconds apart, the last one a minute ago."""
    now = time.time()
    n = len(entries)
    return [
        {"at": now - 60 - (n - 1 - i) * every, "ok": ok, "s": s}
        for i, (ok, s) in enumerate(entries)
    ]


SLOWDOWN = timed([(True, 0.01)] * 6 + [(True, 0.2)] * 5)


def test_the_forecast_explains_a_failure_burst_and_a_slowdown() -> None:
    now = time.time()
    assert not judge("t", [], now).risky
    burst = judge("t", FAILING, now)
    assert burst.risky
    assert "failure probability 44% is above 30%" in burst.reason
    slow = judge("t", SLOWDOWN, now)
    assert slow.risky, slow
    assert "latency change point at delivery 7 of 11" in slow.reason
    assert "x20.0" in slow.reason
    steady = judge("t", timed([(True, 0.1)] * 8), now)
    assert not steady.risky
    assert not steady.change_points
    assert len(remember([{"ok": True, "s": 1}] * 80, False, 2.0, now)) == 50


def test_the_retry_schedule_is_learnt_from_past_recoveries() -> None:
    now = time.time()
    # Two failures: back 0.3 s and 0.5 s later.
    history = [
        {"at": now - 100, "ok": True, "s": 0.01},
        {"at": now - 90, "ok": False, "s": 0.01},
        {"at": now - 89.7, "ok": True, "s": 0.01},
        {"at": now - 50, "ok": False, "s": 0.01},
        {"at": now - 49.5, "ok": True, "s": 0.01},
    ]
    learnt = retry_schedule(history, now, max_wait=10)
    assert learnt.learnt
    assert learnt.delays == [0.3, 0.2]
    assert "2 past recoveries took 0.3s, 0.5s" in learnt.reason
    assert retry_schedule(history, now, max_wait=0.4).delays == [0.3]
    assert retry_schedule(history, now, max_wait=0.2).delays == [0.2]  # one, at the bound
    # No recovery in the history: the documented default, within the bound.
    default = retry_schedule(timed([(True, 0.01), (False, 0.01)]), now, max_wait=0.6)
    assert not default.learnt
    assert default.delays == [0.15, 0.3, 0.15]
    assert retry_schedule(history, now, max_wait=0).delays == []


def test_the_predictive_settings_are_validated(tmp_path: Path) -> None:
    settings = "  predictive: {maxRetryWait: 2s, maxLatency: 500ms, window: 1h, halfLife: 10m}"
    with demo_hub(tmp_path) as (hub, cms, _):
        point_prod_at(hub, cms, settings)
        spec = load_hub(hub).get("Target", "cms-prod").spec["predictive"]
        assert spec["maxRetryWait"] == "2s"
        path = hub / "manifests/hub.yaml"
        path.write_text(path.read_text().replace("maxRetryWait: 2s", "maxRetryWait: soon"))
        with pytest.raises(ManifestError, match="maxRetryWait"):
            load_hub(hub)


def seed(client: Client, history: list[dict[str, Any]], **routes: list[bool]) -> None:
    """The target's delivery history, and health-book outcomes of its alternatives."""

    async def go() -> None:
        await client.ensure_schema()
        await inventory.set_target(client.store, DIST, "cms-prod", 0.0, detail={"history": history})
        book = HealthBook(client)
        for key, outcomes in routes.items():
            route = route_name(DIST, "cms-prod", int(key.removeprefix("alt")))
            for i, ok in enumerate(outcomes):
                await book.record(route, ok=ok, latency=0.01, at=time.time() - 600 + i)

    asyncio.run(go())


def point_prod_at(hub: Path, primary: CmsServer, extra: str) -> None:
    path = hub / "manifests/hub.yaml"
    text = path.read_text()
    head, _, tail = text.partition("metadata: {name: cms-prod")
    tail = tail.replace("space: prod}", "space: prod}\n" + extra, 1)
    tail = tail.replace(
        tail[tail.index('baseUrl: "') + 10 : tail.index('", space: prod')], primary.url, 1
    )
    path.write_text(head + "metadata: {name: cms-prod" + tail)


def decisions(trail: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [e["detail"] for e in trail if e["kind"] == kind]


def test_a_risky_target_that_stays_down_is_routed_to_its_alternative(
    db_url: str, tmp_path: Path
) -> None:
    client = real_client(db_url)
    try:
        with (
            demo_hub(tmp_path, edit=AUTO_GATE) as (hub, _, _),
            CmsServer() as down,
            CmsServer() as alt,
        ):
            down.state.faults = {"health": "down"}
            extra = "  predictive: {maxHold: 200ms, checkEvery: 100ms}\n"
            extra += f'  alternatives: [{{baseUrl: "{alt.url}"}}]'
            point_prod_at(hub, down, extra)
            seed(client, FAILING)
            result = rollout(client, hub, "r1")
            trail = asyncio.run(service.timeline(client, DIST, "r1"))
    finally:
        client.close()
    assert result["status"] == "Succeeded"
    assert down.state.writes == 0
    assert alt.state.writes == 8
    predicted = decisions(trail, "predict")
    assert [d["decision"] for d in predicted] == ["hold", "route"]
    assert "failure probability 44% is above 30%" in predicted[-1]["reason"]


def test_a_slowing_target_is_routed_to_the_alternative_with_the_better_forecast(
    db_url: str, tmp_path: Path
) -> None:
    """Alternative 0 answers its health check, but its history is failures: 1 is picked."""
    client = real_client(db_url)
    try:
        with (
            demo_hub(tmp_path, edit=AUTO_GATE) as (hub, _, _),
            CmsServer() as slow,
            CmsServer() as alt0,
            CmsServer() as alt1,
        ):
            slow.state.faults = {"health": "down"}
            extra = "  predictive: {maxHold: 200ms, checkEvery: 100ms}\n"
            extra += f'  alternatives: [{{baseUrl: "{alt0.url}"}}, {{baseUrl: "{alt1.url}"}}]'
            point_prod_at(hub, slow, extra)
            seed(client, SLOWDOWN, alt0=[False] * 5, alt1=[True] * 3)
            result = rollout(client, hub, "r1")
            trail = asyncio.run(service.timeline(client, DIST, "r1"))
    finally:
        client.close()
    assert result["status"] == "Succeeded"
    assert (slow.state.writes, alt0.state.writes, alt1.state.writes) == (0, 0, 8)
    predicted = decisions(trail, "predict")
    assert [d["decision"] for d in predicted] == ["hold", "route"]
    hold, route = predicted
    assert "deliveries slowed down: latency change point" in hold["reason"]
    assert route["endpoint"] == 1
    assert "alternative 1: dist:" in route["reason"]
    assert "skipped" in route["reason"]
    assert "#alt0 (failure probability" in route["reason"]
    assert not route["forecasts"]["0"]["healthy"]
    assert route["forecasts"]["1"]["healthy"]
    applied = [e["detail"] for e in trail if e["kind"] == "apply" and e["target"] == "cms-prod"]
    assert [a["endpoint"] for a in applied] == [1]


def test_a_held_target_proceeds_once_healthy(db_url: str, tmp_path: Path) -> None:
    client = real_client(db_url)
    try:
        with demo_hub(tmp_path, edit=AUTO_GATE) as (hub, _, _), CmsServer() as flaky:
            flaky.state.faults = {"health": "down"}
            point_prod_at(hub, flaky, "  predictive: {maxHold: 20s, checkEvery: 100ms}")
            seed(client, FAILING)
            healer = threading.Timer(0.3, lambda: setattr(flaky.state, "faults", {}))
            healer.start()
            result = rollout(client, hub, "r1")
            healer.join()
            trail = asyncio.run(service.timeline(client, DIST, "r1"))
    finally:
        client.close()
    assert result["status"] == "Succeeded"
    assert flaky.state.writes == 8
    assert [d["decision"] for d in decisions(trail, "predict")] == ["hold", "proceed"]


def test_no_alternative_stops_the_wave(db_url: str, tmp_path: Path) -> None:
    client = real_client(db_url)
    try:
        with demo_hub(tmp_path, edit=AUTO_GATE) as (hub, _, _), CmsServer() as down:
            down.state.faults = {"health": "down"}
            point_prod_at(hub, down, "  predictive: {maxHold: 100ms, checkEvery: 100ms}")
            seed(client, FAILING)
            result = rollout(client, hub, "r1")
    finally:
        client.close()
    assert result["status"] == "RolledBack"
    assert "forecast to fail" in result["reason"]
    assert down.state.writes == 0


# Two past failures the target recovered from 0.3 s and 0.5 s later; healthy otherwise.
RECOVERING = timed(
    [(True, 0.01)] * 4 + [(False, 0.01), (True, 0.01)] + [(True, 0.01)] * 4,
    every=60,
)
RECOVERING[5]["at"] = RECOVERING[4]["at"] + 0.3
RECOVERING.insert(8, {"at": RECOVERING[7]["at"] + 10, "ok": False, "s": 0.01})
RECOVERING.insert(9, {"at": RECOVERING[8]["at"] + 0.5, "ok": True, "s": 0.01})


def test_a_failed_delivery_is_retried_at_the_delays_its_history_supports(
    db_url: str, tmp_path: Path
) -> None:
    client = real_client(db_url)
    try:
        with (
            demo_hub(tmp_path, edit=AUTO_GATE) as (hub, _, _),
            FlakyCms(failures=2) as flaky,
        ):
            point_prod_at(hub, flaky, "  predictive: {maxRetryWait: 5s}")
            seed(client, RECOVERING)
            result = rollout(client, hub, "r1")
            trail = asyncio.run(service.timeline(client, DIST, "r1"))
    finally:
        client.close()
    assert result["status"] == "Succeeded", result
    assert flaky.state.writes == 8
    assert not decisions(trail, "predict")  # the history did not make it risky
    retries = decisions(trail, "retry")
    assert [r["decision"] for r in retries] == ["retry", "retry"]
    # From the seeded recoveries (0.3 s, 0.5 s), not the default (1 s doubling).
    assert [r["delay"] for r in retries] == [0.3, 0.2]
    assert [r["at"] for r in retries] == ["t+0.3s", "t+0.5s"]
    assert all(r["learnt"] for r in retries)
    assert "2 past recoveries took 0.3s, 0.5s" in retries[0]["reason"]
    assert "HTTP 503" in retries[0]["reason"]
    # The target really was called again no sooner than the schedule said.
    first, second, third = flaky.write_times[:3]
    assert second - first >= 0.3
    assert third - second >= 0.2
    applied = [e["detail"] for e in trail if e["kind"] == "apply" and e["target"] == "cms-prod"]
    assert [a["attempt"] for a in applied] == [3]


def test_a_target_that_never_recovered_exhausts_the_bound_and_rolls_back(
    db_url: str, tmp_path: Path
) -> None:
    client = real_client(db_url)
    try:
        with (
            demo_hub(tmp_path, edit=AUTO_GATE) as (hub, _, _),
            FlakyCms(failures=1000) as broken,
        ):
            point_prod_at(hub, broken, "  predictive: {maxRetryWait: 600ms, maxFailureRate: 0.95}")
            seed(client, timed([(True, 0.01)] * 3 + [(False, 0.01)] * 2))
            started = time.monotonic()
            result = rollout(client, hub, "r1")
            took = time.monotonic() - started
            trail = asyncio.run(service.timeline(client, DIST, "r1"))
    finally:
        client.close()
    assert result["status"] == "RolledBack", result
    assert "cms-prod" in result["reason"]
    assert broken.state.writes == 0
    retries = decisions(trail, "retry")
    assert [r["decision"] for r in retries] == ["retry", "retry", "retry", "give up"]
    assert [r["delay"] for r in retries[:3]] == [0.15, 0.3, 0.15]
    assert not any(r["learnt"] for r in retries[:3])
    assert "history has 0 recovery(ies)" in retries[0]["reason"]
    assert "still failing after 4 attempt(s) over 0.6s" in retries[-1]["reason"]
    assert len(broken.write_times) == 4
    assert took >= 0.6
    rolled = [e["target"] for e in trail if e["kind"] == "rollback"]
    assert "cms-prod" in rolled
    assert "cms-staging" in rolled


def test_a_precondition_failure_is_not_retried(db_url: str, tmp_path: Path) -> None:
    """An entry edited at the CMS while the target was held: the apply is refused, not retried."""
    client = real_client(db_url)
    try:
        with demo_hub(tmp_path, edit=AUTO_GATE) as (hub, cms, _), CmsServer() as held:
            held.state.faults = {"health": "down"}
            point_prod_at(hub, held, "  predictive: {maxHold: 20s, checkEvery: 100ms}")
            seed(client, FAILING)

            def edit_then_heal() -> None:
                deadline = time.monotonic() + 30
                while time.monotonic() < deadline:
                    with held.state.lock:
                        probed = ("GET", "/api/health") in held.state.requests
                    if probed:
                        break
                    time.sleep(0.02)
                with cms.state.lock:
                    key = next(k for k in cms.state.entries if k.startswith("staging:"))
                held.edit("prod", key.removeprefix("staging:"), {"edited": "by hand"})
                held.state.faults = {}

            editor = threading.Thread(target=edit_then_heal)
            editor.start()
            result = rollout(client, hub, "r1")
            editor.join()
            trail = asyncio.run(service.timeline(client, DIST, "r1"))
    finally:
        client.close()
    assert result["status"] == "RolledBack", result
    assert "PreconditionFailed" in result["reason"]
    retries = decisions(trail, "retry")
    assert [r["decision"] for r in retries] == ["give up"]
    assert retries[0]["reason"] == "PreconditionFailed is not retried"
