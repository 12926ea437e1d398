"""Drift: compare what each target holds with what spokehub applied there, read-only.

Per resource: ``InSync``, ``Modified``, ``Missing``, ``Orphaned`` (owned but no longer
desired), ``Unmanaged`` (in scope, not ours: reported, never touched) or ``Conflicting``
(another owner's marker). Modes per target: ``off``, ``detect`` (report only; the CLI exits 2),
``correct`` (re-apply what was applied, with backoff; past ``correctionBudget`` the target is
``Fighting``, an alert is recorded and corrections stop) and ``adopt`` (the target's edit is
written as a patch proposal under the hub's ``proposals/`` folder). Checking never writes to a
target; only ``correct`` does, after the check.
"""

from __future__ import annotations

import asyncio
import fnmatch
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from spokehub.distribution import adopt, audit, inventory
from spokehub.distribution.cel import CelError, compile_cel
from spokehub.distribution.inventory import Change, Entry
from spokehub.distribution.manifests import Manifest, seconds
from spokehub.distribution.model import Action, ApplyContext, Observed, Op, Scope
from spokehub.distribution.plan import unified
from spokehub.distribution.policy import decide
from spokehub.distribution.sync import idempotency_key
from spokehub.distribution.wiring import DistContext
from spokehub.runtime.context import current_step
from spokehub.store import Store


class DriftState(StrEnum):
    IN_SYNC = "InSync"
    MODIFIED = "Modified"
    MISSING = "Missing"
    ORPHANED = "Orphaned"
    UNMANAGED = "Unmanaged"
    CONFLICTING = "Conflicting"


@dataclass(slots=True)
class ResourceDrift:
    key: str
    state: DriftState
    expected: str | None = None
    actual: str | None = None
    diff: str = ""
    ignored: str = ""  # the rule that ignored it

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "state": self.state.value,
            "expected": self.expected,
            "actual": self.actual,
            "diff": self.diff,
            "ignored": self.ignored,
        }


@dataclass(slots=True)
class TargetDrift:
    target: str
    mode: str
    resources: list[ResourceDrift] = field(default_factory=list)
    corrected: list[str] = field(default_factory=list)
    fighting: bool = False
    proposals: list[str] = field(default_factory=list)
    adoptions: list[dict[str, Any]] = field(default_factory=list)
    error: str = ""

    def drifted(self) -> list[ResourceDrift]:
        bad = (DriftState.MODIFIED, DriftState.MISSING, DriftState.CONFLICTING)
        return [r for r in self.resources if r.state in bad and not r.ignored]

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "mode": self.mode,
            "state": "Fighting" if self.fighting else ("Drifted" if self.drifted() else "InSync"),
            "resources": [r.to_dict() for r in self.resources],
            "corrected": self.corrected,
            "fighting": self.fighting,
            "drifted": [r.key for r in self.drifted()],
            "proposals": self.proposals,
            "adoptions": self.adoptions,
            "error": self.error,
        }


def _expired(rule: Mapping[str, Any], now: float) -> bool:
    when = rule.get("expiresAt")
    if not when:
        return False
    try:
        return datetime.fromisoformat(str(when).replace("Z", "+00:00")).timestamp() <= now
    except ValueError:
        return True  # an unreadable expiry fails closed: the drift is reported


def _without(data: bytes, pointer: str) -> Any:
    doc = json.loads(data)
    parts = [p.replace("~1", "/").replace("~0", "~") for p in pointer.split("/")[1:]]
    node = doc
    for part in parts[:-1]:
        node = node[int(part)] if isinstance(node, list) else node.get(part, {})
    if isinstance(node, dict):
        node.pop(parts[-1], None)
    return doc


def ignored_by(
    rules: Sequence[Mapping[str, Any]],
    res: ResourceDrift,
    before: bytes | None,
    after: bytes | None,
    now: float,
) -> str:
    """The first live ignore rule covering this drift, or ''."""
    for rule in rules:
        if _expired(rule, now):
            continue
        if "glob" in rule and fnmatch.fnmatchcase(res.key, rule["glob"]):
            return f"glob {rule['glob']}"
        if "path" in rule and before is not None and after is not None:
            try:
                if _without(before, rule["path"]) == _without(after, rule["path"]):
                    return f"path {rule['path']}"
            except (ValueError, KeyError, IndexError, AttributeError):
                pass
        if "cel" in rule:
            try:
                if compile_cel(rule["cel"], ["drift"]).check({"drift": res.to_dict()}):
                    return f"cel {rule['cel']}"
            except CelError:
                continue
    return ""


