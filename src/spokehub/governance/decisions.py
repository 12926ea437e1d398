"""Evaluating a policy set at a hook point: one ``PolicyDecision`` per evaluation.

Every matching binding runs its policy: match conditions (all must hold), then variables in
order, then each validation. A validation that is false is a violation; one that raises or
gives an error value, or gives a non-boolean, fails closed: the decision is ``deny`` with
reason ``EvaluationError`` whatever the binding's actions. A failed binding's actions decide
the rest: ``Deny`` denies, ``Warn`` warns, ``Audit`` only records. An unexpired exception that
matches turns a failed binding into ``excepted`` (recorded, not enforced).
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from spokehub.engine.events import Event, EventKind
from spokehub.engine.serde import _default as json_default
from spokehub.engine.serde import canonical
from spokehub.errors import SerializationError
from spokehub.governance.engines import EvaluationFailed, PolicyEngine
from spokehub.governance.policyset import CompiledPolicy, PolicySet
from spokehub.types import JSON

__all__ = [
    "EVALUATION_ERROR",
    "BindingResult",
    "PolicyDecision",
    "Subject",
    "Violation",
    "decisions_in",
    "evaluate",
]

EVALUATION_ERROR = "EvaluationError"
ALLOW, WARN, DENY = "allow", "warn", "deny"


@dataclass(frozen=True, slots=True)
class Subject:
    """What is being decided: the hook point and the names bindings match on."""

    hook: str
    workflow: str | None = None
    name: str | None = None  # the step, gate or approval name
    actor: str | None = None
    run_id: str | None = None
    labels: tuple[str, ...] = ()

    def key(self) -> tuple[str, str | None, str | None, str | None, tuple[str, ...]]:
        """What bindings match on, in ``Match.matches`` order."""
        return (self.hook, self.workflow, self.name, self.actor, self.labels)


@dataclass(frozen=True, slots=True)
class Violation:
    message: str
    reason: str
    expression: str  # "file:line" of the expression that failed

    def to_dict(self) -> dict[str, str]:
        return {"message": self.message, "reason": self.reason, "expression": self.expression}


@dataclass(frozen=True, slots=True)
class BindingResult:
    """One binding's verdict: ``pass``, ``fail``, ``error``, ``excepted`` or ``skipped``
    (its policy's match conditions did not hold)."""

    binding: str
    policy: str
    policy_digest: str
    actions: tuple[str, ...]
    outcome: str
    violations: tuple[Violation, ...] = ()
    exception: str | None = None

    def to_dict(self, *, compact: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {
            "binding": self.binding,
            "policy": self.policy,
            "policy_digest": self.policy_digest,
            "actions": list(self.actions),
            "outcome": self.outcome,
            "violations": [v.to_dict() for v in self.violations],
        }
        if self.exception:
            out["exception"] = self.exception
        if compact and not self.violations:
            del out["violations"]  # a pass needs no empty list in every step's record
        return out

    @property
    def effect(self) -> str:
        """What this result does to the decision."""
        if self.outcome == "error":
            return DENY  # fail closed
        if self.outcome != "fail":
            return ALLOW
        if "Deny" in self.actions:
            return DENY
        return WARN if "Warn" in self.actions else ALLOW


@dataclass(frozen=True, slots=True)
class PolicyDecision:
    """The answer at one hook point, as recorded in the run's ledger and the audit log."""

    hook: str
    decision: str  # allow | warn | deny
    policy_set: str
    input_digest: str
    engine: str
    results: tuple[BindingResult, ...] = ()
    subject: dict[str, str] = field(default_factory=dict)

    @property
    def denied(self) -> bool:
        return self.decision == DENY

    @property
    def matched(self) -> bool:
        """Whether any binding applied (a decision nobody bound is not worth recording)."""
        return any(r.outcome != "skipped" for r in self.results)

    def messages(self, effect: str | None = None) -> list[str]:
        """Violation messages (of results with ``effect``, or all), with their policy."""
        return [
            f"{r.policy}: {v.message}"
            for r in self.results
            if effect is None or r.effect == effect
            for v in r.violations
        ]

    def violations(self, effect: str | None = None) -> list[dict[str, str]]:
        return [
            {"policy": r.policy, "binding": r.binding, **v.to_dict()}
            for r in self.results
            if effect is None or r.effect == effect
            for v in r.violations
        ]

    def to_dict(self, *, compact: bool = False) -> dict[str, Any]:
        """The decision as recorded. ``compact`` (a step's ledger note) leaves out what the
        step's own event says already (run, workflow, step name) and empty violation lists."""
        out = {
            "hook": self.hook,
            "decision": self.decision,
            "policy_set": self.policy_set,
            "input_digest": self.input_digest,
            "engine": self.engine,
            "subject": dict(self.subject),
            "results": [r.to_dict(compact=compact) for r in self.results],
        }
        if compact:
            out["subject"] = {"hook": self.hook, "name": self.subject.get("name", "")}
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PolicyDecision:
        results = tuple(
            BindingResult(
                binding=r["binding"],
                policy=r["policy"],
                policy_digest=r.get("policy_digest", ""),
                actions=tuple(r.get("actions", ())),
                outcome=r["outcome"],
                violations=tuple(
                    Violation(v["message"], v["reason"], v.get("expression", ""))
                    for v in r.get("violations", ())
                ),
                exception=r.get("exception"),
            )
            for r in data.get("results", ())
        )
        return cls(
            hook=data["hook"],
            decision=data["decision"],
            policy_set=data.get("policy_set", ""),
            input_digest=data.get("input_digest", ""),
            engine=data.get("engine", ""),
            results=results,
            subject=dict(data.get("subject", {})),
        )


@functools.lru_cache(maxsize=64)
def _rfc3339(now: float) -> str:
    # Cached: a busy worker asks for the same few instants (a FakeClock, a coarse clock).
    return datetime.fromtimestamp(now, UTC).isoformat().replace("+00:00", "Z")


def _where(file: str, line: int) -> str:
    return f"{file}:{line}"


def _error(policy: CompiledPolicy, what: str, line: int, exc: Exception) -> Violation:
    return Violation(
        f"{what} failed to evaluate: {exc}", EVALUATION_ERROR, _where(policy.doc.file, line)
    )


def _variables(
    policy: CompiledPolicy, engine: PolicyEngine, data: dict[str, Any], bound: Any
) -> tuple[Any, list[Violation]]:
    """Evaluate the policy's variables in order; each later one sees the earlier ones."""
    values: dict[str, Any] = {}
    lines = dict(policy.doc.variables)
    for name, program in policy.variables:
        try:
            values[name] = program.evaluate(bound)
            data["variables"] = dict(values)
            bound = engine.bind(data)
        except EvaluationFailed as exc:
            return None, [_error(policy, f"variable {name!r}", lines[name].line, exc)]
    return bound, []


def _run_policy(
    policy: CompiledPolicy, engine: PolicyEngine, data: dict[str, Any]
) -> tuple[str, list[Violation]]:
    """(outcome, violations) of one policy over one input."""
    doc = policy.doc
    data["variables"] = {}
    try:
        bound = engine.bind(data)
    except EvaluationFailed as exc:
        return "error", [_error(policy, "the input", doc.line, exc)]
    lines = dict(doc.match_conditions)
    for name, program in policy.match_conditions:
        try:
            held = program.evaluate(bound)
        except EvaluationFailed as exc:
            return "error", [_error(policy, f"matchCondition {name!r}", lines[name].line, exc)]
        if held is not True:
            return "skipped", []
    if policy.variables:
        bound, errors = _variables(policy, engine, data, bound)
        if errors:
            return "error", errors
    violations: list[Violation] = []
    failed = False
    for check in policy.validations:
        spec = check.spec
        where = _where(doc.file, spec.expression.line)
        try:
            ok = check.program.evaluate(bound)
        except EvaluationFailed as exc:
            violations.append(_error(policy, "expression", spec.expression.line, exc))
            failed = True
            continue
        if not isinstance(ok, bool):
            msg = f"expression gave {type(ok).__name__} {ok!r}, not a bool"
            violations.append(Violation(msg, EVALUATION_ERROR, where))
            failed = True
        elif not ok:
            violations.append(Violation(_message(check, bound), spec.reason, where))
    if failed:
        return "error", violations
    return ("fail" if violations else "pass"), violations


def _message(check: Any, activation: Any) -> str:
    spec = check.spec
    if check.message_program is not None:
        try:
            text = check.message_program.evaluate(activation)
        except EvaluationFailed:
            text = None  # VAP: a failing messageExpression falls back to message
        if isinstance(text, str) and text.strip():
            return text
    return spec.message or f"failed expression: {spec.expression.text.strip()}"


def input_digest(document: JSON) -> str:
    return "sha256:" + hashlib.sha256(canonical(document).encode()).hexdigest()


def _json_input(document: Any) -> tuple[JSON, str]:
    """The document as JSON values, and its digest, from one canonical serialisation."""
    text = json.dumps(
        document,
        sort_keys=True,
        separators=(",", ":"),
        allow_nan=False,
        default=json_default("policy input"),
    )
    digest = "sha256:" + hashlib.sha256(text.encode()).hexdigest()
    return json.loads(text), digest


def evaluate(policies: PolicySet, subject: Subject, document: Any, *, now: float) -> PolicyDecision:
    """Decide ``document`` at ``subject``'s hook point with every binding that matches it."""
    bindings = [b for b in policies.bindings if b.match.matches(*subject.key())]
    obj: JSON = None
    digest, unreadable = "", None
    if bindings:
        try:
            obj, digest = _json_input(document)  # JSON-compatible first, on every engine
        except (SerializationError, TypeError, ValueError) as exc:  # fail closed
            unreadable = f"the input is not JSON: {exc}"
    request = {
        "hook": subject.hook,
        "workflow": subject.workflow,
        "name": subject.name,
        "actor": subject.actor,
        "run_id": subject.run_id,
        "time": _rfc3339(now),
    }
    results: list[BindingResult] = []
    for binding in bindings:
        policy = policies.policies[binding.policy]
        if unreadable is not None:
            where = _where(policy.doc.file, policy.doc.line)
            outcome, violations = "error", [Violation(unreadable, EVALUATION_ERROR, where)]
        else:
            assert policies.cel is not None  # a set with bindings was compiled by an engine
            data = {"object": obj, "params": binding.params, "request": request}
            outcome, violations = _run_policy(policy, policies.cel, data)
        exception = None
        if outcome in ("fail", "error"):
            exception = next(
                (
                    e.name
                    for e in policies.exceptions
                    if e.applies(policy.name, binding.name, now) and e.match.matches(*subject.key())
                ),
                None,
            )
            if exception is not None:
                outcome = "excepted"
        results.append(
            BindingResult(
                binding=binding.name,
                policy=policy.name,
                policy_digest=policy.digest,
                actions=binding.actions,
                outcome=outcome,
                violations=tuple(violations),
                exception=exception,
            )
        )
    effects = {r.effect for r in results}
    decision = DENY if DENY in effects else WARN if WARN in effects else ALLOW
    return PolicyDecision(
        hook=subject.hook,
        decision=decision,
        policy_set=policies.digest,
        input_digest=digest,
        engine=policies.engine,
        results=tuple(results),
        subject={k: v for k, v in request.items() if v is not None and k != "time"},
    )


def decisions_in(events: Sequence[Event]) -> list[dict[str, Any]]:
    """A run's policy decisions from its ledger, in order, each with ``seq`` (the call it
    judged, None at the start) and ``at``: ``policy_decided`` events and the ``notes`` that
    step outcome events carry."""
    found: list[dict[str, Any]] = []
    for e in events:
        if e.kind is EventKind.POLICY_DECIDED:
            found.append({"seq": e.seq, "at": e.at, **e.data})
            continue
        for note in e.data.get("notes", ()) if e.seq is not None else ():
            if isinstance(note, dict) and note.get("kind") == EventKind.POLICY_DECIDED.value:
                found.append({"seq": e.seq, "at": e.at, **note.get("data", {})})
    return found
