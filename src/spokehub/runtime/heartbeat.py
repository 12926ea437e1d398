"""Lease heartbeats on a thread of their own, and a watchdog for blocked event loops.

Workers run workflow code and async steps on their event loop. If the heartbeat ran there
too, an async step that blocks the loop (``time.sleep(9)``, a synchronous HTTP call, a long
computation) would stop it: the lease runs out, another worker takes the run and the step
runs twice, and after ``max_recoveries`` of that a healthy run is dead-lettered. So each
``Client`` has one heartbeat thread, with an event loop of its own, that renews the leases of
all its workers whatever their loops are doing; it talks to the store like any other caller
(the store's own thread does the I/O).

The same thread watches each worker's loop: it posts a no-op callback to it and, when the
callback has not run after ``BLOCKED_AFTER`` seconds, logs a warning naming the task the loop
is stuck in (the step, with its run and call number), once per blockage.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from spokehub.errors import StoreError

if TYPE_CHECKING:
    from spokehub.runtime.worker import Worker

log = logging.getLogger("spokehub.worker")

BLOCKED_AFTER = 1.0  # seconds a worker's loop may not answer before it is reported
WATCH_EVERY = 0.25  # how often the watchdog looks at each loop


@dataclass(eq=False, slots=True)
class _Entry:
    worker: Worker
    loop: asyncio.AbstractEventLoop
    next_beat: float
    ticks: int = 0
    posted: float | None = None  # when the pending probe was posted to the worker's loop
    warned: bool = False

    def answered(self) -> None:  # runs on the worker's loop
        self.posted = None
        self.warned = False


def blocking_task(loop: asyncio.AbstractEventLoop) -> str:
    """What ``loop`` is executing now (read from another thread: a best-effort name)."""
    task = asyncio.current_task(loop)
    return task.get_name() if task is not None else "a callback outside any task"


class Heartbeats:
    """Renews the leases of a client's workers from one thread, started on first use."""

    def __init__(self) -> None:
        self._entries: dict[int, _Entry] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._changed: asyncio.Event | None = None
        self._closed = False
        self._wakes_at = float("inf")  # when the thread looks next (monotonic)

    def add(self, worker: Worker) -> None:
        """Heartbeat ``worker`` (call on its loop) until ``remove``."""
        entry = _Entry(worker, asyncio.get_running_loop(), time.monotonic() + worker.beat_every)
        with self._lock:
            self._entries[id(worker)] = entry
            if self._thread is None or not self._thread.is_alive():
                ready = threading.Event()
                self._closed = False
                self._thread = threading.Thread(
                    target=self._main, args=(ready,), name="spokehub-heartbeat", daemon=True
                )
                self._thread.start()
                ready.wait()
        if entry.next_beat < self._wakes_at:  # else it looks in time anyway (cheaper)
            self._poke()

    def remove(self, worker: Worker) -> None:
        with self._lock:
            self._entries.pop(id(worker), None)

    def close(self) -> None:
        """Stop the thread (it starts again if a worker is added later)."""
        with self._lock:
            thread, self._closed = self._thread, True
        self._poke()
        if thread is not None:
            thread.join(timeout=5)

    def _poke(self) -> None:
        loop, changed = self._loop, self._changed
        if loop is not None and changed is not None:
            with contextlib.suppress(RuntimeError):  # its loop ended meanwhile
                loop.call_soon_threadsafe(changed.set)

    def _main(self, ready: threading.Event) -> None:
        asyncio.run(self._serve(ready))

    async def _serve(self, ready: threading.Event) -> None:
        self._loop = asyncio.get_running_loop()
        self._changed = changed = asyncio.Event()
        ready.set()
        try:
            while not self._closed:
                with self._lock:
                    entries = list(self._entries.values())
                now = time.monotonic()
                for entry in entries:
                    self._watch(entry, now)
                    if now >= entry.next_beat:
                        entry.next_beat = now + entry.worker.beat_every
                        await self._beat(entry)
                due = min((e.next_beat for e in entries), default=now + 3600)
                wait = max(0.0, min(due - time.monotonic(), WATCH_EVERY if entries else 3600))
                self._wakes_at = time.monotonic() + wait
                changed.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(changed.wait(), wait)
        finally:
            self._loop = self._changed = None

    def _watch(self, entry: _Entry, now: float) -> None:
        if entry.posted is None:
            entry.posted = now
            try:
                entry.loop.call_soon_threadsafe(entry.answered)
            except RuntimeError:  # the worker's loop is closed; remove() follows
                entry.posted = None
            return
        blocked = now - entry.posted
        if blocked >= BLOCKED_AFTER and not entry.warned:
            entry.warned = True
            log.warning(
                "worker %s: its event loop has been blocked for %.1fs by %s; the lease is "
                "still renewed, but nothing else of this worker runs meanwhile. An async step "
                "must not block (time.sleep, synchronous I/O, long computations): await "
                "asyncio.sleep / an async client, or make the step a plain def (it then runs "
                "in a thread)",
                entry.worker.owner,
                blocked,
                blocking_task(entry.loop),
            )

    async def _beat(self, entry: _Entry) -> None:
        entry.ticks += 1
        worker = entry.worker
        try:
            lost = await worker.renew_leases()
        except StoreError as exc:
            log.warning("heartbeat failed: %s", exc)
            return
        with contextlib.suppress(RuntimeError):  # the worker's loop is closed; remove() follows
            if lost:
                entry.loop.call_soon_threadsafe(worker.leases_lost, lost)
            # Every beat: a dead worker's runs (suspects now) should not wait long.
            entry.loop.call_soon_threadsafe(worker.housekeeping, entry.ticks)