def check_target_sync(
    ctx: DistContext,
    target: Manifest,
    inv: Mapping[str, Entry],
    blobs: Mapping[str, bytes],
    desired_keys: set[str] | None,
    acks: Sequence[Mapping[str, Any]],
    now: float,
) -> tuple[TargetDrift, dict[str, Observed | None]]:
    """Compare one target with its inventory. Read-only: calls ``read`` and ``discover`` only."""
    spec = target.spec.get("drift") or {}
    report = TargetDrift(target.name, spec.get("mode", "detect"))
    rules = [*spec.get("ignore", []), *acks]
    adapter = ctx.adapter(target.name)
    caps = adapter.capabilities()
    if not caps["read"]:
        return report, {}
    try:
        observed = dict(adapter.read(sorted(inv)))
        found = list(adapter.discover(Scope()))
    except Exception as exc:  # garbage from a target is a reported error, never a crash
        report.error = f"{type(exc).__name__}: {exc}"
        return report, {}
    for key, entry in sorted(inv.items()):
        obs = observed.get(key)
        res = _classify(ctx, key, entry, obs, desired_keys)
        if res.state is DriftState.MODIFIED and obs is not None:
            before = blobs.get(entry.digest)
            res.diff = unified(key, before, obs.data)
            res.ignored = ignored_by(rules, res, before, obs.data, now)
        elif res.state is not DriftState.IN_SYNC:
            res.ignored = ignored_by(rules, res, None, None, now)
        report.resources.append(res)
    for obs in found:
        if obs.key in inv:
            continue
        state = (
            DriftState.CONFLICTING if obs.owner not in (None, ctx.owner) else DriftState.UNMANAGED
        )
        report.resources.append(ResourceDrift(obs.key, state, actual=obs.digest))
    return report, observed


def _classify(
    ctx: DistContext, key: str, entry: Entry, obs: Observed | None, desired: set[str] | None
) -> ResourceDrift:
    if obs is None:
        return ResourceDrift(key, DriftState.MISSING, expected=entry.digest)
    if obs.owner not in (None, ctx.owner):
        return ResourceDrift(key, DriftState.CONFLICTING, entry.digest, obs.digest)
    if desired is not None and key not in desired:
        return ResourceDrift(key, DriftState.ORPHANED, entry.digest, obs.digest)
    if obs.digest != entry.digest:
        return ResourceDrift(key, DriftState.MODIFIED, entry.digest, obs.digest)
    return ResourceDrift(key, DriftState.IN_SYNC, entry.digest, obs.digest)


@dataclass(frozen=True, slots=True)
class Budget:
    max: int
    per: float

    @classmethod
    def of(cls, target: Manifest) -> Budget:
        raw = (target.spec.get("drift") or {}).get("correctionBudget") or {}
        return cls(int(raw.get("max", 3)), seconds(raw.get("per"), 3600.0))


def backoff(recent: int) -> float:
    """Seconds to wait after ``recent`` corrections in the window: 0, 1, 2, 4, ... (max 5 min)."""
    return 0.0 if recent == 0 else min(2.0 ** (recent - 1), 300.0)


async def check_distribution(
    ctx: DistContext, store: Store, *, now: float | None = None, heal: bool = True
) -> list[TargetDrift]:
    """Check every target of the distribution; heal or propose per its mode when ``heal``."""
    at = time.time() if now is None else now
    return [await check_target(ctx, store, t, now=at, heal=heal) for t in ctx.targets()]


async def check_target(
    ctx: DistContext, store: Store, target: Manifest, *, now: float, heal: bool = True
) -> TargetDrift:
    """Check one target; heal (``correct``) or propose (``adopt``) per its mode when ``heal``.

    ``detect`` (and ``heal=False``) only reads the target; the store gets the check's state
    and, when something drifted, an audit entry.
    """
    mode = (target.spec.get("drift") or {}).get("mode", "detect")
    if mode == "off":
        return TargetDrift(target.name, "off")
    inv = await inventory.load(store, ctx.name, target.name)
    row = (await inventory.targets(store, ctx.name)).get(target.name, {})
    return await _check_one(ctx, store, target, inv, row, now, heal)


