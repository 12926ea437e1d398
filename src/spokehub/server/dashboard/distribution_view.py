"""What the distribution page and its JSON API show about one release: the patterns x targets
matrix, the rollout wave by wave, the drift diffs and the audit timeline.

The store says what each target holds and what happened (promotions, targets, inventory,
audit, the rollout run). Which pattern a resource came from is known only to the patterns
source, so the matrix renders the release from the hub folder the rollout run was started
with (``RolloutRequest.hub``) when this server can read it; otherwise the matrix has one
``(release)`` row and says why.
"""

from __future__ import annotations

import asyncio
from typing import Any

from spokehub.distribution import audit, inventory, matrix, progress
from spokehub.distribution.rollout import WORKFLOW_NAME
from spokehub.errors import RunNotFound
from spokehub.runtime.client import Client
from spokehub.store.base import RunRecord

__all__ = ["drift_view", "matrix_view", "pick_release", "rollout_run", "waves_view"]

DRIFT_KINDS = ("drift", "alert")
# (hub, distribution, release) -> (the context it was computed with, target -> key -> pattern)
_ATTRIBUTION: dict[tuple[str, str, str], tuple[Any, dict[str, dict[str, str]]]] = {}


async def pick_release(client: Client, distribution: str, release: str | None) -> str | None:
    """The release asked for, else the newest promoted one."""
    if release:
        return release
    proms = await inventory.promotions(client.store, distribution)
    return str(proms[-1]["release"]) if proms else None


async def rollout_run(client: Client, distribution: str, release: str) -> RunRecord | None:
    """The newest rollout run of ``release`` of ``distribution``: the one its promotion
    records, else (promotions written before runs were recorded) the newest of the last 500
    rollout runs that is about this release."""
    proms = await inventory.promotions(client.store, distribution)
    recorded = next((p.get("run_id") for p in proms if p["release"] == release), None)
    if recorded:
        try:
            return await client.get_run_async(str(recorded))
        except RunNotFound:
            pass  # pruned: look for another run of this release below
    for run in await client.list_runs_async(workflow=WORKFLOW_NAME, limit=500):
        req = (run.input or {}).get("req") or {}
        if req.get("distribution") == distribution and req.get("release") == release:
            return run
    return None


def _attribute(hub: str, distribution: str, release: str) -> dict[str, dict[str, str]]:
    """target -> key -> pattern, rendered from the hub folder (cached per manifests)."""
    from spokehub.distribution.steps import context_for
    from spokehub.distribution.wiring import target_view

    ctx = context_for(hub, distribution)
    cached = _ATTRIBUTION.get((hub, distribution, release))
    if cached is not None and cached[0] is ctx:
        return cached[1]
    found = {
        t.name: matrix.key_patterns(ctx.source, release, target_view(t), ctx.transforms_for(t))
        for t in ctx.targets()
    }
    _ATTRIBUTION[(hub, distribution, release)] = (ctx, found)
    return found


async def _attribution(
    client: Client, distribution: str, release: str
) -> tuple[dict[str, dict[str, str]] | None, list[str], str]:
    """(target -> key -> pattern or None, the release's patterns, why there is none)."""
    run = await rollout_run(client, distribution, release)
    hub = ((run.input or {}).get("req") or {}).get("hub") if run else None
    if not hub:
        return None, [], "no rollout run of this release names its hub folder"
    try:
        found = await asyncio.to_thread(_attribute, str(hub), distribution, release)
    except Exception as exc:  # the hub may live on another machine, or have changed
        return None, [], f"the hub folder {hub} cannot be read here ({type(exc).__name__}: {exc})"
    patterns = sorted({p for keys in found.values() for p in keys.values()})
    return found, patterns, ""


def _drift_states(
    entries: list[dict[str, Any]], row: dict[str, Any], applied_at: float
) -> dict[str, str]:
    """key -> drift state for the keys the target's last check left drifted (a check older
    than the target's last apply says nothing about what it holds now)."""
    last = (row.get("detail") or {}).get("last_drift") or {}
    if float(last.get("at") or 0) < applied_at:
        return {}
    drifted = set(last.get("drifted", []))
    states: dict[str, str] = {}
    for e in entries:  # oldest first: the newest check wins
        for r in e["detail"].get("drifted", []):
            states[str(r.get("key"))] = str(r.get("state", matrix.MODIFIED))
    return {k: states.get(k, matrix.MODIFIED) for k in drifted}


