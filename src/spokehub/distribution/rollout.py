"""The rollout: ONE durable workflow per (distribution, release) promotion.

Waves run in order; inside a wave targets are applied ``maxConcurrent`` at a time (one step per
target, so a crash resumes at the next target not yet acknowledged and resources already
applied are no-ops). After a wave: health, analysis (durable timers between measurements), then
the gate (``auto``, ``manual`` = an approval, ``webhook``). On failure the targets applied so
far go back to their previous inventory in reverse order (the saga's compensation), later waves
are never touched, and the release is marked failed for this distribution.
"""

from __future__ import annotations

import asyncio
from typing import Any

from spokehub.distribution.analysis import tally
from spokehub.distribution.forecast import DEFAULT_MAX_RETRY_WAIT, route_name
from spokehub.distribution.manifests import seconds
from spokehub.distribution.steps import (
    RolloutRequest,
    apply_one,
    begin,
    check_policy,
    finish,
    measure,
    note,
    plan_wave,
    probe,
    restore,
    retry_plan,
    webhook_gate,
)
from spokehub.errors import ApprovalRejected, StepFailed, WaitTimeout, WorkflowError
from spokehub.intelligence.forecast import HealthPolicy, choose_route
from spokehub.runtime.definitions import workflow
from spokehub.runtime.primitives import approval, sleep

WORKFLOW_NAME = "spokehub.distribution.rollout"


NOT_RETRIED = ("PlanStale", "PreconditionFailed")


class _Stop(Exception):
    """A wave failed: the reason goes to the promotion and the rollback starts."""


@workflow(name=WORKFLOW_NAME)
async def rollout_workflow(req: RolloutRequest) -> dict[str, Any]:
    """Promote ``req.release`` of ``req.distribution`` wave by wave (see the module docstring)."""
    info = await begin(req)
    if "refused" in info:
        return {"status": "Refused", "reason": info["refused"], "waves": []}
    applied: list[tuple[str, dict[str, Any]]] = []
    waves: list[dict[str, Any]] = []
    try:
        for wave in info["waves"]:
            report: dict[str, Any] = {"name": wave["name"], "targets": {}, "analysis": {}}
            waves.append(report)
            await _wave(req, wave, info["skip_analysis"], applied, report)
    except (_Stop, StepFailed) as stop:
        reason = str(stop)
        if info["on_failure"] != "rollback":
            return await finish(req, "Failed", reason, {"waves": waves, "rolled_back": []})
        rolled = []
        for target, previous in reversed(applied):
            await restore(req, target, previous)
            rolled.append(target)
        return await finish(req, "RolledBack", reason, {"waves": waves, "rolled_back": rolled})
    summary = {"waves": waves, "rolled_back": [], "why": info.get("why", "")}
    return await finish(req, "Succeeded", "", summary)


async def _wave(
    req: RolloutRequest,
    wave: dict[str, Any],
    skip_analysis: bool,
    applied: list[tuple[str, dict[str, Any]]],
    report: dict[str, Any],
) -> None:
    planned = await plan_wave(req, wave)
    if planned["problems"]:
        raise _Stop(f"wave {wave['name']}: " + "; ".join(planned["problems"]))
    for t in planned["targets"]:
        if t["prune_approval"]:
            counts = {"target": t["target"], "counts": t["plan"]["counts"]}
            await _approve(req, f"prune:{t['target']}", counts, wave)
    todo = [t for t in planned["targets"] if t["changes"]]
    for t in planned["targets"]:
        report["targets"][t["target"]] = {
            "changed": 0,
            "health": "Healthy",
            "planned": t["changes"],
        }
    for t in todo:
        t["endpoint"] = await _hold_or_route(req, t)
    await _apply_wave(req, wave, todo, applied, report)
    if not skip_analysis:
        for template in wave["analysis"]:
            await _analysis(req, wave, template, report)
    if todo:
        await _gate(req, wave)
    else:  # nothing changed in this wave: there is nothing for a human to promote
        report["gate"] = "skipped: no changes"


