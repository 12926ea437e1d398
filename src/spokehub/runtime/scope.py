"""The link between running workflow code and the driver that executes its run.

Workflow code never touches the store. Each durable call (a step, a sleep, a signal wait, an
approval, a child run) goes through ``Scope.call``, which numbers it, checks it against the
history and hands the driver a ``Call`` with a waiter. The driver resolves the waiter with the
recorded or the live result. The current scope is found through a context variable, which
asyncio copies into every task the workflow creates, so ``asyncio.gather`` branches share it.
"""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Protocol

from spokehub.engine.events import CallKind
from spokehub.engine.history import CallRecord, Replay
from spokehub.errors import Cancelled, NonDeterminismError


class Unload(BaseException):
    """Raised into workflow code that keeps calling after its run was unloaded."""


class Waiter(Protocol):
    def done(self) -> bool: ...
    def set_result(self, value: Any) -> None: ...
    def set_exception(self, exc: BaseException) -> None: ...


@dataclass(slots=True)
class Call:
    seq: int
    kind: CallKind
    name: str
    spec: Any
    waiter: Waiter
    record: CallRecord | None


@dataclass(slots=True)
class Scope:
    """One run's bookkeeping of calls, shared by all tasks of its workflow code."""

    replay: Replay
    is_async: bool
    make_waiter: Callable[[], Waiter] = field(repr=False, default=lambda: _no_waiter())
    next_seq: int = 1
    calls: dict[int, Call] = field(default_factory=dict)
    new: list[Call] = field(default_factory=list)
    fatal: NonDeterminismError | None = None
    cancelled: bool = False
    closed: bool = False

    def call(self, kind: CallKind, name: str, spec: Any) -> Waiter:
        if self.closed:
            raise Unload()
        if self.fatal is not None:
            raise self.fatal
        if self.cancelled:
            raise Cancelled()
        seq = self.next_seq
        self.next_seq += 1
        try:
            record = self.replay.check(seq, kind, name)
        except NonDeterminismError as exc:
            self.fatal = exc
            raise
        waiter = self.make_waiter()
        call = Call(seq, kind, name, spec, waiter, record)
        self.calls[seq] = call
        self.new.append(call)
        return waiter

    def take_new(self) -> list[Call]:
        new, self.new = self.new, []
        return new


def _no_waiter() -> Waiter:
    raise RuntimeError("scope has no waiter factory")


current_scope: ContextVar[Scope | None] = ContextVar("spokehub_scope", default=None)
