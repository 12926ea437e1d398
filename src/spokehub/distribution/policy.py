"""Policy checks at the distribution hook points, VAP-shaped: validations in CEL, scoped by
target labels.

Two sources decide at each stage (``pre-release``, ``post-transform``, ``pre-apply``,
``analysis``, ``drift``, ``rollback``), and the stricter answer wins:

* the hub's own ``Policy`` manifests (``ManifestPolicies``), compiled with the governance
  layer's CEL engine (``distribution.cel``), so a hub carries its rules with it;
* the governance policy set of the worker (``SPOKEHUB_POLICY_DIR``, ``govern(client)``): every
  stage is a registered governance hook point ``distribution.<stage>``, so an organisation's
  ``PolicyBinding`` (``match: {hooks: [distribution.pre-apply], names: [web-*]}``) applies to
  every distribution without editing a hub. Its decisions go to the governance audit trail and
  its exceptions, actions (``Deny|Warn|Audit``) and fail-closed rules hold as everywhere else.

``decide`` asks both and merges their violations into one ``PolicyResult``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from spokehub.distribution.cel import CelError, compile_cel
from spokehub.distribution.manifests import Manifest
from spokehub.distribution.selectors import matches
from spokehub.governance.decisions import PolicyDecision, Subject
from spokehub.governance.hooks import Policies, active_policies, register_hook

STAGES = ("pre-release", "post-transform", "pre-apply", "analysis", "drift", "rollback")
_OBJECTS = {
    "pre-release": "{release: {id, digest}}",
    "post-transform": "{plan, target, release, wave, distribution, request, artifact}",
    "pre-apply": "{plan, target, release, wave, distribution, request}",
    "analysis": "{measurements: {metric, verdict, phases}}",
    "drift": "{drift: {target, mode, state, resources}}",
    "rollback": "{release: {id}, request: {reason}}",
}
HOOKS = {
    stage: register_hook(
        f"distribution.{stage}",
        f"distribution stage {stage}: name = the target (or the distribution), workflow = the "
        f"distribution, labels = the target's labels as key=value; object = {_OBJECTS[stage]}",
    )
    for stage in STAGES
}
VARIABLES = [
    "plan",
    "target",
    "release",
    "wave",
    "distribution",
    "drift",
    "request",
    "artifact",
    "measurements",
]


@dataclass(frozen=True, slots=True)
class Violation:
    policy: str
    message: str
    reason: str
    action: str

    def to_dict(self) -> dict[str, str]:
        return {
            "policy": self.policy,
            "message": self.message,
            "reason": self.reason,
            "action": self.action,
        }


@dataclass(frozen=True, slots=True)
class PolicyResult:
    """``allow``, ``warn`` or ``deny``, with every violation found."""

    decision: str = "allow"
    violations: list[Violation] = field(default_factory=list)
    governance: dict[str, Any] | None = None  # the governance decision, when one was taken

    @property
    def denied(self) -> bool:
        return self.decision == "deny"

    def message(self) -> str:
        return "; ".join(f"{v.policy}: {v.message}" for v in self.violations)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "decision": self.decision,
            "violations": [v.to_dict() for v in self.violations],
        }
        if self.governance is not None:
            out["governance"] = self.governance
        return out


class PolicyCheck(Protocol):
    def __call__(
        self, stage: str, document: Mapping[str, Any], labels: Mapping[str, str]
    ) -> PolicyResult: ...


class ManifestPolicies:
    """Evaluate ``Policy`` manifests; a CEL error counts as a violation (fail closed)."""

    def __init__(self, policies: Sequence[Manifest]) -> None:
        self.policies = list(policies)

    def __call__(
        self, stage: str, document: Mapping[str, Any], labels: Mapping[str, str]
    ) -> PolicyResult:
        violations = []
        for p in self.policies:
            if stage not in p.spec["stages"]:
                continue
            if not matches((p.spec.get("match") or {}).get("targets"), labels):
                continue
            action = p.spec.get("action", "Deny")
            for v in p.spec["validations"]:
                ok, message = _validate(v, document)
                if not ok:
                    reason = v.get("reason", "Invalid")
                    violations.append(Violation(p.name, message, reason, action))
        if any(v.action == "Deny" for v in violations):
            return PolicyResult("deny", violations)
        if any(v.action == "Warn" for v in violations):
            return PolicyResult("warn", violations)
        return PolicyResult("allow", violations)


def _validate(v: Mapping[str, Any], document: Mapping[str, Any]) -> tuple[bool, str]:
    expr = v["expression"]
    try:
        ok = compile_cel(expr, VARIABLES).check(document)
    except CelError as exc:
        return False, f"could not evaluate {expr!r} ({exc}); failing closed"
    return ok, v.get("message") or f"failed: {expr}"


_RANK = {"allow": 0, "warn": 1, "deny": 2}


def _merge(local: PolicyResult, decision: PolicyDecision) -> PolicyResult:
    """The stricter of the hub's answer and the governance decision, with both violations."""
    found = [
        Violation(v["policy"], v["message"], v["reason"], _action(decision, v["binding"]))
        for v in decision.violations()
    ]
    verdict = max(local.decision, decision.decision, key=lambda d: _RANK.get(d, 2))
    return PolicyResult(verdict, [*local.violations, *found], decision.to_dict())


def _action(decision: PolicyDecision, binding: str) -> str:
    for r in decision.results:
        if r.binding == binding:
            return {"deny": "Deny", "warn": "Warn"}.get(r.effect, "Audit")
    return "Deny"


async def decide(
    manifests: Sequence[Manifest],
    stage: str,
    document: Mapping[str, Any],
    labels: Mapping[str, str],
    *,
    distribution: str,
    target: str = "",
    actor: str | None = None,
    run_id: str | None = None,
    policies: Policies | None = None,
) -> PolicyResult:
    """Decide ``stage`` for ``document`` with the hub's policies and the governance policies
    (``policies``, or those active in the current run); see the module docstring."""
    local = ManifestPolicies(manifests)(stage, document, labels)
    governed = policies if policies is not None else active_policies()
    if governed is None:
        return local
    subject = Subject(
        HOOKS[stage],
        distribution,
        target or distribution,
        actor,
        run_id,
        tuple(f"{k}={v}" for k, v in sorted(labels.items())),
    )
    decision = await governed.decide(subject, dict(document), enforce=False)
    if not decision.matched:
        return local
    return _merge(local, decision)