async def _apply_wave(
    req: RolloutRequest,
    wave: dict[str, Any],
    todo: list[dict[str, Any]],
    applied: list[tuple[str, dict[str, Any]]],
    report: dict[str, Any],
) -> None:
    failures = []
    for i in range(0, len(todo), wave["max"]):
        batch = todo[i : i + wave["max"]]
        results = await asyncio.gather(
            *(_deliver(req, t) for t in batch),
            return_exceptions=True,
        )
        for t, result in zip(batch, results, strict=True):
            applied.append((t["target"], t["previous"]))  # even a partial apply is undone
            if isinstance(result, BaseException):
                failures.append(f"{t['target']}: {result}")
                report["targets"][t["target"]] = {"changed": 0, "health": "Degraded"}
                continue
            report["targets"][t["target"]] = {
                "changed": result["changed"],
                "health": result["health"],
            }
            if result["health"] == "Degraded":
                failures.append(f"{t['target']} is Degraded: {result['reason']}")
        if failures:
            raise _Stop(f"wave {wave['name']}: " + "; ".join(failures))


async def _deliver(req: RolloutRequest, t: dict[str, Any]) -> dict[str, Any]:
    """Apply one target; a failed delivery is retried at the delays its own history supports
    (``retry_plan``), with durable sleeps between attempts, within ``maxRetryWait``. Plans
    gone stale and precondition failures are not retried. Every decision is recorded."""
    name, endpoint = t["target"], t.get("endpoint")
    attempt, waited = 1, 0.0
    schedule: dict[str, Any] | None = None
    while True:
        try:
            return await apply_one(req, name, t["plan"], endpoint, attempt)
        except StepFailed as failed:
            if failed.error_type in NOT_RETRIED:
                await note(
                    req,
                    "retry",
                    {"decision": "give up", "reason": f"{failed.error_type} is not retried"},
                    name,
                )
                raise
            if schedule is None:
                wait = float(t.get("max_retry_wait", DEFAULT_MAX_RETRY_WAIT))
                schedule = await retry_plan(req, name, endpoint, wait)
            delays: list[float] = schedule["delays"]
            if attempt > len(delays):
                why = (
                    f"still failing after {attempt} attempt(s) over {waited:g}s, the schedule "
                    f"is spent ({schedule['reason']}): {failed.message}"
                )
                await note(
                    req,
                    "retry",
                    {"decision": "give up", "attempts": attempt, "waited": waited, "reason": why},
                    name,
                )
                raise
            delay = delays[attempt - 1]
            waited = round(waited + delay, 3)
            detail = {
                "decision": "retry",
                "attempt": attempt + 1,
                "delay": delay,
                "at": f"t+{waited:g}s",
                "learnt": schedule["learnt"],
                "reason": f"{schedule['reason']}; failed: {failed.message}",
            }
            await note(req, "retry", detail, name)
            await sleep(delay)  # durable: the schedule survives a worker restart
            attempt += 1


async def _hold_or_route(req: RolloutRequest, t: dict[str, Any]) -> int | None:
    """Predictive sync: a target forecast to fail is held until healthy (bounded, durable
    sleeps between probes), then routed to the alternative endpoint with the best health
    forecast (``choose_route``), or the wave stops. Every decision is recorded."""
    guess = t.get("forecast") or {}
    if not guess.get("risky"):
        return None
    name = t["target"]
    await note(req, "predict", {"decision": "hold", **guess}, name)
    waited = 0.0
    while True:
        answer = await probe(req, name)
        if answer["healthy"]:
            why = f"healthy after holding {waited:g}s"
            await note(req, "predict", {"decision": "proceed", "reason": why}, name)
            return None
        if waited >= t["max_hold"]:
            break
        await sleep(t["check_every"])  # durable: the hold survives a worker restart
        waited += t["check_every"]
    why = f"{guess['reason']}; still unhealthy after {waited:g}s ({answer['reason']})"
    if t["alternatives"]:
        return await _route(req, t, why)
    await note(req, "predict", {"decision": "stop", "reason": why}, name)
    raise _Stop(f"{name} is forecast to fail and no alternative endpoint is declared: {why}")


