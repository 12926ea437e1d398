"""Use cases over a Client: plan, roll out, roll back, check drift, show status.

The CLI, the HTTP API and the demo call these; they never talk to adapters themselves.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from spokehub.distribution import audit, inventory
from spokehub.distribution.drift import TargetDrift, check_distribution
from spokehub.distribution.errors import DistributionError, PlanStale
from spokehub.distribution.plan import Plan
from spokehub.distribution.rollout import rollout_workflow
from spokehub.distribution.steps import RolloutRequest, context_for
from spokehub.distribution.sync import plan_distribution
from spokehub.runtime.client import Client, RunHandle
from spokehub.store.base import RunRecord
from spokehub.types import RunStatus

GateHook = Callable[[str, RunRecord], Awaitable[bool | None]]


def hub_path(hub: str | Path) -> str:
    return str(Path(hub).resolve())


async def plan(client: Client, hub: str | Path, distribution: str, release: str | None) -> Plan:
    """Plan ``release`` (default: the last one promoted) without writing anything."""
    await client.ensure_schema()
    ctx = context_for(hub_path(hub), distribution)
    chosen = release or await current_release(client, distribution)
    if chosen is None:
        raise DistributionError(
            f"{distribution} has no promoted release yet; name one: spokehub dist plan "
            f"{distribution} RELEASE"
        )
    return await plan_distribution(ctx, client.store, chosen)


async def current_release(client: Client, distribution: str) -> str | None:
    proms = await inventory.promotions(client.store, distribution)
    good = [p for p in proms if p["status"] == "Succeeded"]
    return max(good, key=lambda p: p["updated_at"])["release"] if good else None


async def start_rollout(
    client: Client,
    hub: str | Path,
    distribution: str,
    release: str,
    *,
    mode: str = "rollout",
    retry: bool = False,
    reason: str = "",
    expect_plan: str | None = None,
    run_id: str | None = None,
    actor: str = "cli",
) -> RunHandle[Any]:
    """Start the durable rollout workflow; with ``expect_plan`` refuse a plan that went stale."""
    await client.ensure_schema()
    root = hub_path(hub)
    context_for(root, distribution)  # bad manifests fail here, before a run exists
    if expect_plan is not None:
        fresh = await plan(client, root, distribution, release)
        if fresh.digest != expect_plan:
            raise PlanStale(
                f"the world changed since plan {expect_plan[:19]}: it is now {fresh.digest[:19]}; "
                "review the new plan (spokehub dist plan) and pass its digest"
            )
    req = RolloutRequest(
        hub=root,
        distribution=distribution,
        release=release,
        db=client.settings.database_url,
        mode=mode,
        retry=retry,
        reason=reason,
        actor=actor,
    )
    rid = run_id or f"dist-{distribution}-{release}-{int(time.time() * 1000)}"
    return await client.start_async(rollout_workflow.options(run_id=rid), req)


def pending_approval(run: RunRecord) -> str | None:
    for entry in (run.waiting_on or {}).get("approval", []):
        return str(entry["name"])
    return None


async def drive(client: Client, run_id: str, on_gate: GateHook | None = None) -> RunRecord:
    """Execute the run in this process until it ends, or waits for a human nobody answers.

    ``on_gate(name, run)`` may decide an approval (True approves, False rejects, None leaves
    it waiting and returns).
    """
    decided: set[str] = set()
    while True:
        run = await _execute(client, run_id, decided)
        name = pending_approval(run)
        if run.status.finished or name is None or on_gate is None:
            return run
        answer = await on_gate(name, run)
        if answer is None:
            return run
        decided.add(name)
        if answer:
            await client.approve_async(run_id, name=name, by="cli")
        else:
            await client.reject_async(run_id, name=name, by="cli")


async def _waits_for_human(client: Client, run: RunRecord, decided: set[str]) -> bool:
    """True when the run waits for an approval nobody has decided yet.

    The run row keeps listing the approval until a worker consumes the decision, so the
    inbox (decisions not yet consumed) is what tells "decided" from "waiting".
    """
    name = pending_approval(run)
    if run.status is not RunStatus.WAITING or name is None or name in decided:
        return False
    inbox = await client.store.inbox(run.id)
    return not any(item.kind == "approval" and item.name == name for item in inbox)


async def _execute(client: Client, run_id: str, decided: set[str]) -> RunRecord:
    """Run until the run ends or waits for an approval (even one with a timeout timer)."""
    from spokehub.runtime.worker import Worker

    run = await client.get_run_async(run_id)
    if run.status.finished or await _waits_for_human(client, run, decided):
        return run
    worker = Worker(client, queues=[run.queue], root_id=run.root_id)
    seen: dict[str, RunRecord] = {}

    async def check() -> bool:
        current = worker.watched_final or await client.get_run_async(run_id)
        seen["run"] = current
        return current.status.finished or await _waits_for_human(client, current, decided)

    await worker.run(until_async=check, watch=run_id)
    return seen.get("run") or await client.get_run_async(run_id)


async def rollback(
    client: Client, hub: str | Path, distribution: str, to: str, *, reason: str = ""
) -> RunHandle[Any]:
    proms = {p["release"]: p for p in await inventory.promotions(client.store, distribution)}
    if proms.get(to, {}).get("status") != "Succeeded":
        good = ", ".join(r for r, p in proms.items() if p["status"] == "Succeeded") or "none"
        raise DistributionError(
            f"{to} never succeeded for {distribution}; roll back to one that did ({good})"
        )
    return await start_rollout(
        client, hub, distribution, to, mode="rollback", retry=True, reason=reason or "rollback"
    )


async def drift(
    client: Client,
    hub: str | Path,
    distribution: str,
    *,
    heal: bool = True,
    now: float | None = None,
) -> list[TargetDrift]:
    await client.ensure_schema()
    ctx = context_for(hub_path(hub), distribution)
    return await check_distribution(ctx, client.store, now=now, heal=heal)


async def start_watch(
    client: Client,
    hub: str | Path,
    distribution: str,
    *,
    every: float,
    rounds: int,
    heal: bool = True,
) -> RunHandle[Any]:
    """Start the scheduled drift-check workflow (rounds of checks, durable timers between)."""
    from spokehub.distribution.watch import WatchRequest, drift_watch

    await client.ensure_schema()
    root = hub_path(hub)
    context_for(root, distribution)
    req = WatchRequest(
        hub=root,
        distribution=distribution,
        db=client.settings.database_url,
        every=every,
        rounds=rounds,
        heal=heal,
    )
    return await client.start_async(drift_watch, req)


async def status(client: Client, hub: str | Path, distribution: str) -> dict[str, Any]:
    """Per target: release, sync state, health, last drift check; and the promotions."""
    await client.ensure_schema()
    ctx = context_for(hub_path(hub), distribution)
    rows = await inventory.targets(client.store, distribution)
    invs = await inventory.load_all(client.store, distribution)
    targets = []
    for t in ctx.targets():
        row = rows.get(t.name, {})
        detail = row.get("detail", {})
        targets.append(
            {
                "target": t.name,
                "adapter": t.spec["adapter"],
                "labels": t.labels,
                "release": row.get("release"),
                "sync": row.get("sync", "Unknown"),
                "health": row.get("health", "Unknown"),
                "resources": len(invs.get(t.name, {})),
                "last_drift": detail.get("last_drift"),
            }
        )
    proms = await inventory.promotions(client.store, distribution)
    return {"distribution": distribution, "targets": targets, "promotions": proms}


async def distributions(client: Client) -> list[str]:
    """Every distribution that has been promoted at least once (from the store alone)."""
    await client.ensure_schema()

    def read(tx: Any) -> list[str]:
        rows = tx.execute("SELECT DISTINCT distribution FROM dist_promotions ORDER BY 1")
        return [str(r[0]) for r in rows.fetchall()]

    found: list[str] = await client.store.transact(read, write=False)
    return found


async def overview(client: Client, distribution: str) -> dict[str, Any]:
    """Status from the store alone (no hub folder needed): what the dashboard shows."""
    await client.ensure_schema()
    rows = await inventory.targets(client.store, distribution)
    invs = await inventory.load_all(client.store, distribution)
    targets = [
        {
            "target": name,
            "release": row.get("release"),
            "sync": row.get("sync", "Unknown"),
            "health": row.get("health", "Unknown"),
            "resources": len(invs.get(name, {})),
            "last_drift": (row.get("detail") or {}).get("last_drift"),
        }
        for name, row in sorted(rows.items())
    ]
    proms = await inventory.promotions(client.store, distribution)
    return {"distribution": distribution, "targets": targets, "promotions": proms}


async def timeline(
    client: Client, distribution: str, release: str | None = None
) -> list[dict[str, Any]]:
    await client.ensure_schema()
    found = await audit.entries(client.store, distribution=distribution, release=release)
    return [e.to_dict() for e in found]
