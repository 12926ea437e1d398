"""What recorded events mean to workflow code, and undoing a step (saga compensation).

Both are shared by live execution and replay, so the code sees the same thing either way.
"""

from __future__ import annotations

import asyncio
import traceback
from collections.abc import Sequence
from typing import Any

from spokehub.engine.events import Event, EventKind
from spokehub.errors import (
    ApprovalRejected,
    ChildRunFailed,
    PolicyDenied,
    StepFailed,
    WaitTimeout,
    error_info,
)
from spokehub.runtime.context import StepContext
from spokehub.runtime.definitions import REGISTRY, ChildSpec, StepSpec
from spokehub.runtime.interceptors import Interceptor
from spokehub.runtime.primitives import Decision
from spokehub.runtime.scope import Call
from spokehub.runtime.steps import run_attempt
from spokehub.types import RunStatus


def value_of(call: Call, event: Event) -> Any:
    """What a resolution event gives the workflow code: a value, or an exception to raise."""
    d = event.data
    kind = event.kind
    if kind is EventKind.STEP_COMPLETED:
        spec: StepSpec = call.spec
        return spec.step.codec.decode_result(d["result"])
    if kind is EventKind.STEP_FAILED:
        err = d.get("error", {})
        if err.get("code") == PolicyDenied.code:  # the step was refused, not run: say so
            raise PolicyDenied(err.get("message", ""), err.get("violations"))
        raise StepFailed(call.name, err.get("type", "Error"), err.get("message", ""), d["attempts"])
    if kind is EventKind.TIMER_FIRED:
        return None
    if kind is EventKind.SIGNAL_RECEIVED:
        return d.get("payload")
    if kind is EventKind.APPROVAL_DECIDED:
        if not d.get("approved"):
            raise ApprovalRejected(call.name, d.get("comment"), d.get("by"))
        votes = d.get("votes") or ()
        approvers = tuple(v["by"] for v in votes if v.get("approved"))
        return Decision(
            True, d.get("comment"), d.get("by"), approvers, expired=bool(d.get("expired"))
        )
    if kind is EventKind.WAIT_TIMED_OUT:
        raise WaitTimeout(f"{d.get('call')} {call.name!r} was not received in time")
    if kind is EventKind.CHILD_FINISHED:
        if d.get("status") != RunStatus.COMPLETED.value:
            raise ChildRunFailed(d["child_id"], d.get("status", "failed"), d.get("error"))
        child: ChildSpec = call.spec
        return child.workflow.codec.decode_result(d.get("result"))
    raise AssertionError(f"not a resolution: {kind}")


def error_dict(exc: BaseException, *, with_traceback: bool = False) -> dict[str, Any]:
    info = error_info(exc)
    if with_traceback and exc.__traceback__ is not None:
        text = "".join(traceback.format_exception(exc))
        info["traceback"] = text[-4000:]
    return info


async def run_compensation(
    event: Event, run_id: str, workflow: str, interceptors: Sequence[Interceptor] = ()
) -> tuple[bool, int, dict[str, Any] | None]:
    """Undo one completed step: ``undo(result, *args)``, retried per the step's policy.

    Retries wait in memory (see docs/design.md); each attempt has the same idempotency key.
    Returns (ok, attempts, error).
    """
    name = event.data["name"]
    st = REGISTRY.step_for(event.data.get("ref"), name)
    if st is None or st.compensate is None:
        return (
            False,
            0,
            {"type": "NotRegistered", "message": f"step {name!r} is not registered"},
        )
    args, kwargs = st.codec.call_positional(event.data.get("args", {}))
    result = st.codec.decode_result(event.data.get("result"))
    undo = st.compensate
    is_async = asyncio.iscoroutinefunction(undo)
    attempt = 0
    while True:
        attempt += 1
        ctx = StepContext(
            run_id=run_id,
            workflow=workflow,
            step=event.seq or 0,
            name=f"{name}.compensate",
            attempt=attempt,
            idempotency_key=f"{run_id}:{event.seq}:compensate",
        )
        try:
            await asyncio.create_task(
                run_attempt(
                    undo,
                    [result, *args],
                    kwargs,
                    is_async=is_async,
                    timeout=st.timeout,
                    ctx=ctx,
                    interceptors=interceptors,
                    compensation=True,
                )
            )
            return True, attempt, None
        except Exception as exc:
            if not st.retry.retries(exc, attempt):
                return False, attempt, error_dict(exc)
            await asyncio.sleep(st.retry.delay(attempt, seed=ctx.idempotency_key))
