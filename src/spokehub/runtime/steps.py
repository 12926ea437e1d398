"""Running one step attempt (or one compensation) on the worker's real event loop."""

from __future__ import annotations

import asyncio
import contextvars
import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from spokehub.errors import StepTimeout
from spokehub.runtime.context import StepContext, _step


@dataclass(frozen=True, slots=True)
class AttemptOutcome:
    ok: bool
    value: Any  # the return value, or the exception
    started: float
    finished: float


async def run_attempt(
    fn: Callable[..., Any],
    args: list[Any],
    kwargs: dict[str, Any],
    *,
    is_async: bool,
    timeout: float | None,
    ctx: StepContext,
) -> Any:
    """Call ``fn`` with the step context set; sync functions run in a thread.

    A sync attempt that times out keeps running in its thread (Python cannot stop a thread);
    its result is ignored and the attempt counts as failed.
    """
    _step.set(ctx)  # this coroutine runs in its own task, so the setting stays local to it
    if is_async:
        work: Any = fn(*args, **kwargs)
    else:
        loop = asyncio.get_running_loop()
        call = functools.partial(contextvars.copy_context().run, fn, *args, **kwargs)
        work = loop.run_in_executor(None, call)
    if timeout is None:
        return await work
    try:
        return await asyncio.wait_for(work, timeout)
    except TimeoutError:
        raise StepTimeout(
            f"step {ctx.name!r} attempt {ctx.attempt} ran longer than its timeout of {timeout}s"
        ) from None
