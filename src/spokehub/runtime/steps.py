"""Running one step attempt (or one compensation) on the worker's real event loop."""

from __future__ import annotations

import asyncio
import contextvars
import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from spokehub.errors import StepTimeout
from spokehub.runtime.context import StepContext, _step
from spokehub.runtime.interceptors import ExecuteStepInput, Interceptor, chain


@dataclass(frozen=True, slots=True)
class AttemptOutcome:
    ok: bool
    value: Any  # the return value, or the exception
    started: float
    finished: float
    notes: tuple[dict[str, Any], ...] = ()  # annotations recorded during the attempt


async def run_attempt(
    fn: Callable[..., Any],
    args: list[Any],
    kwargs: dict[str, Any],
    *,
    is_async: bool,
    timeout: float | None,
    ctx: StepContext,
    interceptors: Sequence[Interceptor] = (),
    compensation: bool = False,
) -> Any:
    """Call ``fn`` with the step context set, through the interceptors' ``execute_step``.

    Sync functions run in a thread. A sync attempt that times out keeps running in its thread
    (Python cannot stop a thread); its result is ignored and the attempt counts as failed.
    """
    _step.set(ctx)  # this coroutine runs in its own task, so the setting stays local to it
    attempt = ExecuteStepInput(
        context=ctx,
        fn=fn,
        args=args,
        kwargs=kwargs,
        is_async=is_async,
        timeout=timeout,
        compensation=compensation,
    )
    if not interceptors:
        return await _call(attempt)
    return await chain(interceptors, "execute_step", _call)(attempt)


async def _call(attempt: ExecuteStepInput) -> Any:
    fn, args, kwargs, ctx = attempt.fn, attempt.args, attempt.kwargs, attempt.context
    if attempt.is_async:
        work: Any = fn(*args, **kwargs)
    else:
        loop = asyncio.get_running_loop()
        call = functools.partial(contextvars.copy_context().run, fn, *args, **kwargs)
        work = loop.run_in_executor(None, call)
    if attempt.timeout is None:
        return await work
    try:
        return await asyncio.wait_for(work, attempt.timeout)
    except TimeoutError:
        raise StepTimeout(
            f"step {ctx.name!r} attempt {ctx.attempt} ran longer than its timeout of "
            f"{attempt.timeout}s"
        ) from None
