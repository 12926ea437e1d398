"""The durable steps of a rollout: each one loads the hub, does one thing, and records it.

Steps receive the ``RolloutRequest`` (hub folder, distribution, release, database URL) so any
worker process can run them; the ``DistContext`` is cached per process while manifests are
unchanged.
"""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from spokehub.distribution import audit, inventory
from spokehub.distribution.adapters.outbound import connector_for, explain
from spokehub.distribution.analysis import measure as take_measurement
from spokehub.distribution.forecast import (
    DEFAULT_MAX_RETRY_WAIT,
    judge,
    policy_for,
    remember,
    retry_schedule,
    route_name,
)
from spokehub.distribution.manifests import load_hub, manifest_files, seconds
from spokehub.distribution.plan import TargetPlan
from spokehub.distribution.policy import PolicyResult, decide
from spokehub.distribution.sync import (
    apply_target,
    plan_target,
    plan_target_sync,
    restore_target,
)
from spokehub.distribution.wiring import DistContext, target_view, wave_targets
from spokehub.engine.retry import RetryPolicy
from spokehub.integrations import IntegrationError
from spokehub.intelligence.forecast import HealthBook
from spokehub.runtime.context import current_client, current_step
from spokehub.runtime.definitions import step
from spokehub.store import Store

FAILED = ("Failed", "RolledBack")


class RolloutRequest(BaseModel):
    """What a rollout run is about. ``mode`` is ``rollout`` or ``rollback``."""

    hub: str
    distribution: str
    release: str
    db: str
    mode: str = "rollout"
    retry: bool = False
    reason: str = ""
    actor: str = "cli"


_CACHE: dict[tuple[str, str], tuple[Any, DistContext]] = {}


def context_for(hub: str, distribution: str) -> DistContext:
    """The distribution's context, rebuilt only when a manifest file changed."""
    root = Path(hub)
    stamp = tuple((str(p), p.stat().st_mtime_ns) for p in manifest_files(root))
    cached = _CACHE.get((hub, distribution))
    if cached is not None and cached[0] == stamp:
        return cached[1]
    ctx = DistContext.build(load_hub(root), distribution)
    _CACHE[(hub, distribution)] = (stamp, ctx)
    return ctx


async def _note(
    store: Store, req: RolloutRequest, kind: str, detail: dict[str, Any], target: str = ""
) -> None:
    await audit.append(
        store,
        at=time.time(),
        distribution=req.distribution,
        release=req.release,
        target=target,
        kind=kind,
        detail={"actor": req.actor, **detail},
    )


async def _policy(
    ctx: DistContext,
    req: RolloutRequest,
    stage: str,
    doc: dict[str, Any],
    labels: dict[str, str],
    target: str = "",
) -> PolicyResult:
    """The hub's policies and the worker's governance policies at ``stage``."""
    running = current_step()
    return await decide(
        ctx.policies(),
        stage,
        doc,
        labels,
        distribution=ctx.name,
        target=target,
        actor=req.actor,
        run_id=running.run_id if running else None,
    )


def _max_concurrent(value: Any, count: int) -> int:
    if isinstance(value, str) and value.endswith("%"):
        return max(1, math.ceil(count * int(value[:-1]) / 100))
    return max(1, int(value or count or 1))


def _waves(ctx: DistContext) -> list[dict[str, Any]]:
    rollout = ctx.rollout()
    specs: list[dict[str, Any]] = (
        rollout.spec["waves"] if rollout else [{"name": "all", "targets": {}}]
    )
    waves: list[dict[str, Any]] = []
    done: list[str] = []
    for w in specs:
        names = [t.name for t in wave_targets(ctx, w["targets"], done)]
        done.extend(names)
        templates = [
            {"name": n, "spec": ctx.hub.get("AnalysisTemplate", n).spec}
            for n in w.get("analysis", [])
        ]
        waves.append(
            {
                "name": w["name"],
                "targets": names,
                "max": _max_concurrent(w.get("maxConcurrent"), len(names)),
                "analysis": templates,
                "gate": w.get("gate", "auto"),
                "gateUrl": w.get("gateUrl"),
                "gateTimeout": seconds(w["gateTimeout"], 0) if w.get("gateTimeout") else None,
                "gateEgressAllow": list(w.get("gateEgressAllow") or []),
                "approval": approval_options(w.get("approval") or {}),
            }
        )
    return waves


