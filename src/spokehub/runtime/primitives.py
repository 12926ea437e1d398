"""Durable waits for workflow code: timers, signals, approvals, and calling a sync step.

Async workflows use the plain names with ``await``; sync workflows use the ``_sync`` twins.
Both go through ``_call``, so a wait behaves the same in either kind.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ParamSpec, TypeVar, cast

from spokehub.engine.approvals import ApprovalRules
from spokehub.engine.events import CallKind
from spokehub.engine.serde import to_json
from spokehub.errors import SpokehubError
from spokehub.runtime.definitions import StepDefinition, StepSpec, _await
from spokehub.runtime.scope import Scope, Waiter, current_scope
from spokehub.types import JSON

P = ParamSpec("P")
R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class Decision:
    """The answer to an ``approval``.

    ``by`` is the person whose vote closed it; ``approvers`` all who approved (a quorum);
    ``expired`` is True when nobody decided in time and ``on_timeout="approve"`` applied.
    """

    approved: bool
    comment: str | None = None
    by: str | None = None
    approvers: tuple[str, ...] = ()
    expired: bool = False


@dataclass(frozen=True, slots=True)
class TimerSpec:
    until: float | None  # absolute time, or None for a relative delay
    seconds: float


@dataclass(frozen=True, slots=True)
class SignalSpec:
    name: str
    timeout: float | None


@dataclass(frozen=True, slots=True)
class ApprovalSpec:
    name: str
    subject: JSON
    timeout: float | None
    rules: ApprovalRules

    @property
    def assignees(self) -> tuple[str, ...]:
        return self.rules.assignees


def _scope(api: str, want_async: bool) -> Scope:
    scope = current_scope.get()
    if scope is None:
        raise SpokehubError(f"{api}() works only inside a running workflow")
    if scope.is_async != want_async:
        other = api.removesuffix("_sync") if scope.is_async else api + "_sync"
        kind = "async" if scope.is_async else "sync"
        raise TypeError(f"{api}() called from a {kind} workflow; use {other}() there")
    return scope


def _call(api: str, want_async: bool, kind: CallKind, name: str, spec: Any) -> Waiter:
    return _scope(api, want_async).call(kind, name, spec)


def _check_seconds(seconds: float | None, what: str) -> None:
    if seconds is not None and (not isinstance(seconds, int | float) or seconds < 0):
        raise ValueError(f"{what} must be a number of seconds >= 0, got {seconds!r}")


def _timer(api: str, want_async: bool, seconds: float = 0, until: datetime | None = None) -> Waiter:
    if until is not None:
        if until.tzinfo is None:
            raise ValueError(f"{api}(): give a timezone-aware datetime (e.g. tzinfo=UTC)")
        spec = TimerSpec(until=until.timestamp(), seconds=0)
    else:
        _check_seconds(seconds, "sleep duration")
        spec = TimerSpec(until=None, seconds=float(seconds))
    return _call(api, want_async, CallKind.TIMER, "sleep", spec)


def sleep(seconds: float) -> Awaitable[None]:
    """Wait durably: the run may unload, and resumes after ``seconds`` even across restarts."""
    return cast(Awaitable[None], _await(_timer("sleep", True, seconds)))


def sleep_until(when: datetime) -> Awaitable[None]:
    """Wait durably until a timezone-aware moment."""
    return cast(Awaitable[None], _await(_timer("sleep_until", True, until=when)))


def sleep_sync(seconds: float) -> None:
    _timer("sleep_sync", False, seconds).wait()  # type: ignore[attr-defined]


def sleep_until_sync(when: datetime) -> None:
    _timer("sleep_until_sync", False, until=when).wait()  # type: ignore[attr-defined]


def _signal(api: str, want_async: bool, name: str, timeout: float | None) -> Waiter:
    if not isinstance(name, str) or not name:
        raise ValueError("a signal name is a non-empty string")
    _check_seconds(timeout, "timeout")
    return _call(api, want_async, CallKind.SIGNAL, name, SignalSpec(name, timeout))


def wait_for_signal(name: str, *, timeout: float | None = None) -> Awaitable[JSON]:
    """Wait for the next signal ``name`` sent to this run and return its payload.

    Each signal is delivered once. Signals sent before the wait are kept and delivered in the
    order they were sent. Raises ``WaitTimeout`` after ``timeout`` seconds.
    """
    return cast(Awaitable[JSON], _await(_signal("wait_for_signal", True, name, timeout)))


def wait_for_signal_sync(name: str, *, timeout: float | None = None) -> JSON:
    return _signal("wait_for_signal_sync", False, name, timeout).wait()  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True, kw_only=True)
class _ApprovalOptions:
    subject: Any = None
    timeout: float | None = None
    assignees: Sequence[str] = ()
    quorum: int | None = None
    rejections: int = 1
    allow_self: bool | None = None
    on_timeout: str | None = None
    remind_every: float | None = None
    escalate_after: float | None = None
    escalate_to: Sequence[str] = ()


def _rules(name: str, o: _ApprovalOptions) -> ApprovalRules:
    if isinstance(o.assignees, str) or isinstance(o.escalate_to, str):
        raise TypeError("assignees and escalate_to are lists of names, e.g. ['alice']")
    assignees = tuple(o.assignees)
    if o.quorum is not None and o.quorum > 0 and not assignees:
        raise ValueError(
            f"approval {name!r}: quorum={o.quorum} needs assignees to count; name them with "
            "assignees=[users or 'role:NAME'], or drop quorum to let anyone allowed decide"
        )
    for what in ("remind_every", "escalate_after"):
        _check_seconds(getattr(o, what), what)
    return ApprovalRules(
        name=name,
        assignees=assignees,
        quorum=1 if o.quorum is None else o.quorum,
        rejections=o.rejections,
        # Named assignees: nobody approves their own run unless allowed. The original form
        # (no assignees) keeps its meaning: anyone allowed to approve may decide.
        allow_self=(not assignees) if o.allow_self is None else o.allow_self,
        timeout=o.timeout,
        on_timeout=o.on_timeout,
        remind_every=o.remind_every,
        escalate_after=o.escalate_after,
        escalate_to=tuple(o.escalate_to),
    )


def _approval(api: str, want_async: bool, name: str, options: _ApprovalOptions) -> Waiter:
    if not isinstance(name, str) or not name:
        raise ValueError("an approval name is a non-empty string")
    _check_seconds(options.timeout, "timeout")
    rules = _rules(name, options)
    subject = to_json(options.subject, what="approval subject")
    spec = ApprovalSpec(name, subject, options.timeout, rules)
    return _call(api, want_async, CallKind.APPROVAL, name, spec)


def approval(
    name: str,
    *,
    subject: Any = None,
    timeout: float | None = None,
    assignees: Sequence[str] = (),
    quorum: int | None = None,
    rejections: int = 1,
    allow_self: bool | None = None,
    on_timeout: str | None = None,
    remind_every: float | None = None,
    escalate_after: float | None = None,
    escalate_to: Sequence[str] = (),
) -> Awaitable[Decision]:
    """Ask people to approve, and wait durably for the outcome.

    Args:
        subject: what is to be approved (JSON), shown in the inbox.
        timeout: seconds until the approval expires.
        assignees: who may decide: user names and ``"role:NAME"``; empty lets anyone with
            the approve permission decide.
        quorum: distinct approvers needed (default 1; at most the number of named users).
        rejections: distinct rejections that reject (default 1: one rejection rejects).
        allow_self: whether the actor who started the run may decide (default: False when
            assignees are named).
        on_timeout: at expiry ``"reject"``, ``"approve"`` or ``"escalate"`` (to
            ``escalate_to``, then one more ``timeout`` before it rejects); None raises
            ``WaitTimeout``.
        remind_every: seconds between reminders (``approval_reminded`` ledger events).
        escalate_after: seconds until ``escalate_to`` are added to the assignees.
        escalate_to: users or roles the approval escalates to.

    Returns the ``Decision`` when approved; raises ``ApprovalRejected`` when rejected.

    Example:
        >>> decision = await approval(  # doctest: +SKIP
        ...     "deploy", assignees=["alice", "bob", "role:admin"], quorum=2, timeout=86400,
        ...     on_timeout="reject", remind_every=3600)
    """
    options = _ApprovalOptions(
        subject=subject,
        timeout=timeout,
        assignees=assignees,
        quorum=quorum,
        rejections=rejections,
        allow_self=allow_self,
        on_timeout=on_timeout,
        remind_every=remind_every,
        escalate_after=escalate_after,
        escalate_to=escalate_to,
    )
    return cast(Awaitable[Decision], _await(_approval("approval", True, name, options)))


def approval_sync(
    name: str,
    *,
    subject: Any = None,
    timeout: float | None = None,
    assignees: Sequence[str] = (),
    quorum: int | None = None,
    rejections: int = 1,
    allow_self: bool | None = None,
    on_timeout: str | None = None,
    remind_every: float | None = None,
    escalate_after: float | None = None,
    escalate_to: Sequence[str] = (),
) -> Decision:
    """``approval`` for sync workflows."""
    options = _ApprovalOptions(
        subject=subject,
        timeout=timeout,
        assignees=assignees,
        quorum=quorum,
        rejections=rejections,
        allow_self=allow_self,
        on_timeout=on_timeout,
        remind_every=remind_every,
        escalate_after=escalate_after,
        escalate_to=escalate_to,
    )
    waiter = _approval("approval_sync", False, name, options)
    return cast(Decision, waiter.wait())  # type: ignore[attr-defined]


def call(step: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> Awaitable[R]:
    """Await any step from an async workflow, including a plain (sync) one.

    A sync step runs in a worker thread so the worker's event loop stays free.
    """
    if not isinstance(step, StepDefinition):
        raise TypeError(f"spokehub.call() takes a @step function, got {step!r}")
    scope = _scope("call", True)
    spec = StepSpec(step, step.codec.bind(args, kwargs))
    return cast(Awaitable[R], _await(scope.call(CallKind.STEP, step.name, spec)))
