"""Durable waits for workflow code: timers, signals, approvals, and calling a sync step.

Async workflows use the plain names with ``await``; sync workflows use the ``_sync`` twins.
Both go through ``_call``, so a wait behaves the same in either kind.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ParamSpec, TypeVar, cast

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
    """A human's answer to an ``approval``."""

    approved: bool
    comment: str | None = None
    by: str | None = None


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
    assignees: tuple[str, ...]


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


def _approval(
    api: str,
    want_async: bool,
    name: str,
    subject: Any,
    timeout: float | None,
    assignees: Sequence[str],
) -> Waiter:
    if not isinstance(name, str) or not name:
        raise ValueError("an approval name is a non-empty string")
    _check_seconds(timeout, "timeout")
    spec = ApprovalSpec(name, to_json(subject, what="approval subject"), timeout, tuple(assignees))
    return _call(api, want_async, CallKind.APPROVAL, name, spec)


def approval(
    name: str,
    *,
    subject: Any = None,
    timeout: float | None = None,
    assignees: Sequence[str] = (),
) -> Awaitable[Decision]:
    """Ask a human to approve, and wait durably for the answer.

    Returns the ``Decision`` when approved; raises ``ApprovalRejected`` when rejected and
    ``WaitTimeout`` when nobody decided within ``timeout`` seconds. Decide from the CLI with
    ``spokehub approve RUN_ID`` / ``spokehub reject RUN_ID --comment ...``.
    """
    waiter = _approval("approval", True, name, subject, timeout, assignees)
    return cast(Awaitable[Decision], _await(waiter))


def approval_sync(
    name: str,
    *,
    subject: Any = None,
    timeout: float | None = None,
    assignees: Sequence[str] = (),
) -> Decision:
    waiter = _approval("approval_sync", False, name, subject, timeout, assignees)
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