def approval_options(spec: dict[str, Any]) -> dict[str, Any]:
    """A wave's ``approval`` settings as keyword arguments of ``approval()``."""
    durations = {"remindEvery": "remind_every", "escalateAfter": "escalate_after"}
    names = {
        "assignees": "assignees",
        "quorum": "quorum",
        "rejections": "rejections",
        "allowSelf": "allow_self",
        "onTimeout": "on_timeout",
        "escalateTo": "escalate_to",
    }
    out = {names[k]: v for k, v in spec.items() if k in names}
    out.update({durations[k]: seconds(v, 0.0) for k, v in spec.items() if k in durations})
    return out


@step(name="spokehub.dist.begin")
async def begin(req: RolloutRequest) -> dict[str, Any]:
    """Check the release may go out (not failed before, pre-release policy), list the waves."""
    ctx = context_for(req.hub, req.distribution)
    rdigest = ctx.release_digest(req.release)
    async with inventory.open_state(req.db) as store:
        proms = {p["release"]: p for p in await inventory.promotions(store, req.distribution)}
        prev = proms.get(req.release)
        if req.mode == "rollout" and prev and prev["status"] in FAILED and not req.retry:
            msg = (
                f"release {req.release} failed for {req.distribution} "
                f"({prev['detail'].get('reason', '')}); a failed release is not retried "
                "automatically: roll out a new release or pass --retry"
            )
            return {"refused": msg}
        rollout = ctx.rollout()
        skip, why = False, ""
        stage = "rollback" if req.mode == "rollback" else "pre-release"
        if req.mode == "rollback":
            skip, why = _inside_window(ctx, proms, req.release)
            decision = await _policy(
                ctx,
                req,
                "rollback",
                {"release": {"id": req.release}, "request": {"reason": req.reason}},
                {},
            )
        else:
            decision = await _policy(
                ctx, req, "pre-release", {"release": {"id": req.release, "digest": rdigest}}, {}
            )
        await _note(
            store,
            req,
            "policy",
            {"stage": stage, **decision.to_dict()},
        )
        if decision.denied:
            return {"refused": f"policy denied: {decision.message()}"}
        running = current_step()
        await inventory.set_promotion(
            store,
            req.distribution,
            req.release,
            "Progressing",
            time.time(),
            run_id=running.run_id if running else None,
            detail={"mode": req.mode, "digest": rdigest, "reason": req.reason or why},
        )
        await _note(
            store,
            req,
            "promotion.started",
            {"mode": req.mode, "digest": rdigest, "skip_analysis": skip, "why": why or req.reason},
        )
    on_failure = (
        (rollout.spec.get("onFailure") or {}).get("action") if rollout else None
    ) or "rollback"
    return {"waves": _waves(ctx), "skip_analysis": skip, "why": why, "on_failure": on_failure}


def _inside_window(ctx: DistContext, proms: dict[str, Any], release: str) -> tuple[bool, str]:
    rollout = ctx.rollout()
    window = int(((rollout.spec.get("rollbackWindow") or {}) if rollout else {}).get("releases", 0))
    good = [
        r
        for r, p in sorted(proms.items(), key=lambda kv: kv[1]["created_at"])
        if p["status"] == "Succeeded"
    ]
    recent = good[-(window + 1) :] if window else []
    if release in recent:
        return (
            True,
            f"{release} is inside the rollbackWindow (last {window} good releases): "
            "analysis skipped",
        )
    return False, ""


