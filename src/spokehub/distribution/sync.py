"""Plan and apply against real targets: the I/O around the pure ``plan.diff_target``.

Adapters are synchronous (files, git, HTTP); the async functions here run them in a thread so a
worker's event loop keeps serving other targets of the same wave. A target that fails or
answers garbage yields a plan with ``error`` set (shown as Degraded), never a crash.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from spokehub.distribution import inventory
from spokehub.distribution.errors import PlanStale
from spokehub.distribution.inventory import Change, Entry
from spokehub.distribution.manifests import Manifest
from spokehub.distribution.model import (
    Action,
    ApplyContext,
    DesiredResource,
    HealthStatus,
    Observed,
    Op,
    OpResult,
    Scope,
)
from spokehub.distribution.plan import Plan, TargetPlan, diff_target
from spokehub.distribution.wiring import DistContext
from spokehub.store import Store

ACK_CHUNK = 16
PLAN_THREADS = 8


def idempotency_key(release_digest: str, target: str, key: str, after: str | None) -> str:
    """``H(release digest, target, resource key, desired digest)``: equal keys, equal effect."""
    text = f"{release_digest}\n{target}\n{key}\n{after}"
    return hashlib.sha256(text.encode()).hexdigest()[:40]


def plan_target_sync(
    ctx: DistContext,
    release: str,
    target: Manifest,
    inv: Mapping[str, Entry],
    desired: Mapping[str, DesiredResource] | None = None,
    *,
    discover: bool = True,
    endpoint: int | None = None,
) -> TargetPlan:
    """Read the target and diff it; adapter failures become ``TargetPlan.error``."""
    try:
        adapter = ctx.adapter(target.name, endpoint)
        want = dict(desired) if desired is not None else ctx.desired(release, target, endpoint)
        facts = ctx.facts(target, endpoint)
        keys = sorted(set(want) | set(inv))
        observed = adapter.read(keys) if facts.can_read else {}
        found = list(adapter.discover(Scope())) if discover and facts.can_read else []
        return diff_target(target.name, want, observed, inv, found, facts)
    except Exception as exc:  # a target answering garbage is Degraded, never a crash
        return TargetPlan(target.name, [], error=f"{type(exc).__name__}: {exc}")


async def plan_target(ctx: DistContext, store: Store, release: str, target: Manifest) -> TargetPlan:
    inv = await inventory.load(store, ctx.name, target.name)
    return await asyncio.to_thread(plan_target_sync, ctx, release, target, inv)


async def plan_distribution(
    ctx: DistContext, store: Store, release: str, *, targets: list[Manifest] | None = None
) -> Plan:
    """The whole plan; nothing is written anywhere."""
    ctx.release_digest(release)  # an unknown release fails here, before any read
    invs = await inventory.load_all(store, ctx.name)
    chosen = ctx.targets() if targets is None else targets
    if chosen:
        ctx.target(chosen[0].name)  # builds the name index once, before the threads

    def one(t: Manifest) -> TargetPlan:
        return plan_target_sync(ctx, release, t, invs.get(t.name, {}))

    # Reading targets waits on disks and networks, not on the CPU: several at once.
    with ThreadPoolExecutor(max_workers=PLAN_THREADS, thread_name_prefix="spokehub-plan") as pool:
        plans = await asyncio.get_running_loop().run_in_executor(
            None, lambda: list(pool.map(one, chosen))
        )
    return Plan(ctx.name, release, plans)


@dataclass(slots=True)
class ApplyOutcome:
    target: str
    results: list[OpResult] = field(default_factory=list)
    health: str = HealthStatus.UNKNOWN.value
    reason: str = ""
    seconds: float = 0.0

    @property
    def changed(self) -> int:
        return sum(1 for r in self.results if r.changed)

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "changed": self.changed,
            "applied": [
                {"key": r.key, "action": r.action.value, "digest": r.digest, "changed": r.changed}
                for r in self.results
            ],
            "health": self.health,
            "reason": self.reason,
            "seconds": round(self.seconds, 4),
        }


def _fill(plan: TargetPlan, desired: Mapping[str, DesiredResource]) -> list[Op]:
    """The plan's changes with their content, checking that the source still renders them."""
    ops = []
    for op in plan.changes():
        if op.action is Action.DELETE:
            ops.append(op)
            continue
        want = desired.get(op.key)
        if want is None or want.digest != op.after:
            raise PlanStale(
                f"{plan.target}: {op.key} now renders to {want.digest if want else 'nothing'}, "
                f"the plan said {op.after}; plan again"
            )
        ops.append(
            Op(
                op.action,
                op.key,
                op.before,
                op.after,
                op.reason,
                want.data,
                op.etag,
                want.media_type,
            )
        )
    return ops


