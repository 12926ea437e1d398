"""Metrics: run real workflows, scrape, parse the exposition back and count."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from spokehub import Client, RetryPolicy, Settings, approval, step, wait_for_signal, workflow
from spokehub.errors import SpokehubError
from spokehub.observability import Observability
from spokehub.store.base import WorkerInfo
from spokehub.testing import FakeClock, run_until_idle, run_until_idle_async

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@step(retry=RetryPolicy(max_attempts=1))
async def obs_mx_work(fail: bool) -> str:
    if fail:
        raise ValueError("bad input")
    return "done"


@workflow
async def obs_mx_flow(fail: bool = False) -> str:
    return await obs_mx_work(fail)


TRIES: dict[str, int] = {}


@step(retry=RetryPolicy(max_attempts=3, initial_delay=1, jitter=0))
async def obs_mx_flaky(key: str) -> None:
    TRIES[key] = TRIES.get(key, 0) + 1
    if TRIES[key] < 3:
        raise ConnectionError("refused")


@workflow
async def obs_mx_retry(key: str) -> None:
    await obs_mx_flaky(key)


@workflow
async def obs_mx_gate(x: int) -> int:
    await obs_mx_work(False)
    await approval("publish", subject={"x": x})
    return x


@workflow
async def obs_mx_signal() -> str:
    await obs_mx_work(False)
    return str(await wait_for_signal("go"))


@workflow(queue="obs-mx-elsewhere")
async def obs_mx_unserved() -> None:
    pass


def instrumented(db: Path, clock: FakeClock) -> tuple[Client, Observability]:
    client = Client(settings=Settings(database_url=f"sqlite:///{db}"), clock=clock)
    obs = Observability()
    obs.instrument(client)
    return client, obs


def scrape(obs: Observability) -> Samples:
    body, content_type = asyncio.run(obs.render())
    assert content_type.startswith("text/plain")
    return parse(body)


def parse(body: bytes) -> Samples:
    samples: Samples = {}
    for family in text_string_to_metric_families(body.decode()):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_counters_and_histograms_after_runs(tmp_path: Path) -> None:
    client, obs = instrumented(tmp_path / "m.db", FakeClock())
    with client:
        for _ in range(3):
            client.start(obs_mx_flow)
        for _ in range(2):
            client.start(obs_mx_flow, fail=True)
        client.start(obs_mx_retry, "metrics-retry")
        run_until_idle(client)
        samples = scrape(obs)

    assert value(samples, "spokehub_runs_started_total", workflow="obs_mx_flow") == 5
    finished = "spokehub_runs_finished_total"
    assert value(samples, finished, workflow="obs_mx_flow", status="completed") == 3
    assert value(samples, finished, workflow="obs_mx_flow", status="failed") == 2
    assert value(samples, finished, workflow="obs_mx_retry", status="completed") == 1
    attempts = "spokehub_step_attempts_total"
    assert value(samples, attempts, workflow="obs_mx_flow", step="obs_mx_work", outcome="ok") == 3
    assert (
        value(samples, attempts, workflow="obs_mx_flow", step="obs_mx_work", outcome="error") == 2
    )
    flaky = {"workflow": "obs_mx_retry", "step": "obs_mx_flaky"}
    assert value(samples, attempts, **flaky, outcome="error") == 2
    assert value(samples, attempts, **flaky, outcome="ok") == 1
    assert value(samples, "spokehub_step_retries_total", **flaky) == 2
    # one duration observation per attempt
    duration = "spokehub_step_duration_seconds_count"
    assert value(samples, duration, workflow="obs_mx_flow", step="obs_mx_work") == 5
    assert value(samples, duration, **flaky) == 3
    runs = "spokehub_run_duration_seconds_count"
    assert value(samples, runs, workflow="obs_mx_flow", status="completed") == 3
    assert value(samples, runs, workflow="obs_mx_flow", status="failed") == 2
    # the retry waited 1 s then 2 s of durable backoff on the fake clock
    total = value(
        samples, "spokehub_run_duration_seconds_sum", workflow="obs_mx_retry", status="completed"
    )
    assert total == pytest.approx(3.0, abs=0.01)


def test_gauges_come_from_the_store(tmp_path: Path) -> None:
    clock = FakeClock()
    client, obs = instrumented(tmp_path / "m.db", clock)
    with client:
        for x in (1, 2):
            client.start(obs_mx_gate, x)
        client.start(obs_mx_signal)
        run_until_idle(client)  # all three wait: two for an approval, one for a signal
        client.start(obs_mx_unserved)  # on a queue no worker serves
        now = clock.now()
        asyncio.run(
            client.store.report_worker(
                WorkerInfo(
                    owner="box:42:abcd",
                    name="box",
                    host="box",
                    pid=42,
                    queues=("default",),
                    concurrency=8,
                    active=3,
                    state="running",
                    started_at=now - 100,
                    heartbeat_at=now - 12,
                )
            )
        )
        clock.advance(30)
        samples = scrape(obs)
        client.approve(client.list_runs(workflow="obs_mx_gate")[0].id)
        run_until_idle(client)
        after = scrape(obs)

    assert value(samples, "spokehub_queue_runs", queue="default", status="waiting") == 3
    assert value(samples, "spokehub_queue_runs", queue="obs-mx-elsewhere", status="pending") == 1
    age = value(samples, "spokehub_queue_oldest_pending_age_seconds", queue="obs-mx-elsewhere")
    assert age == pytest.approx(30, abs=0.5)
    assert value(samples, "spokehub_approvals_pending", workflow="obs_mx_gate") == 2
    assert value(samples, "spokehub_approvals_pending", workflow="obs_mx_signal") == 0
    heartbeat = value(
        samples, "spokehub_worker_heartbeat_age_seconds", worker="box:42:abcd", state="running"
    )
    assert heartbeat == pytest.approx(42, abs=0.5)
    assert value(samples, "spokehub_worker_active_runs", worker="box:42:abcd") == 3
    assert value(after, "spokehub_approvals_pending", workflow="obs_mx_gate") == 1
    assert value(after, "spokehub_queue_runs", queue="default", status="waiting") == 2


def test_a_run_finished_elsewhere_is_timed_from_its_ledger(tmp_path: Path) -> None:
    """The finishing process did not start the run and ran no step in its last activation."""
    db, clock = tmp_path / "m.db", FakeClock()
    starter, _ = instrumented(db, clock)
    with starter:
        handle = starter.start(obs_mx_signal)
        run_until_idle(starter)
    clock.advance(90)
    finisher, obs = instrumented(db, clock)

    async def finish() -> bytes:
        await finisher.send_signal_async(handle.id, "go", "yes")
        await run_until_idle_async(finisher)
        await obs.settle()
        body, _ = await obs.render()
        await finisher.close_async()
        return body

    samples = parse(asyncio.run(finish()))
    labels = {"workflow": "obs_mx_signal", "status": "completed"}
    assert value(samples, "spokehub_run_duration_seconds_count", **labels) == 1
    assert value(samples, "spokehub_run_duration_seconds_sum", **labels) == pytest.approx(90, abs=1)


def test_registries_are_separate_and_render_needs_a_client(tmp_path: Path) -> None:
    one, two = Observability(), Observability()
    assert one.metrics.registry is not two.metrics.registry
    with pytest.raises(SpokehubError, match="instrument"):
        asyncio.run(one.render())
    client, obs = instrumented(tmp_path / "m.db", FakeClock())
    with client, pytest.raises(SpokehubError, match="already"):
        obs.instrument(client)
