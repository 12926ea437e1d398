"""Workflows for the crash tests. The worker subprocesses (``crash_worker.py``) import this.

Every step records its external effect in an append-only JSON-lines file (path in the
``SPOKEHUB_CRASH_EFFECTS`` environment variable): a ``start`` line when an execution begins
and an ``end`` line when it returns, each written with one ``write`` on an ``O_APPEND`` file
descriptor and fsynced, so a SIGKILL can cut an execution between the two lines but never
tear a line. Each execution gets a fresh token that the step returns; the ledger's
``step_completed`` result therefore names the execution whose result was recorded, and the
test can prove that no execution of a recorded step happened after it.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import time
import uuid
from typing import Any

import spokehub as sh

EFFECTS_ENV = "SPOKEHUB_CRASH_EFFECTS"


def record_effect(kind: str, **data: Any) -> None:
    """Append one effect line (atomic with respect to a process kill) and fsync it."""
    line = json.dumps({"kind": kind, "pid": os.getpid(), "t": time.time(), **data}) + "\n"
    fd = os.open(os.environ[EFFECTS_ENV], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())
        os.fsync(fd)
    finally:
        os.close(fd)


def read_effects(path: str) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def _begin(step: str) -> tuple[sh.StepContext, str]:
    ctx = sh.step_context()
    token = uuid.uuid4().hex
    record_effect(
        "start",
        token=token,
        key=ctx.idempotency_key,
        run=ctx.run_id,
        seq=ctx.step,
        attempt=ctx.attempt,
        step=step,
    )
    return ctx, token


def _end(ctx: sh.StepContext, token: str, step: str) -> None:
    record_effect(
        "end", token=token, key=ctx.idempotency_key, run=ctx.run_id, seq=ctx.step, step=step
    )


async def _effect(step: str, value: Any) -> dict[str, Any]:
    ctx, token = _begin(step)
    await asyncio.sleep(random.uniform(0.0, 0.03))  # so that kills land inside steps
    _end(ctx, token, step)
    return {"v": value, "token": token}


# -- crash_flow: steps, gather fan-out, retries, a durable sleep, a sync step, a saga -----------
async def release(result: dict[str, Any], n: int) -> None:
    """Compensation of ``reserve``: records its execution like a step does."""
    ctx = sh.step_context()
    record_effect(
        "compensate",
        key=ctx.idempotency_key,
        run=ctx.run_id,
        seq=ctx.step,
        attempt=ctx.attempt,
        reserved=result["v"],
        n=n,
    )
    await asyncio.sleep(random.uniform(0.0, 0.02))


@sh.step(compensate=release)
async def reserve(n: int) -> dict[str, Any]:
    return await _effect("reserve", n * 1000)


@sh.step
async def work(n: int, k: int) -> dict[str, Any]:
    return await _effect("work", n * 1000 + k)


@sh.step(retry=sh.RetryPolicy(max_attempts=10, initial_delay=0.05, jitter=0.0))
async def flaky(n: int) -> dict[str, Any]:
    """Fails its first attempt (after its effect started), succeeds on a retry."""
    ctx, token = _begin("flaky")
    await asyncio.sleep(random.uniform(0.0, 0.02))
    if ctx.attempt == 1:
        record_effect("fail", token=token, key=ctx.idempotency_key, run=ctx.run_id, seq=ctx.step)
        raise RuntimeError("transient failure on the first attempt")
    _end(ctx, token, "flaky")
    return {"v": n * 1000 + 99, "token": token}


@sh.step
def work_sync(n: int) -> dict[str, Any]:
    """A plain (sync) step: runs in the worker's thread pool."""
    ctx, token = _begin("work_sync")
    time.sleep(random.uniform(0.0, 0.02))
    _end(ctx, token, "work_sync")
    return {"v": n * 1000 + 77, "token": token}


@sh.step(retry=sh.RetryPolicy(max_attempts=1))
async def explode(n: int) -> dict[str, Any]:
    ctx, token = _begin("explode")
    record_effect("fail", token=token, key=ctx.idempotency_key, run=ctx.run_id, seq=ctx.step)
    raise ValueError(f"run {n} fails on purpose")


async def _one(n: int, k: int) -> int:
    return int((await work(n, k))["v"])


async def _branch(n: int, k: int) -> list[int]:
    # After its first step, the branch spawns subtasks before its next calls: the case that
    # needs replay to wake tasks in exactly the live order to number calls the same way.
    first = await work(n, k)
    rest = await asyncio.gather(_one(n, k * 10), _one(n, k * 10 + 1))
    return [first["v"], *rest]


@sh.workflow
async def crash_flow(n: int, fail: bool = False) -> list[Any]:
    reserved = await reserve(n)
    head = await work(n, 1)
    parts = await asyncio.gather(*(_branch(n, k) for k in (2, 3, 4)))
    retried = await flaky(n)
    await sh.sleep(0.2)
    synced = await sh.call(work_sync, n)
    if fail:
        await explode(n)
    return [reserved["v"], head["v"], parts, retried["v"], synced["v"]]


CRASH_FLOW_STEPS = 13  # step calls of a run that completes; a failing run makes one more


def expected_crash_flow(n: int) -> list[Any]:
    """What ``crash_flow(n)`` returns, evaluated without the engine."""
    base = n * 1000
    parts = [[base + k, base + k * 10, base + k * 10 + 1] for k in (2, 3, 4)]
    return [base, base + 1, parts, base + 99, base + 77]


# -- signal_flow: a durable timer, then signals (one pre-sent, two awaited in a gather) ----------
@sh.step
async def mark(n: int, where: str) -> dict[str, Any]:
    return await _effect(f"mark-{where}", f"{n}:{where}")


@sh.workflow
async def signal_flow(n: int, timer: float) -> dict[str, Any]:
    before = await mark(n, "before")
    await sh.sleep(timer)
    go = await sh.wait_for_signal("go")
    items = await asyncio.gather(sh.wait_for_signal("item"), sh.wait_for_signal("item"))
    after = await mark(n, "after")
    return {"marks": [before["v"], after["v"]], "go": go, "items": sorted(items)}


# -- start_target: a workflow only started (never executed) by the idempotent-start test -------
@sh.workflow
async def start_target(x: int) -> int:
    return x