async def _route(req: RolloutRequest, t: dict[str, Any], why: str) -> int:
    """Probe every alternative (each answer joins its health history), then pick by forecast."""
    name = t["target"]
    routes = [route_name(req.distribution, name, i) for i in range(t["alternatives"])]
    for i in range(len(routes)):
        await probe(req, name, i)
    rules = HealthPolicy(**t["health_policy"]) if t.get("health_policy") else HealthPolicy()
    choice = await choose_route(routes, policy=rules)
    endpoint = routes.index(choice.route)
    detail = {
        "decision": "route",
        "endpoint": endpoint,
        "reason": f"{why}; alternative {endpoint}: {choice.reason}",
        "forecasts": {
            str(i): {"healthy": f.healthy, "reason": f.reason}
            for i, f in enumerate(choice.forecasts)
        },
    }
    await note(req, "predict", detail, name)
    return endpoint


async def _analysis(
    req: RolloutRequest, wave: dict[str, Any], template: dict[str, Any], report: dict[str, Any]
) -> None:
    args = {a["name"]: a.get("value") for a in template["spec"].get("args", [])}
    for metric in template["spec"]["metrics"]:
        count = int(metric.get("count", 1))
        interval = seconds(metric.get("interval"), 0.0)
        for target in wave["targets"]:
            phases: list[str] = []
            for n in range(count):
                m = await measure(req, metric, target, args)
                if m["phase"] == "Skipped":
                    break
                phases.append(m["phase"])
                verdict = tally(metric, phases)
                if verdict != "Successful" or n == count - 1:
                    break
                await sleep(interval)  # durable: a worker restart does not restart the count
            if not phases:
                continue
            verdict = tally(metric, phases)
            key = f"{template['name']}/{metric['name']}@{target}"
            report["analysis"][key] = {"verdict": verdict, "phases": phases}
            await note(
                req, "analysis", {"metric": key, "verdict": verdict, "phases": phases}, target
            )
            doc = {"measurements": {"metric": key, "verdict": verdict, "phases": phases}}
            ruled = await check_policy(req, "analysis", doc, target)
            if ruled["denied"] and not metric.get("dryRun"):
                raise _Stop(f"analysis {key}: policy denied: {ruled['message']}")
            if metric.get("dryRun"):
                continue
            if verdict == "Failed":
                raise _Stop(f"analysis {key} failed: {phases}")
            if verdict == "Inconclusive":
                await _approve(req, f"inconclusive:{key}", {"phases": phases}, wave)


async def _gate(req: RolloutRequest, wave: dict[str, Any]) -> None:
    gate = wave["gate"]
    if gate == "manual":
        subject = {"wave": wave["name"], "targets": wave["targets"]}
        await _approve(req, f"promote:{wave['name']}", subject, wave, wave["gateTimeout"])
    elif gate == "webhook":
        answer = await webhook_gate(req, wave)
        await note(req, "gate", {"wave": wave["name"], "kind": "webhook", **answer})
        if not answer["approved"]:
            raise _Stop(f"gate of wave {wave['name']} refused: {answer['reason']}")


async def _approve(
    req: RolloutRequest,
    name: str,
    subject: Any,
    wave: dict[str, Any],
    timeout: float | None = None,
) -> None:
    """An approval with the governance lifecycle: the wave's ``approval`` settings name the
    assignees (users, ``role:NAME``), the quorum, reminders, escalation and what a timeout
    does; the rollout's actor may not approve their own rollout when assignees are named."""
    about = {"distribution": req.distribution, "release": req.release, **subject}
    try:
        decision = await approval(name, subject=about, timeout=timeout, **wave.get("approval", {}))
    except (ApprovalRejected, WaitTimeout) as exc:
        await note(req, "gate", {"name": name, "approved": False, "reason": str(exc)})
        raise _Stop(f"{name}: {exc}") from exc
    await note(
        req,
        "gate",
        {
            "name": name,
            "approved": True,
            "by": decision.by or "",
            "approvers": list(decision.approvers),
            "expired": decision.expired,
            "comment": decision.comment or "",
        },
    )


__all__ = ["WORKFLOW_NAME", "RolloutRequest", "WorkflowError", "rollout_workflow"]
