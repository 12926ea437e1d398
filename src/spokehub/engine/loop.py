"""A deterministic asyncio event loop that workflow code runs on.

Workflow coroutines do no I/O: every await in them ends at a durable call (a step, a timer, a
signal, ...) whose future the runtime resolves. Running them on this loop rather than the
worker's real loop gives two properties replay needs:

* ``run_until_quiescent`` returns exactly when every workflow task is blocked on a durable
  call, so the runtime knows when a run can be unloaded;
* callbacks run in FIFO order with no timing involved, so the same sequence of resolutions
  always produces the same sequence of calls.

Real timers are refused: ``asyncio.sleep(5)`` inside a workflow would not survive a restart,
so it raises and names ``spokehub.sleep`` instead.
"""

from __future__ import annotations

import asyncio
import collections
import contextvars
from collections.abc import Callable, Coroutine, Generator
from typing import Any, TypeVar

from spokehub.errors import WorkflowSandboxError

T = TypeVar("T")


class WorkflowLoop(asyncio.AbstractEventLoop):
    """Just enough of an event loop for tasks, futures and ``asyncio.gather``."""

    def __init__(self) -> None:
        self._ready: collections.deque[asyncio.Handle] = collections.deque()
        self._closed = False
        self.errors: list[dict[str, Any]] = []
        # asyncio.all_tasks() walks every task of every loop in the process; a workflow
        # loop lists its own, so closing one costs nothing per other run in the worker.
        self.tasks: list[asyncio.Task[Any]] = []

    # -- what tasks and futures use -------------------------------------------------------
    def call_soon(  # type: ignore[override]
        self,
        callback: Callable[..., object],
        *args: Any,
        context: contextvars.Context | None = None,
    ) -> asyncio.Handle:
        handle = asyncio.Handle(callback, args, self, context)
        self._ready.append(handle)
        return handle

    def create_future(self) -> asyncio.Future[Any]:
        return asyncio.Future(loop=self)

    def create_task(
        self,
        coro: Coroutine[Any, Any, T] | Generator[Any, None, T],
        *,
        name: str | None = None,
        context: contextvars.Context | None = None,
    ) -> asyncio.Task[T]:
        task = asyncio.Task(coro, loop=self, name=name, context=context)
        self.tasks.append(task)
        return task

    def get_debug(self) -> bool:
        return False

    def is_running(self) -> bool:
        return not self._closed

    def is_closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        self._closed = True
        self._ready.clear()

    def time(self) -> float:
        return 0.0

    def call_exception_handler(self, context: dict[str, Any]) -> None:
        self.errors.append(context)

    def default_exception_handler(self, context: dict[str, Any]) -> None:
        self.errors.append(context)

    # -- refused: real time and real I/O ----------------------------------------------------
    def call_later(self, *args: Any, **kwargs: Any) -> asyncio.TimerHandle:  # type: ignore[override]
        raise WorkflowSandboxError(
            "real timers do not survive a restart: inside a workflow use "
            "`await spokehub.sleep(seconds)` instead of asyncio.sleep or wait_for; put "
            "time-bound I/O in a step with `@step(timeout=...)`"
        )

    call_at = call_later  # type: ignore[assignment]

    def run_in_executor(self, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        raise WorkflowSandboxError("workflow code does no I/O; move this call into a @step")

    # -- driving ----------------------------------------------------------------------------
    def run_until_quiescent(self) -> None:
        """Run ready callbacks until every task waits on an unresolved future."""
        previous = asyncio.events._get_running_loop()
        asyncio.events._set_running_loop(self)
        try:
            while self._ready:
                handle = self._ready.popleft()
                if not handle.cancelled():
                    handle._run()
        finally:
            asyncio.events._set_running_loop(previous)
