"""Hook points: where policies are asked, and how each decision reaches the ledger.

Built in: ``run.start`` (a client or the API starts a run), ``step`` (before each attempt of a
step whose name a binding matches), ``gate`` (``await policy_gate(name, document)`` inside a
workflow) and ``approval`` (an approve or reject decision). Later layers name their own with
``register_hook`` and ask through ``Policies.decide``.

``PolicyInterceptor`` plugs the first three into the runtime's interceptor seam:
``Client(interceptors=[PolicyInterceptor(policies)])``; the CLI's ``worker`` and ``serve``
add it themselves when ``SPOKEHUB_POLICY_DIR`` is set.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from typing import Any, Protocol, cast

from spokehub.engine.events import EventKind
from spokehub.engine.retry import NO_RETRY
from spokehub.errors import PolicyDenied
from spokehub.governance.decisions import PolicyDecision, Subject, evaluate
from spokehub.governance.policyset import PolicySet
from spokehub.governance.source import PolicySource
from spokehub.runtime.annotations import annotate
from spokehub.runtime.clock import Clock, SystemClock
from spokehub.runtime.context import current_workflow
from spokehub.runtime.definitions import step
from spokehub.runtime.interceptors import (
    ActivateRunInput,
    ExecuteStepInput,
    Interceptor,
    StartRunInput,
)

__all__ = [
    "HOOKS",
    "HOOK_APPROVAL",
    "HOOK_GATE",
    "HOOK_RUN_START",
    "HOOK_STEP",
    "DecisionSink",
    "Policies",
    "PolicyInterceptor",
    "active_policies",
    "policy_gate",
    "register_hook",
]

log = logging.getLogger("spokehub.governance")

HOOK_RUN_START = "run.start"
HOOK_STEP = "step"
HOOK_GATE = "gate"
HOOK_APPROVAL = "approval"

HOOKS: dict[str, str] = {
    HOOK_RUN_START: "a run is about to start: object = {workflow, run_id, input, queue, "
    "priority, actor, labels}",
    HOOK_STEP: "a step attempt is about to run: object = {workflow, run_id, step, seq, attempt, "
    "labels, args}",
    HOOK_GATE: "policy_gate(name, document) in workflow code: object = the document",
    HOOK_APPROVAL: "an approval decision: object = {run_id, workflow, name, approved, by, comment}",
}


def register_hook(name: str, description: str) -> str:
    """Declare a hook point of a later layer (e.g. ``distribution.pre-apply``); returns it."""
    if not name or (name in HOOKS and HOOKS[name] != description):
        raise ValueError(f"hook point {name!r} is empty or already declared differently")
    HOOKS[name] = description
    return name


class DecisionSink(Protocol):
    """Where every decision is also written (the audit log implements this)."""

    async def policy_decision(self, decision: PolicyDecision) -> None: ...


class Policies:
    """Decides at hook points with the current policy set, and reports every decision.

    Args:
        source: the policy set, or a ``PolicySource`` that reloads a directory.
        clock: ``request.time`` and exception expiry come from it.
        sink: receives every decision that a binding matched (the audit log).
    """

    def __init__(
        self,
        source: PolicySource | PolicySet,
        *,
        clock: Clock | None = None,
        sink: DecisionSink | None = None,
    ) -> None:
        self.source = source if isinstance(source, PolicySource) else PolicySource.fixed(source)
        self.clock = clock or SystemClock()
        self.sink = sink
        # (hook, workflow, name, actor) -> whether a binding matches, for the current digest.
        self._binds_cache: dict[object, object] = {}

    @property
    def current(self) -> PolicySet:
        return self.source.current()

    def binds(self, subject: Subject) -> bool:
        """Whether any binding of the current set looks at ``subject`` (cheap: no input)."""
        policies = self.current
        cache = self._binds_cache
        if cache.get("digest") != policies.digest or len(cache) > 4096:
            cache.clear()
            cache["digest"] = policies.digest
        key = subject.key()
        found = cache.get(key)
        if found is None:
            found = cache[key] = any(b.match.matches(*key) for b in policies.bindings)
        return bool(found)

    async def decide(
        self, subject: Subject, document: Any, *, enforce: bool = True
    ) -> PolicyDecision:
        """Evaluate ``document`` at ``subject.hook``; report it; raise ``PolicyDenied`` on a
        denial when ``enforce``."""
        decision = evaluate(self.current, subject, document, now=self.clock.now())
        if decision.matched:
            if self.sink is not None:
                await self.sink.policy_decision(decision)
            for message in decision.messages("warn"):
                log.warning("policy warning at %s: %s", subject.hook, message)
        if enforce and decision.denied:
            raise denial(decision)
        return decision


async def check_approval(
    policies: Policies,
    *,
    run_id: str,
    workflow: str,
    name: str | None,
    approved: bool,
    by: str | None,
    comment: str | None,
) -> PolicyDecision:
    """The ``approval`` hook: ask before an approve or reject decision is recorded; raises
    ``PolicyDenied`` when a binding denies it (the approvals layer calls this)."""
    subject = Subject(HOOK_APPROVAL, workflow, name, by, run_id)
    document = {
        "run_id": run_id,
        "workflow": workflow,
        "name": name,
        "approved": approved,
        "by": by,
        "comment": comment,
    }
    return await policies.decide(subject, document)


def denial(decision: PolicyDecision) -> PolicyDenied:
    messages = decision.messages("deny") or ["denied"]
    where = decision.subject.get("name") or decision.hook
    return PolicyDenied(
        f"policy denied {decision.hook} {where!r}: " + "; ".join(messages),
        decision.violations("deny"),
    )


_active: ContextVar[Policies | None] = ContextVar("spokehub_policies", default=None)


def active_policies() -> Policies | None:
    """The policies of the run being executed (set by ``PolicyInterceptor``), or None; later
    layers ask them at hook points of their own from inside their steps."""
    return _active.get()


GATE_STEP = "spokehub.policy_gate"


class PolicyInterceptor(Interceptor):
    """Asks the policies before runs start and before steps run, and makes them available to
    ``policy_gate`` in workflow code. Decisions go to the run's ledger (``policy_decided``
    events) and to the policies' sink."""

    def __init__(self, policies: Policies | PolicySource | PolicySet) -> None:
        self.policies = policies if isinstance(policies, Policies) else Policies(policies)

    async def start_run(
        self, input: StartRunInput, call_next: Callable[[StartRunInput], Awaitable[Any]]
    ) -> Any:
        subject = Subject(
            HOOK_RUN_START, input.workflow, input.workflow, input.actor, input.run_id, input.labels
        )
        document = {
            "workflow": input.workflow,
            "run_id": input.run_id,
            "input": input.input,
            "queue": input.queue,
            "priority": input.priority,
            "actor": input.actor,
            "labels": list(input.labels),
        }
        decision = await self.policies.decide(subject, document)  # a denial stores nothing
        if decision.matched:
            note = (EventKind.POLICY_DECIDED, decision.to_dict())
            input = input.replace(annotations=(*input.annotations, note))
        return await call_next(input)

    async def execute_step(
        self, input: ExecuteStepInput, call_next: Callable[[ExecuteStepInput], Awaitable[Any]]
    ) -> Any:
        ctx = input.context
        if input.compensation or ctx.name == GATE_STEP:
            return await call_next(input)  # an undo is never refused; a gate decides itself
        subject = Subject(HOOK_STEP, ctx.workflow, ctx.name, None, ctx.run_id, ctx.labels)
        if not self.policies.binds(subject):
            return await call_next(input)  # cheap path: no binding looks at this step
        document = {
            "workflow": ctx.workflow,
            "run_id": ctx.run_id,
            "step": ctx.name,
            "seq": ctx.step,
            "attempt": ctx.attempt,
            "labels": list(ctx.labels),
            "args": {**{str(i): a for i, a in enumerate(input.args)}, **input.kwargs},
        }
        decision = await self.policies.decide(subject, document, enforce=False)
        annotate(EventKind.POLICY_DECIDED, decision.to_dict(compact=True))
        if decision.denied:
            raise denial(decision)
        return await call_next(input)

    async def activate_run(
        self, input: ActivateRunInput, call_next: Callable[[ActivateRunInput], Awaitable[None]]
    ) -> None:
        token = _active.set(self.policies)
        try:
            await call_next(input)
        finally:
            _active.reset(token)


