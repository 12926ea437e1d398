"""The plan: a pure diff of desired resources against what a target holds and what we own.

Nothing here does I/O. ``diff_target`` turns (desired, observed, inventory, discovered) into a
``TargetPlan`` of create / update / delete / no-op / conflict ops with before/after digests and
unified diffs; ``Plan`` groups targets and has a digest that changes whenever the world or the
desired state does, so an apply can refuse a plan that went stale.
"""

from __future__ import annotations

import difflib
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from spokehub.distribution.inventory import Entry
from spokehub.distribution.model import Action, DesiredResource, Observed, Op, canonical_json

MAX_DIFF_BYTES = 256_000


@dataclass(frozen=True, slots=True)
class TargetFacts:
    """What the plan needs to know about a target's adapter and settings."""

    owner: str
    can_read: bool = True
    can_delete: bool = True
    immutable: bool = False
    prune: bool = False
    prune_needs_approval: bool = False


@dataclass(slots=True)
class TargetPlan:
    """The ops for one target, the resources reported but never touched, and text diffs."""

    target: str
    ops: list[Op]
    unmanaged: list[str] = field(default_factory=list)
    conflicting: list[str] = field(default_factory=list)
    diffs: dict[str, str] = field(default_factory=dict)
    prune_needs_approval: bool = False
    error: str = ""

    def changes(self) -> list[Op]:
        return [op for op in self.ops if op.action in (Action.CREATE, Action.UPDATE, Action.DELETE)]

    def counts(self) -> dict[str, int]:
        out = {a.value: 0 for a in Action}
        for op in self.ops:
            out[op.action.value] += 1
        return out

    def has_conflicts(self) -> bool:
        return bool(self.error) or any(op.action is Action.CONFLICT for op in self.ops)

    def summary(self) -> str:
        c = self.counts()
        return (
            f"{c['create']} to create, {c['update']} to update, {c['delete']} to delete, "
            f"{c['no-op']} unchanged" + (f", {c['conflict']} in conflict" if c["conflict"] else "")
        )

    def to_dict(self, *, with_data: bool = False) -> dict[str, Any]:
        return {
            "target": self.target,
            "ops": [op.to_dict(with_data=with_data) for op in self.ops],
            "unmanaged": self.unmanaged,
            "conflicting": self.conflicting,
            "counts": self.counts(),
            "prune_needs_approval": self.prune_needs_approval,
            "error": self.error,
        }

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> TargetPlan:
        return cls(
            target=raw["target"],
            ops=[Op.from_dict(o) for o in raw["ops"]],
            unmanaged=list(raw.get("unmanaged", [])),
            conflicting=list(raw.get("conflicting", [])),
            prune_needs_approval=bool(raw.get("prune_needs_approval")),
            error=raw.get("error", ""),
        )

    def digest(self) -> str:
        body = {k: v for k, v in self.to_dict().items() if k != "counts"}
        return hashlib.sha256(canonical_json(body)).hexdigest()


@dataclass(slots=True)
class Plan:
    """A distribution's plan for one release across its targets."""

    distribution: str
    release: str
    targets: list[TargetPlan]

    @property
    def digest(self) -> str:
        parts = [self.distribution, self.release, *(t.digest() for t in self.targets)]
        return "sha256:" + hashlib.sha256("\n".join(parts).encode()).hexdigest()

    def has_changes(self) -> bool:
        return any(t.changes() for t in self.targets)

    def has_errors(self) -> bool:
        return any(t.has_conflicts() for t in self.targets)

    def totals(self) -> dict[str, int]:
        out: dict[str, int] = {a.value: 0 for a in Action}
        for t in self.targets:
            for k, v in t.counts().items():
                out[k] += v
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "distribution": self.distribution,
            "release": self.release,
            "digest": self.digest,
            "totals": self.totals(),
            "targets": [t.to_dict() for t in self.targets],
            "diffs": {t.target: t.diffs for t in self.targets if t.diffs},
        }


def _text(data: bytes | None) -> list[str] | None:
    if data is None:
        return []
    if len(data) > MAX_DIFF_BYTES:
        return None
    try:
        return data.decode("utf-8").splitlines(keepends=True)
    except UnicodeDecodeError:
        return None


