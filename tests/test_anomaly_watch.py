"""The anomaly watch on real runs: a step that suddenly takes ten times longer is flagged,
stored, counted and announced; a rising failure rate too."""

from __future__ import annotations

import random

import pytest
from prometheus_client import CollectorRegistry

from spokehub import Client, RetryPolicy, Settings, step, workflow
from spokehub.integrations.outbox import install_outbox, read
from spokehub.intelligence.watch import AnomalyRecord, AnomalyWatch, list_anomalies
from spokehub.runtime.client import _sync
from spokehub.testing import FakeClock, run_until_idle

CLOCK: dict[str, FakeClock] = {}
RNG = random.Random(3)


@step(retry=RetryPolicy(max_attempts=1))
async def aw_render(seconds: float, fail: bool) -> str:
    CLOCK["c"].advance(seconds)  # the step "takes" this long on the fake clock
    if fail:
        raise RuntimeError("render failed")
    return "ok"


@workflow
async def aw_publish(seconds: float, fail: bool = False) -> str:
    try:
        return await aw_render(seconds, fail)
    except Exception:
        return "failed"


def test_durations_and_failures_are_watched(db_url: str, clock: FakeClock) -> None:
    CLOCK["c"] = clock
    seen: list[AnomalyRecord] = []
    registry = CollectorRegistry()
    client = Client(settings=Settings(database_url=db_url), clock=clock)
    install_outbox(client)  # anomalies become domain events too
    watch = AnomalyWatch(client, on_anomaly=seen.append, registry=registry)
    client.interceptors = (watch,)
    try:
        for _ in range(40):
            client.start(aw_publish, RNG.gauss(1.0, 0.05))
        run_until_idle(client)
        assert seen == []  # normal variation is not an anomaly
        slow = client.start(aw_publish, 10.0)
        run_until_idle(client)
        assert [(a.metric, a.step, a.run_id) for a in seen] == [("duration", "aw_render", slow.id)]
        assert seen[0].expected == pytest.approx(1.0, abs=0.1)
        for _ in range(12):  # the failure rate jumps from 0 to 100%
            client.start(aw_publish, 1.0, True)
        run_until_idle(client)
        assert any(a.metric == "failure" for a in seen)
        _sync(watch.flush())
        stored = _sync(list_anomalies(client, workflow="aw_publish"))
        assert {a.metric for a in stored} == {"duration", "failure"}
        assert stored[-1].run_id == slow.id  # oldest last
        value = registry.get_sample_value(
            "spokehub_anomalies_total",
            {"metric": "duration", "workflow": "aw_publish", "step": "aw_render",
             "detector": "robust_z"},
        )  # fmt: skip
        assert value == 1.0
        messages = _sync(read(client.store, limit=1000))
        events = [m for m in messages if m.name == "anomaly.detected"]
        assert [m.payload["metric"] for m in events][:1] == ["duration"]
        assert events[0].payload["run_id"] == slow.id
        assert len(events) == len(stored)
    finally:
        client.close()


def test_custom_metrics(client: Client) -> None:
    watch = AnomalyWatch(client)
    for i in range(30):
        assert watch.observe("price", "catalog", "J-1", 100.0 + (i % 3), at=float(i)) is None
    flagged = watch.observe("price", "catalog", "J-1", 1.0, at=31.0, run_id="r-1")
    assert flagged is not None
    assert flagged.to_dict()["score"] < 0
