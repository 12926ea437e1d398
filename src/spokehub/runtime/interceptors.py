"""Interceptors: the seam where tracing, metrics, cost accounting and policy plug in.

Each hook takes one frozen input dataclass (so a hook can grow fields without breaking its
implementations) and, for the hooks that wrap an action, the next link of the chain. The
first interceptor given to the ``Client`` is the outermost.

Example:
    >>> class Timing(Interceptor):
    ...     async def execute_step(self, input, call_next):
    ...         began = time.perf_counter()
    ...         try:
    ...             return await call_next(input)
    ...         finally:
    ...             print(input.context.name, time.perf_counter() - began)
    >>> client = Client(interceptors=[Timing()])  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from spokehub.engine.events import Event, EventKind
from spokehub.runtime.context import StepContext
from spokehub.types import JSON

log = logging.getLogger("spokehub.interceptors")

I = TypeVar("I")  # noqa: E741 - the input of a hook
O = TypeVar("O")  # noqa: E741 - its output


@dataclass(frozen=True, slots=True, kw_only=True)
class ExecuteStepInput:
    """One attempt of a step, or of a compensation (``compensation`` is True).

    Step arguments are rebuilt from the ledger by parameter name, so they arrive in ``kwargs``
    (positional-only ones in ``args``); a compensation gets its result and arguments in
    ``args``.
    """

    context: StepContext
    fn: Callable[..., Any]
    args: list[Any]
    kwargs: dict[str, Any]
    is_async: bool
    timeout: float | None
    compensation: bool = False

    def replace(self, **changes: Any) -> ExecuteStepInput:
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True, slots=True, kw_only=True)
class StartRunInput:
    """A run about to be started by a client (child runs start inside their parent).

    ``trace`` is a W3C trace-context carrier (``traceparent``, ``tracestate``) that a tracing
    interceptor sets; it is recorded in the run's ``run_started`` event so that every later
    activation, on any worker, continues the same trace. ``actor`` is who asks (an API token's
    name), recorded as ``started_by``; ``annotations`` are ledger events (kind, data) recorded
    right after ``run_started`` (a policy interceptor records its decision there).
    """

    workflow: str
    run_id: str
    input: dict[str, JSON]
    queue: str
    priority: int
    concurrency_key: str | None = None
    trace: dict[str, str] | None = None
    actor: str | None = None
    labels: tuple[str, ...] = ()  # the workflow's labels
    annotations: tuple[tuple[EventKind, dict[str, JSON]], ...] = ()

    def replace(self, **changes: Any) -> StartRunInput:
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True, slots=True, kw_only=True)
class ActivateRunInput:
    """One activation of a run on a worker: from its claim until it waits, ends or is lost.

    ``events`` is the ledger as it was when the worker claimed the run (the first one is
    ``run_started``), so a hook needs no store read to know where the run comes from.
    """

    run_id: str
    workflow: str
    worker: str  # the lease owner name
    events: Sequence[Event]


@dataclass(frozen=True, slots=True, kw_only=True)
class EventsCommittedInput:
    """Ledger events that were just committed for one run."""

    run_id: str
    workflow: str
    events: Sequence[Event]


class Interceptor:
    """Override the hooks you need; the defaults pass through."""

    async def execute_step(
        self, input: ExecuteStepInput, call_next: Callable[[ExecuteStepInput], Awaitable[Any]]
    ) -> Any:
        """Wrap one step attempt; raise to fail the attempt (the retry policy applies)."""
        return await call_next(input)

    async def start_run(
        self, input: StartRunInput, call_next: Callable[[StartRunInput], Awaitable[Any]]
    ) -> Any:
        """Wrap a client's start; raise to refuse it (nothing is stored)."""
        return await call_next(input)

    async def activate_run(
        self, input: ActivateRunInput, call_next: Callable[[ActivateRunInput], Awaitable[None]]
    ) -> None:
        """Wrap one activation of a run (context for logs and traces, timing)."""
        await call_next(input)

    def events_committed(self, input: EventsCommittedInput) -> None:
        """Observe committed ledger events. Errors here are logged, never fail the run."""


def chain(
    interceptors: Sequence[Interceptor],
    hook: str,
    terminal: Callable[[I], Awaitable[O]],
) -> Callable[[I], Awaitable[O]]:
    """``terminal`` wrapped by each interceptor's ``hook``, the first one outermost."""
    call = terminal
    for interceptor in reversed(interceptors):
        method = getattr(interceptor, hook)
        call = _link(method, call)
    return call


def _link(
    method: Callable[[I, Callable[[I], Awaitable[O]]], Awaitable[O]],
    call_next: Callable[[I], Awaitable[O]],
) -> Callable[[I], Awaitable[O]]:
    async def link(input: I) -> O:
        return await method(input, call_next)

    return link


def notify_committed(interceptors: Sequence[Interceptor], input: EventsCommittedInput) -> None:
    for interceptor in interceptors:
        try:
            interceptor.events_committed(input)
        except Exception:  # observers must not break runs
            log.exception("interceptor %r failed in events_committed", interceptor)
