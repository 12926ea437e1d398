"""Running workflow code one activation at a time, for async and sync workflow functions.

An instance runs the code until every path of it waits on a durable call (``advance``), the
driver resolves some of those calls, and the instance runs again. Async code runs on a
``WorkflowLoop``; sync code runs on its own thread that blocks inside each durable call.
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
from collections.abc import Callable
from typing import Any

from spokehub.engine.loop import WorkflowLoop
from spokehub.runtime.context import WorkflowContext, _workflow
from spokehub.runtime.scope import Scope, Unload, current_scope


def _workflow_context(scope: Scope, wctx: WorkflowContext) -> contextvars.Context:
    """The context workflow code runs in: its scope and ``workflow_context()`` are set."""
    ctx = contextvars.copy_context()
    ctx.run(current_scope.set, scope)
    ctx.run(_workflow.set, wctx)
    return ctx


class AsyncInstance:
    def __init__(
        self,
        fn: Callable[..., Any],
        args: list[Any],
        kwargs: dict[str, Any],
        scope: Scope,
        wctx: WorkflowContext,
    ) -> None:
        self.loop = WorkflowLoop()  # type: ignore[abstract]  # implements what tasks use
        self.scope = scope
        scope.make_waiter = self.loop.create_future
        ctx = _workflow_context(scope, wctx)
        self.task: asyncio.Task[Any] = self.loop.create_task(_main(fn, args, kwargs), context=ctx)

    def advance(self) -> None:
        self.loop.run_until_quiescent()

    @property
    def done(self) -> bool:
        return self.task.done()

    def outcome(self) -> tuple[bool, Any]:
        """(True, value) or (False, exception)."""
        exc = self.task.exception()
        return (False, exc) if exc is not None else (True, self.task.result())

    def close(self) -> None:
        """Drop the code's state: cancel its tasks so their frames are freed."""
        self.scope.closed = True
        if not self.loop.is_closed():
            for task in self.loop.tasks:
                task.cancel()
            self.loop.run_until_quiescent()
            self.loop.close()


async def _main(fn: Callable[..., Any], args: list[Any], kwargs: dict[str, Any]) -> Any:
    return await fn(*args, **kwargs)


class ThreadWaiter:
    """A waiter that blocks the sync workflow's thread until the driver resolves it."""

    __slots__ = ("_event", "_exc", "_instance", "_value")

    def __init__(self, instance: SyncInstance) -> None:
        self._instance = instance
        self._event = threading.Event()
        self._value: Any = None
        self._exc: BaseException | None = None

    def done(self) -> bool:
        return self._event.is_set()

    def set_result(self, value: Any) -> None:
        self._value = value
        self._instance.runnable = True
        self._event.set()

    def set_exception(self, exc: BaseException) -> None:
        self._exc = exc
        self._instance.runnable = True
        self._event.set()

    def wait(self) -> Any:
        self._instance.current = self
        self._instance.blocked.release()  # tell the driver this thread is waiting now
        self._event.wait()
        self._instance.current = None
        if self._exc is not None:
            raise self._exc
        return self._value


class SyncInstance:
    def __init__(
        self,
        fn: Callable[..., Any],
        args: list[Any],
        kwargs: dict[str, Any],
        scope: Scope,
        wctx: WorkflowContext,
    ) -> None:
        self.scope = scope
        self.blocked = threading.Semaphore(0)
        self.runnable = True
        self.current: ThreadWaiter | None = None
        self._result: tuple[bool, Any] | None = None
        scope.make_waiter = lambda: ThreadWaiter(self)
        ctx = _workflow_context(scope, wctx)
        self._thread = threading.Thread(
            target=ctx.run, args=(self._main, fn, args, kwargs), daemon=True, name="spokehub-wf"
        )
        self._started = False

    def _main(self, fn: Callable[..., Any], args: list[Any], kwargs: dict[str, Any]) -> None:
        try:
            self._result = (True, fn(*args, **kwargs))
        except BaseException as exc:  # the outcome of user code, whatever it is
            self._result = (False, exc)
        finally:
            self.blocked.release()

    def advance(self) -> None:
        if not self._started:
            self._started = True
            self._thread.start()
        elif not self.runnable:
            return
        self.runnable = False
        self.blocked.acquire()

    @property
    def done(self) -> bool:
        return self._result is not None

    def outcome(self) -> tuple[bool, Any]:
        assert self._result is not None
        return self._result

    def close(self) -> None:
        self.scope.closed = True
        waiter = self.current
        if waiter is not None and self._result is None:
            waiter.set_exception(Unload())
            self._thread.join(timeout=5)


Instance = AsyncInstance | SyncInstance
