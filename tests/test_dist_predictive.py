"""Predictive sync: a target forecast to fail is held until healthy, or routed elsewhere."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

from spokehub import Client
from spokehub.distribution import inventory, service
from spokehub.distribution.demo.cms import CmsServer
from spokehub.distribution.demo.scenario import DIST
from spokehub.distribution.forecast import forecast, remember
from tests.dist_support import AUTO_GATE, demo_hub, real_client, rollout

FAILING = [{"ok": True, "s": 0.01}] * 4 + [{"ok": False, "s": 0.01}] * 3


def test_forecast_from_failure_rate_and_latency() -> None:
    assert not forecast([]).risky
    assert forecast(FAILING).risky
    assert "failed" in forecast(FAILING).reason
    slow = [{"ok": True, "s": 0.1}] * 6 + [{"ok": True, "s": 0.5}] * 5
    assert forecast(slow).risky
    assert "slower" in forecast(slow).reason
    assert not forecast([{"ok": True, "s": 0.1}] * 8).risky
    assert len(remember([{"ok": True, "s": 1}] * 30, False, 2.0)) == 20


def seed(client: Client, history: list[dict[str, object]]) -> None:
    async def go() -> None:
        await client.ensure_schema()
        await inventory.set_target(client.store, DIST, "cms-prod", 0.0, detail={"history": history})

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
    decisions = [e["detail"]["decision"] for e in trail if e["kind"] == "predict"]
    assert decisions == ["hold", "route"]
    assert "failed" in next(
        e["detail"]["reason"] for e in trail if e["detail"].get("decision") == "route"
    )


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
    decisions = [e["detail"]["decision"] for e in trail if e["kind"] == "predict"]
    assert decisions == ["hold", "proceed"]


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