def unified(key: str, before: bytes | None, after: bytes | None) -> str:
    """A unified diff of two versions of a resource (binary or huge: a one-line note)."""
    a, b = _text(before), _text(after)
    if a is None or b is None:
        return f"binary or large resource {key}: contents differ\n"
    if not a and b:  # a new resource: every line is an addition (difflib is slow at this)
        body = "".join("+" + (line if line.endswith("\n") else line + "\n") for line in b)
        return f"--- a/{key}\n+++ b/{key}\n@@ -0,0 +1,{len(b)} @@\n{body}"
    lines = difflib.unified_diff(a, b, f"a/{key}", f"b/{key}", n=2)
    return "".join(line if line.endswith("\n") else line + "\n" for line in lines)


def diff_target(
    target: str,
    desired: Mapping[str, DesiredResource],
    observed: Mapping[str, Observed | None],
    inventory: Mapping[str, Entry],
    discovered: Iterable[Observed],
    facts: TargetFacts,
) -> TargetPlan:
    """The pure diff for one target (see the module docstring)."""
    plan = TargetPlan(target, [], prune_needs_approval=False)
    for key in sorted(desired):
        _desired_op(plan, desired[key], _seen(key, observed, inventory, facts), inventory, facts)
    for key in sorted(set(inventory) - set(desired)):
        _orphan_op(plan, key, _seen(key, observed, inventory, facts), inventory[key], facts)
    for obs in discovered:
        if obs.key in desired or obs.key in inventory:
            continue
        if obs.owner not in (None, facts.owner):
            plan.conflicting.append(obs.key)
        else:
            plan.unmanaged.append(obs.key)
    plan.prune_needs_approval = facts.prune_needs_approval and any(
        op.action is Action.DELETE for op in plan.ops
    )
    return plan


def _seen(
    key: str,
    observed: Mapping[str, Observed | None],
    inventory: Mapping[str, Entry],
    facts: TargetFacts,
) -> Observed | None:
    if facts.can_read:
        return observed.get(key)
    # A write-only target (a webhook): what we sent last is all we can know.
    return _Remembered(key, inventory[key].digest) if key in inventory else None  # type: ignore[return-value]


class _Remembered:
    """Stands in for an Observed on write-only targets: only its digest is known."""

    def __init__(self, key: str, digest: str) -> None:
        self.key, self.digest, self.data, self.etag, self.owner = key, digest, None, None, None


def _desired_op(
    plan: TargetPlan,
    want: DesiredResource,
    obs: Observed | None,
    inventory: Mapping[str, Entry],
    facts: TargetFacts,
) -> None:
    key, after = want.key, want.digest

    def op(
        action: Action, before: str | None = None, reason: str = "", etag: str | None = None
    ) -> Op:
        return Op(action, key, before, after, reason, want.data, etag, want.media_type)

    if obs is None:
        plan.ops.append(op(Action.CREATE))
        plan.diffs[key] = unified(key, None, want.data)
        return
    before = obs.digest
    ours = key in inventory or obs.owner == facts.owner
    if obs.owner not in (None, facts.owner):
        plan.ops.append(op(Action.CONFLICT, before, f"owned by {obs.owner}"))
    elif before == after:
        plan.ops.append(op(Action.NOOP, before, etag=obs.etag))
    elif not ours:
        reason = "exists at the target and is not managed by spokehub; remove or adopt it"
        plan.ops.append(op(Action.CONFLICT, before, reason))
    elif facts.immutable:
        reason = "published versions are immutable; bump the version"
        plan.ops.append(op(Action.CONFLICT, before, reason))
    else:
        plan.ops.append(op(Action.UPDATE, before, etag=obs.etag))
        plan.diffs[key] = unified(key, obs.data, want.data)


def _orphan_op(
    plan: TargetPlan, key: str, obs: Observed | None, entry: Entry, facts: TargetFacts
) -> None:
    if obs is None:
        plan.ops.append(Op(Action.NOOP, key, reason="orphaned and already gone"))
        return
    if obs.owner not in (None, facts.owner):
        plan.ops.append(Op(Action.CONFLICT, key, before=obs.digest, reason=f"owned by {obs.owner}"))
    elif not facts.prune:
        plan.ops.append(Op(Action.NOOP, key, before=obs.digest, reason="orphaned; prune is off"))
    elif not facts.can_delete:
        plan.ops.append(Op(Action.NOOP, key, before=obs.digest, reason="the target keeps it"))
    elif facts.can_read and obs.digest != entry.digest:
        reason = "changed at the target since spokehub wrote it; not deleting an edit"
        plan.ops.append(Op(Action.CONFLICT, key, before=obs.digest, reason=reason))
    else:
        plan.ops.append(Op(Action.DELETE, key, before=obs.digest, etag=obs.etag))
        plan.diffs[key] = unified(key, obs.data, None)