@step(name="spokehub.dist.plan_wave")
async def plan_wave(req: RolloutRequest, wave: dict[str, Any]) -> dict[str, Any]:
    """Plan every target of a wave, snapshot their inventories, and ask pre-apply policy."""
    ctx = context_for(req.hub, req.distribution)
    out: list[dict[str, Any]] = []
    problems: list[str] = []
    async with inventory.open_state(req.db) as store:
        rows = await inventory.targets(store, ctx.name)
        plans = await asyncio.gather(
            *(plan_target(ctx, store, req.release, ctx.target(n)) for n in wave["targets"])
        )
        for tplan in plans:
            target = ctx.target(tplan.target)
            previous = await inventory.load(store, ctx.name, target.name)
            doc = {
                "plan": {**tplan.to_dict(), "summary": tplan.summary()},
                "target": target_view(target).as_dict(),
                "release": {"id": req.release},
                "wave": {"name": wave["name"]},
                "distribution": {"name": ctx.name},
                "request": {"actor": req.actor, "time": time.time()},
            }
            artifact = {
                "keys": [o.key for o in tplan.ops if o.after],
                "count": sum(1 for o in tplan.ops if o.after),
            }
            shaped = await _policy(
                ctx,
                req,
                "post-transform",
                {**doc, "artifact": artifact},
                dict(target.labels),
                target.name,
            )
            if shaped.violations:
                await _note(
                    store,
                    req,
                    "policy",
                    {"stage": "post-transform", **shaped.to_dict()},
                    target.name,
                )
            if shaped.denied:
                problems.append(f"{target.name}: policy denied: {shaped.message()}")
            decision = await _policy(ctx, req, "pre-apply", doc, dict(target.labels), target.name)
            await _note(
                store,
                req,
                "plan",
                {"digest": tplan.digest(), "counts": tplan.counts(), "error": tplan.error},
                target.name,
            )
            await _note(
                store, req, "policy", {"stage": "pre-apply", **decision.to_dict()}, target.name
            )
            if decision.denied:
                problems.append(f"{target.name}: policy denied: {decision.message()}")
            if tplan.has_conflicts():
                detail = tplan.error or "; ".join(
                    f"{o.key}: {o.reason}"
                    for o in tplan.ops
                    if o.reason and o.action.value == "conflict"
                )
                problems.append(f"{target.name}: {detail}")
            out.append(
                {
                    "target": target.name,
                    "plan": tplan.to_dict(),
                    "previous": {k: [e.digest, e.release] for k, e in previous.items()},
                    "changes": len(tplan.changes()),
                    "prune_approval": tplan.prune_needs_approval,
                    **_predictive(target, (rows.get(target.name) or {}).get("detail") or {}),
                }
            )
    return {"targets": out, "problems": problems}


def _predictive(target: Any, detail: dict[str, Any]) -> dict[str, Any]:
    spec = target.spec.get("predictive") or {}
    policy = policy_for(
        {
            **spec,
            "window": seconds(spec.get("window"), 0.0),
            "halfLife": seconds(spec.get("halfLife"), 0.0),
            "maxLatency": seconds(spec.get("maxLatency"), 0.0),
        }
    )
    guess = judge(target.name, detail.get("history", []), time.time(), policy)
    return {
        "forecast": guess.to_dict(),
        "max_hold": seconds(spec.get("maxHold"), 30.0),
        "check_every": seconds(spec.get("checkEvery"), 5.0),
        "max_retry_wait": seconds(spec.get("maxRetryWait"), DEFAULT_MAX_RETRY_WAIT),
        "health_policy": asdict(policy),
        "alternatives": len(target.spec.get("alternatives", [])),
    }


def _endpoint_history(detail: dict[str, Any], endpoint: int | None) -> list[dict[str, Any]]:
    if endpoint is None:
        return list(detail.get("history", []))
    return list((detail.get("alt_history") or {}).get(str(endpoint), []))


async def _observe(route: str, ok: bool, took: float) -> None:
    """Mirror an outcome into the intelligence layer's health book (``choose_route`` reads it)."""
    client = current_client()
    if client is not None:
        await HealthBook(client).record(route, ok=ok, latency=round(took, 4))


