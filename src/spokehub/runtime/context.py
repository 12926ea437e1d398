"""What running code can ask about itself: ``step_context()`` and ``workflow_context()``."""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from spokehub.errors import SpokehubError


@dataclass(frozen=True, slots=True)
class StepContext:
    """The identity of one step attempt.

    Attributes:
        run_id: the run the step belongs to.
        workflow: that run's workflow name.
        step: the call number of the step in the run (1 for the first call).
        name: the step's registered name.
        attempt: 1 for the first try, 2 for the first retry, ...
        idempotency_key: stable across attempts, replays and worker restarts; send it to
            external systems so that an effect retried after a crash still happens once.
        labels: the step's labels (``@step(labels=[...])``).
    """

    run_id: str
    workflow: str
    step: int
    name: str
    attempt: int
    idempotency_key: str
    labels: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class WorkflowContext:
    run_id: str
    workflow: str
    version: str
    parent_id: str | None


_step: ContextVar[StepContext | None] = ContextVar("spokehub_step", default=None)
_workflow: ContextVar[WorkflowContext | None] = ContextVar("spokehub_workflow", default=None)
# The Client whose worker drives the current run: layers above the runtime (LLM steps) reach
# its store and clock through it, since the runtime cannot import them.
_client: ContextVar[Any] = ContextVar("spokehub_client", default=None)


def current_client() -> Any:
    """The ``Client`` whose worker runs the current workflow or step, or None outside one."""
    return _client.get()


def step_context() -> StepContext:
    """The context of the step attempt that is running now.

    Example:
        >>> @step
        ... async def charge(order_id: str) -> str:
        ...     key = step_context().idempotency_key
        ...     return await payments.charge(order_id, idempotency_key=key)  # doctest: +SKIP
    """
    ctx = _step.get()
    if ctx is None:
        raise SpokehubError("step_context() is only available while a step runs inside a run")
    return ctx


def current_step() -> StepContext | None:
    """The running step attempt's context, or None outside a step (for log enrichment)."""
    return _step.get()


def current_workflow() -> WorkflowContext | None:
    """The running workflow's context, or None outside workflow code (for log enrichment)."""
    return _workflow.get()


def workflow_context() -> WorkflowContext:
    """The context of the workflow run whose code is running now."""
    ctx = _workflow.get()
    if ctx is None:
        raise SpokehubError("workflow_context() is only available inside a running workflow")
    return ctx
