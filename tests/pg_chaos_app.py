"""Workflows for the PostgreSQL failure tests; ``pg_chaos_worker.py`` processes import this.

Every step execution is written to the external ledger (``pg_chaos_ledger``): a start row,
the effect applied under the step's idempotency key, an end row. Each execution returns a
fresh token, so the ``step_completed`` result in spokehub's ledger names the execution
whose result was recorded.

``PG_CHAOS_SEED`` makes the transient failures of ``chaos_flow`` reproducible: whether an
attempt fails is a function of the seed, the idempotency key and the attempt number.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import random
import signal
import time
import uuid
from typing import Any

import spokehub as sh
from tests import pg_chaos_ledger as ledger

SEED_ENV = "PG_CHAOS_SEED"
FAIL_RATE = 0.15  # of first and second attempts of chaos steps


class TransientError(Exception):
    """What a flaky external system raises; the step's retry policy tries again."""


def _begin(step: str) -> tuple[sh.StepContext, str]:
    ctx = sh.step_context()
    token = uuid.uuid4().hex
    ledger.attempt_started(
        token=token,
        key=ctx.idempotency_key,
        run=ctx.run_id,
        seq=ctx.step,
        attempt=ctx.attempt,
        step=step,
    )
    return ctx, token


def _fails(ctx: sh.StepContext) -> bool:
    if ctx.attempt > 2:
        return False
    digest = hashlib.sha256(
        f"{os.environ.get(SEED_ENV, '0')}:{ctx.idempotency_key}:{ctx.attempt}".encode()
    ).digest()
    return int.from_bytes(digest[:4], "big") / 2**32 < FAIL_RATE


async def _sleep(token: str, seconds: float) -> None:
    """Sleep; an execution its worker cancels (lease lost, store error) says so."""
    try:
        await asyncio.sleep(seconds)
    except asyncio.CancelledError:
        ledger.attempt_ended(token=token, outcome="cancelled")
        raise


def _finish(ctx: sh.StepContext, token: str, value: int) -> dict[str, Any]:
    ledger.apply_effect(key=ctx.idempotency_key, token=token)
    ledger.attempt_ended(token=token, outcome="ok")
    return {"v": value, "token": token, "pid": os.getpid()}


_RETRY = sh.RetryPolicy(max_attempts=5, initial_delay=0.05, max_delay=0.2)


# -- chaos_flow: sequential and parallel steps, async and sync, transient failures, a sleep --
@sh.step(retry=_RETRY)
async def effect(n: int, k: int) -> dict[str, Any]:
    ctx, token = _begin("effect")
    await _sleep(token, random.uniform(0.05, 0.3))  # long enough for kills to land inside
    if _fails(ctx):
        ledger.attempt_ended(token=token, outcome="fail")
        raise TransientError(f"step {ctx.idempotency_key} attempt {ctx.attempt} fails")
    return _finish(ctx, token, n * 100 + k)


@sh.step(retry=_RETRY)
def effect_sync(n: int, k: int) -> dict[str, Any]:
    ctx, token = _begin("effect_sync")
    time.sleep(random.uniform(0.05, 0.3))
    if _fails(ctx):
        ledger.attempt_ended(token=token, outcome="fail")
        raise TransientError(f"step {ctx.idempotency_key} attempt {ctx.attempt} fails")
    return _finish(ctx, token, n * 100 + k)


@sh.workflow
async def chaos_flow(n: int) -> list[int]:
    first = await effect(n, 1)
    pair = await asyncio.gather(effect(n, 2), sh.call(effect_sync, n, 3))
    if n % 4 == 0:
        await sh.sleep(0.5)  # longer than the workers' inline wait: the run unloads
    fourth = await effect(n, 4)
    fifth = await sh.call(effect_sync, n, 5)
    return [first["v"], pair[0]["v"], pair[1]["v"], fourth["v"], fifth["v"]]


CHAOS_STEPS = 5


def expected_chaos_flow(n: int) -> list[int]:
    return [n * 100 + k for k in range(1, CHAOS_STEPS + 1)]


# -- long_flow: one long step, then a short one (pause, drain) -------------------------------
@sh.step(retry=sh.RetryPolicy(max_attempts=10, initial_delay=0.05))
async def slow_effect(seconds: float) -> dict[str, Any]:
    ctx, token = _begin("slow_effect")
    await _sleep(token, seconds)
    return _finish(ctx, token, 1)


@sh.step
async def quick_effect(k: int) -> dict[str, Any]:
    ctx, token = _begin("quick_effect")
    await _sleep(token, 0.05)
    return _finish(ctx, token, k)


@sh.workflow
async def long_flow(seconds: float) -> dict[str, Any]:
    slow = await slow_effect(seconds)
    quick = await quick_effect(2)
    return {"slow": slow, "quick": quick}


# -- quick_flow: the bystanders (dead-letter test) and the LISTEN probe ----------------------
@sh.workflow
async def quick_flow(n: int, steps: int = 1) -> list[int]:
    return [(await quick_effect(n * 10 + k))["v"] for k in range(steps)]


# -- poison_flow: its step kills the worker process that executes it -------------------------
@sh.step
def poison() -> None:
    _begin("poison")
    os.kill(os.getpid(), signal.SIGKILL)


@sh.workflow
async def poison_flow() -> None:
    await sh.call(poison)


# -- sleepy_flow: a durable sleep between two steps (clock skew) -----------------------------
@sh.workflow
async def sleepy_flow(seconds: float) -> list[int]:
    before = await quick_effect(1)
    await sh.sleep(seconds)
    after = await quick_effect(2)
    return [before["v"], after["v"]]