async def _remember(
    store: Store,
    ctx: DistContext,
    target: str,
    ok: bool,
    took: float,
    endpoint: int | None = None,
) -> None:
    rows = await inventory.targets(store, ctx.name)
    detail = (rows.get(target) or {}).get("detail") or {}
    now = time.time()
    history = remember(_endpoint_history(detail, endpoint), ok, took, now)
    if endpoint is None:
        update: dict[str, Any] = {"history": history}
    else:
        update = {"alt_history": {**(detail.get("alt_history") or {}), str(endpoint): history}}
    await inventory.set_target(store, ctx.name, target, now, detail=update)
    await _observe(route_name(ctx.name, target, endpoint), ok, took)


@step(name="spokehub.dist.probe")
async def probe(req: RolloutRequest, target: str, endpoint: int | None = None) -> dict[str, Any]:
    """Ask a target (or one of its alternative endpoints) whether it is healthy now.

    Read-only at the target; the answer is recorded as an observation in the health book.
    """
    ctx = context_for(req.hub, req.distribution)
    started = time.perf_counter()
    health = await asyncio.to_thread(ctx.adapter(target, endpoint).health, [])
    took = time.perf_counter() - started
    healthy = health.status.value == "Healthy"
    await _observe(route_name(ctx.name, target, endpoint), healthy, took)
    return {"healthy": healthy, "reason": health.reason, "seconds": round(took, 4)}


@step(name="spokehub.dist.retry_plan")
async def retry_plan(
    req: RolloutRequest, target: str, endpoint: int | None, max_wait: float
) -> dict[str, Any]:
    """The retry schedule of a failed delivery, learnt from the endpoint's own history."""
    ctx = context_for(req.hub, req.distribution)
    async with inventory.open_state(req.db) as store:
        rows = await inventory.targets(store, ctx.name)
    history = _endpoint_history((rows.get(target) or {}).get("detail") or {}, endpoint)
    return retry_schedule(history, time.time(), max_wait=max_wait).to_dict()


# Retries are the workflow's (``rollout._deliver``): at delays learnt from the target's history,
# with durable sleeps between them. The step itself tries once.
@step(name="spokehub.dist.apply", retry=RetryPolicy(max_attempts=1))
async def apply_one(
    req: RolloutRequest,
    target: str,
    plan: dict[str, Any],
    endpoint: int | None = None,
    attempt: int = 1,
) -> dict[str, Any]:
    """Apply one target's plan (each resource acknowledged in the inventory as it lands).

    With ``endpoint`` (predictive sync routed the target to one of its alternatives), or on a
    retry (``attempt`` > 1: part of the plan may have landed), the target is planned again
    first.
    """
    ctx = context_for(req.hub, req.distribution)
    tplan = TargetPlan.from_dict(plan)
    manifest = ctx.target(target)
    started = time.perf_counter()
    async with inventory.open_state(req.db) as store:
        if endpoint is not None or attempt > 1:
            inv = await inventory.load(store, ctx.name, target)
            tplan = await asyncio.to_thread(
                plan_target_sync, ctx, req.release, manifest, inv, endpoint=endpoint
            )
        try:
            outcome = await apply_target(
                ctx, store, req.release, manifest, tplan, endpoint=endpoint
            )
        except Exception:
            await _remember(store, ctx, target, False, time.perf_counter() - started, endpoint)
            raise
        await _remember(store, ctx, target, outcome.health != "Degraded", outcome.seconds, endpoint)
        await inventory.set_target(
            store,
            ctx.name,
            target,
            time.time(),
            release=req.release,
            health=outcome.health,
            sync="Synced",
            detail={
                "last_apply": {
                    "changed": outcome.changed,
                    "seconds": outcome.seconds,
                    "health_reason": outcome.reason,
                    "endpoint": endpoint,
                    "attempt": attempt,
                }
            },
        )
        await _note(
            store,
            req,
            "apply",
            {**outcome.to_dict(), "endpoint": endpoint, "attempt": attempt},
            target,
        )
    return outcome.to_dict()


