"""Scheduled drift checks as a durable workflow: check, sleep ``interval``, check again.

``spokehub dist drift DIST --every 10m --rounds 6`` starts it; any
``spokehub worker --app spokehub.distribution`` runs it (a schedule or cron starts the next
batch of rounds: a run's history grows with each round, so one run does not loop forever).
Each round is one step, so a restart never repeats a finished round, and the wait between
rounds is a durable timer.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from spokehub.distribution import inventory
from spokehub.distribution.drift import check_distribution
from spokehub.distribution.steps import context_for
from spokehub.runtime.definitions import step, workflow
from spokehub.runtime.primitives import sleep

WATCH_WORKFLOW = "spokehub.distribution.drift_watch"


class WatchRequest(BaseModel):
    hub: str
    distribution: str
    db: str
    every: float = 600.0
    rounds: int = Field(default=1, ge=1, le=1000)
    heal: bool = True


@step(name="spokehub.dist.drift_round")
async def drift_round(req: WatchRequest, round_no: int) -> dict[str, Any]:
    """One drift check of every target (healing per each target's mode when ``heal``)."""
    ctx = context_for(req.hub, req.distribution)
    async with inventory.open_state(req.db) as store:
        reports = await check_distribution(ctx, store, heal=req.heal)
    return {
        "round": round_no,
        "drifted": {r.target: [x.key for x in r.drifted()] for r in reports if r.drifted()},
        "corrected": {r.target: r.corrected for r in reports if r.corrected},
        "fighting": [r.target for r in reports if r.fighting],
    }


@workflow(name=WATCH_WORKFLOW)
async def drift_watch(req: WatchRequest) -> list[dict[str, Any]]:
    """Check drift every ``req.every`` seconds, ``req.rounds`` times."""
    results: list[dict[str, Any]] = []
    for n in range(1, req.rounds + 1):
        if n > 1:
            await sleep(req.every)  # durable: the next round survives restarts
        results.append(await drift_round(req, n))
    return results