async def apply_target(
    ctx: DistContext,
    store: Store,
    release: str,
    target: Manifest,
    plan: TargetPlan,
    *,
    desired: Mapping[str, DesiredResource] | None = None,
    record_release: str | None = None,
    endpoint: int | None = None,
) -> ApplyOutcome:
    """Apply a target's planned changes; each resource is acknowledged in the inventory.

    Safe to call again after a crash: a resource already at its desired digest is a no-op
    (and its idempotency key makes a repeated write harmless at the target).
    """
    started = time.perf_counter()
    want = (
        desired
        if desired is not None
        else await asyncio.to_thread(ctx.desired, release, target, endpoint)
    )
    ops = _fill(plan, want)
    adapter = ctx.adapter(target.name, endpoint)
    rdigest = ctx.release_digest(release) if desired is None else release
    keyed = [(op, idempotency_key(rdigest, target.name, op.key, op.after)) for op in ops]
    actx = ApplyContext(
        release=release, owner=ctx.owner, summary=plan.summary(), distribution=ctx.name
    )
    outcome = ApplyOutcome(target.name)
    label = record_release or release
    if adapter.capabilities()["batch_atomic"]:
        batches = [keyed] if keyed else []
    else:
        # Acknowledged in chunks: a crash re-examines at most one chunk, and each resource in
        # it is then a no-op (digest already right, or the idempotency key replayed).
        batches = [keyed[i : i + ACK_CHUNK] for i in range(0, len(keyed), ACK_CHUNK)]
    for batch in batches:
        results = await asyncio.to_thread(adapter.apply_batch, batch, ctx=actx)
        outcome.results.extend(results)
        changes = [
            Change(op.key, None if op.action is Action.DELETE else op.after, label, op.data)
            for op, _ in batch
        ]
        await inventory.record(store, ctx.name, target.name, changes, time.time())
    # Keys that were already right (no-ops) but not yet in the inventory are ours now too.
    adopt = [
        Change(op.key, op.after, label, None)
        for op in plan.ops
        if op.action is Action.NOOP and op.after is not None
    ]
    if adopt:
        await inventory.record(store, ctx.name, target.name, adopt, time.time())
    health = await asyncio.to_thread(adapter.health, outcome.results)
    outcome.health, outcome.reason = health.status.value, health.reason
    outcome.seconds = time.perf_counter() - started
    return outcome


async def restore_target(
    ctx: DistContext, store: Store, target: Manifest, previous: Mapping[str, list[str]]
) -> ApplyOutcome:
    """Put a target back to an earlier inventory snapshot ``{key: [digest, release]}``."""
    blobs = await inventory.blobs(store, (d for d, _ in previous.values()))
    desired = {
        key: DesiredResource(key, blobs[d]) for key, (d, _) in previous.items() if d in blobs
    }
    inv = await inventory.load(store, ctx.name, target.name)
    facts = ctx.facts(target)
    adapter = ctx.adapter(target.name)

    def plan() -> TargetPlan:
        keys = sorted(set(desired) | set(inv))
        observed: Mapping[str, Observed | None] = adapter.read(keys) if facts.can_read else {}
        restore_facts = type(facts)(
            owner=facts.owner,
            can_read=facts.can_read,
            can_delete=facts.can_delete,
            immutable=facts.immutable,
            prune=True,  # what the failed release created goes away again
        )
        return diff_target(target.name, desired, observed, inv, [], restore_facts)

    tplan = await asyncio.to_thread(plan)
    outcome = await apply_target(
        ctx, store, "rollback", target, tplan, desired=desired, record_release="restored"
    )
    # Inventory rows go back to the releases they came from.
    await inventory.record(
        store,
        ctx.name,
        target.name,
        [Change(k, d, r) for k, (d, r) in previous.items() if k in desired],
        time.time(),
    )
    return outcome
