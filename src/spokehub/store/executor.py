"""One thread owns the database connection; callers queue operations and await them.

Whatever has queued up while the previous transaction committed runs in the next one, each
operation inside its own savepoint. That is group commit: a hundred runs finishing a step at
the same moment share one fsync, while a lone caller still gets its own commit at once. It
also means one writer per process, so SQLite never sees two writers from one process.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from spokehub.store.base import StoreStats

T = TypeVar("T")
C = TypeVar("C")

MAX_BATCH = 512


class Dialect(Protocol[C]):  # type: ignore[misc]  # C is used in and out, so it stays invariant
    """What the executor needs to know about a connection."""

    def begin(self, conn: C) -> None: ...
    def commit(self, conn: C) -> None: ...
    def rollback(self, conn: C) -> None: ...
    def savepoint(self, conn: C) -> None: ...
    def release(self, conn: C) -> None: ...
    def rollback_to(self, conn: C) -> None: ...
    def translate(self, exc: Exception) -> Exception: ...
    def changes(self, conn: C) -> int:
        """A counter that grows with every row written on this connection."""
        ...


@dataclass(slots=True)
class _Op(Generic[C]):
    fn: Callable[..., Any]
    args: tuple[Any, ...]
    mode: str  # "read", "write" or "alone" (runs outside any transaction, e.g. VACUUM)
    future: asyncio.Future[Any] | None  # None for an operation run directly by its caller
    loop: asyncio.AbstractEventLoop | None = None


Outcome = tuple[_Op[Any], bool, Any]


def _resolve(outcomes: list[Outcome]) -> None:
    """Settle asyncio futures on their own loop (one call for a whole batch)."""
    for op, ok, value in outcomes:
        if op.future is None or op.future.done():  # its caller was cancelled meanwhile
            continue
        if ok:
            op.future.set_result(value)
        else:
            op.future.set_exception(value)


_STOP = object()


class Executor(Generic[C]):
    def __init__(
        self, connect: Callable[[], C], dialect: Dialect[C], name: str, max_batch: int = MAX_BATCH
    ) -> None:
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._max_batch = max_batch
        self._dialect = dialect
        self.stats = StoreStats()
        ready: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._thread = threading.Thread(
            target=self._main, args=(connect, ready), name=name, daemon=True
        )
        self._closed = False
        # Held by whoever uses the connection: the database thread for a batch, or a caller
        # running one operation directly (see ``run(direct=True)``).
        self._lock = threading.Lock()
        self._conn: C | None = None
        self._thread.start()
        ready.result()  # re-raises a connection error in the caller

    async def run(self, mode: str, fn: Callable[..., T], *args: Any, direct: bool = False) -> T:
        """Run ``fn(conn, *args)`` on the database connection.

        With ``direct`` the caller asserts it has nothing else to do meanwhile (a worker
        driving a single run): when no other operation is queued or running, the operation
        runs right here, on the caller's thread, sparing two thread hand-offs. Whenever other
        work is about, it queues as usual, so group commit still forms under concurrency.
        """
        if self._closed:
            raise RuntimeError("the store is closed")
        conn = self._conn
        if direct and conn is not None and self._queue.empty() and self._lock.acquire(False):
            try:
                self.stats.direct += 1
                ((_, ok, value),) = self._execute(conn, [_Op(fn, args, mode, None)])
            finally:
                self._lock.release()
            if ok:
                return value  # type: ignore[no-any-return]
            raise value
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._queue.put(_Op(fn, args, mode, future, loop))
        return await future

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._queue.put(_STOP)
            self._thread.join()

    # -- the database thread ----------------------------------------------------------------
    def _main(self, connect: Callable[[], C], ready: concurrent.futures.Future[None]) -> None:
        try:
            conn = connect()
        except Exception as exc:
            ready.set_exception(exc)
            return
        self._conn = conn
        ready.set_result(None)
        try:
            while True:
                batch, stop = self._take()
                self._run_batch(conn, batch)
                if stop:
                    break
        finally:
            with self._lock:  # never close the connection under a direct caller
                self._conn = None
                close = getattr(conn, "close", None)
                if close is not None:
                    close()

    def _take(self) -> tuple[list[_Op[C]], bool]:
        first = self._queue.get()
        if first is _STOP:
            return [], True
        batch = [first]
        while len(batch) < self._max_batch and first.mode != "alone":
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is _STOP:
                return batch, True
            if item.mode == "alone":
                self._queue.put(item)  # keeps it for the next round, on its own
                break
            batch.append(item)
        return batch, False

    def _run_batch(self, conn: C, batch: list[_Op[C]]) -> None:
        with self._lock:
            try:
                outcomes = self._execute(conn, batch)
            except Exception as exc:  # the thread must outlive any failure of a batch
                error = self._dialect.translate(exc)
                outcomes = [(op, False, error) for op in batch]
        self._settle(outcomes)

    def _execute(self, conn: C, batch: list[_Op[C]]) -> list[Outcome]:
        """Run a batch: reads as they are, writes in one transaction. Call with the lock held."""
        if not batch:
            return []
        self.stats.batches += 1
        self.stats.operations += len(batch)
        if batch[0].mode == "alone" or all(op.mode == "read" for op in batch):
            return [self._run_one(conn, op) for op in batch]
        d = self._dialect
        changes = d.changes(conn)
        try:
            d.begin(conn)
        except Exception as exc:
            error = d.translate(exc)
            return [(op, False, error) for op in batch]
        if len(batch) == 1:  # alone in its transaction: a failure rolls back the whole of it
            outcomes = [self._run_one(conn, batch[0])]
            if not outcomes[0][1]:
                with contextlib.suppress(Exception):
                    d.rollback(conn)
                return outcomes
        else:
            try:
                outcomes = [self._in_savepoint(conn, op) for op in batch]
            except Exception as exc:  # the transaction itself broke (e.g. connection lost)
                error = d.translate(exc)
                with contextlib.suppress(Exception):
                    d.rollback(conn)
                return [(op, False, error) for op in batch]
        try:
            d.commit(conn)
        except Exception as exc:
            error = d.translate(exc)
            with contextlib.suppress(Exception):  # may already be out of the transaction
                d.rollback(conn)
            return [(op, False, error) for op in batch]
        # A transaction that wrote nothing writes no log record and needs no fsync; counting
        # it would overstate what durability costs.
        if d.changes(conn) != changes:
            self.stats.commits += 1
        return outcomes

    def _settle(self, outcomes: list[Outcome]) -> None:
        """Hand results back: one wake-up per event loop for the whole batch, not one per op."""
        by_loop: dict[asyncio.AbstractEventLoop, list[Outcome]] = {}
        for outcome in outcomes:
            loop = outcome[0].loop
            if loop is not None:
                by_loop.setdefault(loop, []).append(outcome)
        for loop, items in by_loop.items():
            with contextlib.suppress(RuntimeError):  # that loop is closed: nobody waits
                loop.call_soon_threadsafe(_resolve, items)

    def _in_savepoint(self, conn: C, op: _Op[C]) -> Outcome:
        """Run one operation of a batch in its own savepoint.

        Its own failure rolls back only its savepoint; a failure of the savepoint statements
        themselves means the transaction is gone, and is raised for the whole batch.
        """
        d = self._dialect
        d.savepoint(conn)
        try:
            value = op.fn(conn, *op.args)
        except Exception as exc:
            try:
                d.rollback_to(conn)
                d.release(conn)
            except Exception:
                raise exc from None
            return op, False, d.translate(exc)
        d.release(conn)
        return op, True, value

    def _run_one(self, conn: C, op: _Op[C]) -> Outcome:
        try:
            return op, True, op.fn(conn, *op.args)
        except Exception as exc:
            return op, False, self._dialect.translate(exc)
