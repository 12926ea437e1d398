"""A drift check as a durable workflow: one run per check, one step per target.

``spokehub dist drift DIST`` starts one run of ``spokehub.distribution.drift`` and executes it
in the same process; a drift schedule (``drift_schedule``) makes a worker start one per tick.
Each target is one step (``spokehub.dist.drift_target``): it reads the target, compares it
with the inventory, records the check's state and, per the target's mode, corrects
(``correct``) or writes a proposal (``adopt``). ``detect`` and ``heal=False`` never write to a
target. A restart never repeats a finished target's step.
"""

from __future__ import annotations

import time
from typing import Any

from pydantic import BaseModel

from spokehub.distribution import inventory
from spokehub.distribution.drift import check_target
from spokehub.distribution.steps import context_for
from spokehub.runtime.definitions import step, workflow

DRIFT_WORKFLOW = "spokehub.distribution.drift"


class DriftRequest(BaseModel):
    """What one drift check is about; ``targets`` empty means every target of the distribution.

    ``at`` pins the check's clock (tests; correction budgets are counted against it).
    """

    hub: str
    distribution: str
    db: str
    targets: list[str] = []
    heal: bool = True
    at: float | None = None


def still_drifted(report: dict[str, Any]) -> bool:
    """True when a target's report (``TargetDrift.to_dict``) leaves drift behind."""
    uncorrected = [k for k in report.get("drifted", []) if k not in report.get("corrected", [])]
    return bool(uncorrected or report.get("fighting") or report.get("error"))


@step(name="spokehub.dist.drift_targets")
async def drift_targets(req: DriftRequest) -> list[str]:
    """The targets this check covers (read from the manifests once, then replayed)."""
    ctx = context_for(req.hub, req.distribution)
    if req.targets:
        return [ctx.target(name).name for name in req.targets]  # unknown names fail here
    return [t.name for t in ctx.targets()]


@step(name="spokehub.dist.drift_target")
async def drift_target(req: DriftRequest, target: str) -> dict[str, Any]:
    """Check one target, then heal or propose per its mode (when ``req.heal``)."""
    ctx = context_for(req.hub, req.distribution)
    now = time.time() if req.at is None else req.at
    async with inventory.open_state(req.db) as store:
        report = await check_target(ctx, store, ctx.target(target), now=now, heal=req.heal)
    return report.to_dict()


@workflow(name=DRIFT_WORKFLOW)
async def drift_check(req: DriftRequest) -> dict[str, Any]:
    """Check every target of ``req`` once; the result lists each target's report."""
    names = await drift_targets(req)
    reports = [await drift_target(req, name) for name in names]
    return {
        "distribution": req.distribution,
        "targets": reports,
        "remaining": [r["target"] for r in reports if still_drifted(r)],
    }