async def matrix_view(client: Client, distribution: str, release: str) -> dict[str, Any]:
    """Rows = the release's patterns, columns = targets, each cell = one of ``matrix.STATES``."""
    store = client.store
    rows = await inventory.targets(store, distribution)
    invs = await inventory.load_all(store, distribution)
    proms = {p["release"]: p for p in await inventory.promotions(store, distribution)}
    status = proms.get(release, {}).get("status")
    trail = [e.to_dict() for e in await audit.entries(store, distribution=distribution)]
    attempt = progress.latest_attempt([e for e in trail if e["release"] == release])
    outcome = progress.target_states(attempt)
    found, patterns, why = await _attribution(client, distribution, release)
    names = list(found or {}) + sorted(set(rows) - set(found or {}))
    if found is None:
        patterns = [matrix.RELEASE_ROW]
    if any(p == matrix.RELEASE_ROW for keys in (found or {}).values() for p in keys.values()):
        patterns = [p for p in patterns if p != matrix.RELEASE_ROW] + [matrix.RELEASE_ROW]
    out_rows = []
    for pattern in patterns:
        cells = []
        for name in names:
            row = rows.get(name, {})
            owned = invs.get(name, {})
            if found is None:
                keys = sorted(owned)
            else:
                keys = sorted(k for k, p in found.get(name, {}).items() if p == pattern)
            mine = [e for e in trail if e["target"] == name]
            drift = _drift_states(
                [e for e in mine if e["kind"] in DRIFT_KINDS],
                row,
                max((e["at"] for e in mine if e["kind"] == "apply"), default=0.0),
            )
            state = matrix.cell_state(
                keys,
                release=release,
                promotion=status,
                target=row,
                inventory=owned,
                drift=drift,
                failed=outcome.get(name, {}).get("state") == progress.FAILED,
            )
            cells.append({"target": name, "state": state, "keys": keys})
        out_rows.append({"pattern": pattern, "cells": cells})
    return {
        "distribution": distribution,
        "release": release,
        "status": status,
        "targets": names,
        "rows": out_rows,
        "attributed": found is not None,
        "why": why,
        "states": list(matrix.STATES),
    }


async def waves_view(client: Client, distribution: str, release: str) -> dict[str, Any]:
    """The rollout of ``release`` wave by wave: targets and their state, analysis, the gate."""
    store = client.store
    proms = {p["release"]: p for p in await inventory.promotions(store, distribution)}
    promotion = proms.get(release)
    run = await rollout_run(client, distribution, release)
    plan: list[dict[str, Any]] = []
    waiting: list[str] = []
    if run is not None:
        for event in await client.events_async(run.id):
            if event.kind.value == "step_completed" and event.data.get("name") == (
                "spokehub.dist.begin"
            ):
                plan = list((event.data.get("result") or {}).get("waves", []))
        if not run.status.finished:
            waiting = [str(a["name"]) for a in (run.waiting_on or {}).get("approval", [])]
    if not plan and promotion is not None:  # the run is gone (pruned): the summary has waves
        plan = [
            {"name": w["name"], "targets": list(w.get("targets", {})), "gate": "?"}
            for w in promotion["detail"].get("waves", [])
        ]
    trail = [
        e.to_dict() for e in await audit.entries(store, distribution=distribution, release=release)
    ]
    status = promotion["status"] if promotion else None
    return {
        "distribution": distribution,
        "release": release,
        "status": status,
        "run_id": run.id if run else None,
        "reason": (promotion or {}).get("detail", {}).get("reason", ""),
        "waves": progress.waves(plan, trail, status=status, waiting=waiting),
    }


async def drift_view(
    client: Client, distribution: str, *, target: str | None = None, limit: int = 20
) -> list[dict[str, Any]]:
    """The newest drift checks that found something, newest first: per target and resource,
    the state and the unified diff."""
    found = [
        e
        for e in (x.to_dict() for x in await audit.entries(client.store, distribution=distribution))
        if e["kind"] in DRIFT_KINDS and (target is None or e["target"] == target)
    ]
    out = []
    for e in reversed(found[-limit:]):
        corrected = set(e["detail"].get("corrected", []))
        out.append(
            {
                "seq": e["seq"],
                "at": e["at"],
                "target": e["target"],
                "release": e["release"],
                "kind": e["kind"],
                "mode": e["detail"].get("mode", ""),
                "resources": [
                    {
                        "key": r.get("key"),
                        "state": r.get("state"),
                        "diff": r.get("diff", ""),
                        "corrected": r.get("key") in corrected,
                    }
                    for r in e["detail"].get("drifted", [])
                ],
            }
        )
    return out