@step(name="spokehub.dist.measure")
async def measure(
    req: RolloutRequest, metric: dict[str, Any], target: str, args: dict[str, Any]
) -> dict[str, Any]:
    """One analysis measurement, recorded with its value."""
    ctx = context_for(req.hub, req.distribution)
    view = target_view(ctx.target(target)).as_dict()
    m = await asyncio.to_thread(take_measurement, metric, view, args)
    async with inventory.open_state(req.db) as store:
        await _note(store, req, "measurement", {"metric": metric["name"], **m.to_dict()}, target)
    return m.to_dict()


@step(name="spokehub.dist.gate")
async def webhook_gate(req: RolloutRequest, wave: dict[str, Any]) -> dict[str, Any]:
    """Ask a confirm-promotion webhook; 2xx promotes, anything else stops the rollout.

    The POST goes through the process's HTTP connector (egress guard, breaker, timeouts); an
    internal ``gateUrl`` needs the wave's ``gateEgressAllow`` (or the process connector's
    ``allow``)."""
    body = {"distribution": req.distribution, "release": req.release, "wave": wave["name"]}
    settings = {"egressAllow": wave.get("gateEgressAllow") or []}
    try:
        resp = await connector_for(settings).send("POST", wave["gateUrl"], json=body)
        ok, why = resp.status < 300, f"HTTP {resp.status}"
    except IntegrationError as exc:  # refused, unreachable, breaker open, 4xx/5xx
        ok, why = (
            False,
            explain(exc, "the wave's gateEgressAllow lists them"),
        )
    return {"approved": ok, "reason": why}


@step(name="spokehub.dist.restore")
async def restore(req: RolloutRequest, target: str, previous: dict[str, Any]) -> dict[str, Any]:
    """Compensation: put the target back to its inventory before this release."""
    ctx = context_for(req.hub, req.distribution)
    async with inventory.open_state(req.db) as store:
        outcome = await restore_target(ctx, store, ctx.target(target), previous)
        prior = sorted({r for _, r in previous.values()})
        await inventory.set_target(
            store,
            ctx.name,
            target,
            time.time(),
            release=prior[-1] if prior else "",
            health=outcome.health,
            sync="RolledBack",
        )
        await _note(store, req, "rollback", outcome.to_dict(), target)
    return outcome.to_dict()


@step(name="spokehub.dist.policy")
async def check_policy(
    req: RolloutRequest, stage: str, document: dict[str, Any], target: str = ""
) -> dict[str, Any]:
    """Evaluate the policies of ``stage`` (e.g. ``analysis``) and record the decision."""
    ctx = context_for(req.hub, req.distribution)
    labels = dict(ctx.target(target).labels) if target else {}
    decision = await _policy(ctx, req, stage, document, labels, target)
    async with inventory.open_state(req.db) as store:
        await _note(store, req, "policy", {"stage": stage, **decision.to_dict()}, target)
    return {"denied": decision.denied, "message": decision.message()}


@step(name="spokehub.dist.note")
async def note(req: RolloutRequest, kind: str, detail: dict[str, Any], target: str = "") -> None:
    """Record a decision taken in workflow code (gate, analysis verdict) in the audit trail."""
    async with inventory.open_state(req.db) as store:
        await _note(store, req, kind, detail, target)


@step(name="spokehub.dist.finish")
async def finish(
    req: RolloutRequest, status: str, reason: str, summary: dict[str, Any]
) -> dict[str, Any]:
    """Mark the promotion Succeeded, Failed or RolledBack (failed ones are not retried)."""
    async with inventory.open_state(req.db) as store:
        await inventory.set_promotion(
            store,
            req.distribution,
            req.release,
            status,
            time.time(),
            detail={"reason": reason, **summary},
        )
        await _note(store, req, "promotion.finished", {"status": status, "reason": reason})
    return {"status": status, "reason": reason, **summary}