@step(name=GATE_STEP, retry=NO_RETRY)
async def _gate(name: str, document: Any) -> dict[str, Any]:
    """The gate as a step: its decision is recorded once and replayed, never re-decided."""
    wf = current_workflow()
    run_id = wf.run_id if wf else None
    subject = Subject(HOOK_GATE, wf.workflow if wf else None, name, None, run_id)
    policies = _active.get()
    if policies is None:
        # Fail closed: a gate that nobody can decide must not let the run through.
        decision = PolicyDecision.from_dict(
            {
                "hook": HOOK_GATE,
                "decision": "deny",
                "subject": {"hook": HOOK_GATE, "name": name},
                "results": [
                    {
                        "binding": "",
                        "policy": "(none)",
                        "outcome": "error",
                        "violations": [
                            {
                                "message": "no policy set is loaded on this worker; set "
                                "SPOKEHUB_POLICY_DIR or pass Client(interceptors="
                                "[PolicyInterceptor(...)])",
                                "reason": "EvaluationError",
                            }
                        ],
                    }
                ],
            }
        )
    else:
        decision = await policies.decide(subject, document, enforce=False)
    annotate(EventKind.POLICY_DECIDED, decision.to_dict())
    return decision.to_dict()


async def policy_gate(name: str, document: Any = None) -> PolicyDecision:
    """Ask the policies bound to gate ``name`` about ``document``, durably.

    The decision is taken once, recorded in the run's ledger and replayed as recorded (a
    policy change later does not change what a run already decided). Returns the decision
    (``allow`` or ``warn``); raises ``PolicyDenied`` with the messages on ``deny``.

    Example:
        >>> @workflow
        ... async def deploy(target: str) -> None:
        ...     await policy_gate("pre-apply", {"target": target, "files": 12})  # doctest: +SKIP
    """
    from spokehub.runtime.primitives import call

    if not isinstance(name, str) or not name:
        raise ValueError("a policy gate needs a non-empty name, e.g. policy_gate('pre-apply', doc)")
    data = await cast(Awaitable[dict[str, Any]], call(_gate, name, document))
    decision = PolicyDecision.from_dict(data)
    if decision.denied:
        raise denial(decision)
    return decision