async def _check_one(
    ctx: DistContext,
    store: Store,
    target: Manifest,
    inv: Mapping[str, Entry],
    row: Mapping[str, Any],
    now: float,
    heal: bool,
) -> TargetDrift:
    blobs = await inventory.blobs(store, (e.digest for e in inv.values()))
    detail = dict(row.get("detail") or {})
    acks = [a for a in detail.get("acks", []) if not _expired(a, now)]
    desired_keys = _desired_keys(ctx, target, row.get("release"))
    report, observed = await asyncio.to_thread(
        check_target_sync, ctx, target, inv, blobs, desired_keys, acks, now
    )
    drifted = report.drifted()
    state = "InSync" if not drifted else "Drifted"
    if drifted and heal and report.mode in ("correct", "adopt"):
        step = current_step()
        ruled = await decide(
            ctx.policies(),
            "drift",
            {"drift": report.to_dict()},
            dict(target.labels),
            distribution=ctx.name,
            target=target.name,
            run_id=step.run_id if step else None,
        )
        if ruled.denied:  # policy says: alert, do not touch
            report.mode = f"{report.mode} (policy: {ruled.message()})"
            heal = False
    if drifted and heal and report.mode == "correct":
        state = await _correct(ctx, store, target, report, inv, blobs, observed, detail, now)
    elif drifted and heal and report.mode == "adopt":
        release = str(row.get("release") or "")
        await _propose(ctx, store, target, report, release, inv, blobs, observed, now)
    if detail.get("fighting") and not drifted:
        detail["fighting"] = False
    sync = "Fighting" if report.fighting else state
    detail["last_drift"] = {"at": now, "state": sync, "drifted": [r.key for r in drifted]}
    await inventory.set_target(store, ctx.name, target.name, now, sync=sync, detail=detail)
    if drifted or report.corrected or report.fighting:
        await audit.append(
            store,
            at=now,
            distribution=ctx.name,
            release=str(row.get("release") or ""),
            target=target.name,
            kind="alert" if report.fighting else "drift",
            detail={
                "mode": report.mode,
                "drifted": [r.to_dict() for r in drifted],
                "corrected": report.corrected,
                "fighting": report.fighting,
            },
        )
    return report


def _desired_keys(ctx: DistContext, target: Manifest, release: Any) -> set[str] | None:
    if not release:
        return None
    try:
        return set(ctx.source.render(str(release), _view(target), ctx.transforms_for(target)))
    except Exception:  # the release may be gone from the source; then orphans are not judged
        return None


def _view(target: Manifest) -> Any:
    from spokehub.distribution.wiring import target_view

    return target_view(target)


async def _correct(
    ctx: DistContext,
    store: Store,
    target: Manifest,
    report: TargetDrift,
    inv: Mapping[str, Entry],
    blobs: Mapping[str, bytes],
    observed: Mapping[str, Observed | None],
    detail: dict[str, Any],
    now: float,
) -> str:
    budget = Budget.of(target)
    recent = [t for t in detail.get("corrections", []) if now - float(t) < budget.per]
    if len(recent) >= budget.max:
        report.fighting = True
        detail["fighting"] = True
        detail["corrections"] = recent
        return "Fighting"
    if recent and now - max(recent) < backoff(len(recent)):
        return "Drifted"  # backing off; the next check corrects
    adapter = ctx.adapter(target.name)
    actx = ApplyContext(release="drift-correction", owner=ctx.owner, distribution=ctx.name)
    for res in report.drifted():
        if res.state is DriftState.CONFLICTING:
            continue
        entry = inv[res.key]
        obs = observed.get(res.key)
        action = Action.CREATE if obs is None else Action.UPDATE
        op = Op(
            action,
            res.key,
            None if obs is None else obs.digest,
            entry.digest,
            "drift",
            blobs.get(entry.digest),
            None if obs is None else obs.etag,
        )
        key = idempotency_key(f"drift:{now}", target.name, res.key, entry.digest)
        await asyncio.to_thread(adapter.apply_batch, [(op, key)], ctx=actx)
        await inventory.record(
            store, ctx.name, target.name, [Change(res.key, entry.digest, entry.release)], now
        )
        report.corrected.append(res.key)
    detail["corrections"] = [*recent, now]
    return "InSync"


async def _propose(
    ctx: DistContext,
    store: Store,
    target: Manifest,
    report: TargetDrift,
    release: str,
    inv: Mapping[str, Entry],
    blobs: Mapping[str, bytes],
    observed: Mapping[str, Observed | None],
    now: float,
) -> None:
    """Per drifted resource: a proposed source change (or the rendered patch), audited."""
    for res in report.drifted():
        if res.state is not DriftState.MODIFIED:
            continue
        obs = observed.get(res.key)
        expected = blobs.get(inv[res.key].digest)
        actual = None if obs is None else obs.data
        proposal = await asyncio.to_thread(
            adopt.propose, ctx, target, release, res.key, expected, actual
        )
        report.proposals.append(proposal.patch)
        report.adoptions.append(proposal.to_dict())
        await audit.append(
            store,
            at=now,
            distribution=ctx.name,
            release=release,
            target=target.name,
            kind="adopt.proposed",
            detail=proposal.to_dict(),
        )
