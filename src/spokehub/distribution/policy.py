"""Policy checks at the hook points, VAP-shaped: validations in CEL, scope by target labels.

This is the seam to the governance layer: ``PolicyCheck`` is any callable from (stage, input
document, target labels) to a ``PolicyResult``. The default, ``ManifestPolicies``, evaluates the
hub's ``Policy`` manifests with the CEL seam; the governance ``PolicyEngine`` plugs in here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from spokehub.distribution.cel import CelError, compile_cel
from spokehub.distribution.manifests import Manifest
from spokehub.distribution.selectors import matches

STAGES = ("pre-release", "post-transform", "pre-apply", "analysis", "drift", "rollback")
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

    @property
    def denied(self) -> bool:
        return self.decision == "deny"

    def message(self) -> str:
        return "; ".join(f"{v.policy}: {v.message}" for v in self.violations)

    def to_dict(self) -> dict[str, Any]:
        return {"decision": self.decision, "violations": [v.to_dict() for v in self.violations]}


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
