"""Workers claim runs from queues and drive them, holding a lease they renew by heartbeat.

A worker wakes for new work when the store notifies it (PostgreSQL LISTEN/NOTIFY, or the
Client in the same process) and otherwise polls every ``poll_interval``; the poll also sweeps
up runs whose owner died (their lease ran out), so a dead worker's runs resume elsewhere
within ``lease_seconds + poll_interval``. ``stop(drain=True)`` (SIGTERM) stops claiming, lets
steps in flight finish while still heartbeating, and gives every run back at its next step.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import socket
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

from spokehub.errors import StoreError
from spokehub.runtime.clock import DatabaseClock
from spokehub.runtime.definitions import DEFAULT_QUEUE, REGISTRY
from spokehub.runtime.driver import RunDriver
from spokehub.runtime.identity import dead_local_owners, owner_name
from spokehub.runtime.isolation import Isolator, spawnable
from spokehub.store.base import Claimed, QueueLimits, RunRecord, WorkerInfo

if TYPE_CHECKING:
    from spokehub.runtime.client import Client

log = logging.getLogger("spokehub.worker")


class Worker:
    """Executes runs of the workflows registered in this process.

    Args:
        client: where runs are stored.
        queues: queues to take runs from.
        concurrency: runs driven at the same time by this worker.
        name: a prefix for the lease owner name (default: the host name).
        root_id: only execute this run and its children (used by ``client.run``).
        inline_wait: override ``settings.inline_wait`` (0 unloads at every wait).
    """

    def __init__(
        self,
        client: Client,
        *,
        queues: Sequence[str] = (DEFAULT_QUEUE,),
        concurrency: int = 64,
        name: str | None = None,
        root_id: str | None = None,
        inline_wait: float | None = None,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        if not queues:
            raise ValueError("a worker needs at least one queue")
        self.client = client
        self.queues = tuple(queues)
        self.concurrency = concurrency
        self.root_id = root_id
        self.owner = owner_name(name)
        self.name = name or socket.gethostname()
        settings = client.settings
        self.max_recoveries = settings.max_recoveries
        self.drain_timeout = settings.drain_timeout
        self.draining = False
        self.started_at = 0.0
        self.lease_seconds = settings.lease_seconds
        self.beat_every = max(0.05, self.lease_seconds / 3)
        self.poll_interval = settings.poll_interval
        self.inline_wait = settings.inline_wait if inline_wait is None else inline_wait
        self.active: dict[str, tuple[RunDriver, asyncio.Task[None]]] = {}
        self._wake: asyncio.Event | None = None
        self._stopping = False
        self._dead_owners: list[str] = []
        self._chores: asyncio.Task[None] | None = None
        # Poison isolation (runtime/isolation.py): suspects run in supervised child processes,
        # up to isolation_slots at once, or alone in this process (_alone) when they cannot.
        self.isolation_slots = max(1, min(4, concurrency))
        self._isolator = Isolator(self)
        self.unspawnable: set[str] = set()  # workflows an isolation process cannot import
        self._isolated: dict[str, asyncio.Task[None]] = {}
        self._isolated_epochs: dict[str, int] = {}  # renewed here too, while a child starts
        self._alone: str | None = None
        self._next_suspect_claim = 0.0  # suspects are rare: look for them once per poll
        self.completed_activations = 0
        self._watch: str | None = None
        self._watched_done = False
        self.watched_final: RunRecord | None = None  # the watched run, as it finished here

    def finished(self, run: RunRecord) -> None:
        """A driver committed the end of ``run`` (kept only for the watched run)."""
        if run.id == self._watch:
            self.watched_final = run

    def notify(self) -> None:
        """Something changed (a run started, a signal arrived): look for work now."""
        if self._wake is not None:
            self._wake.set()

    def stop(self, *, drain: bool = False) -> None:
        """Stop claiming. With ``drain``, steps in flight finish (up to ``drain_timeout``)
        and their runs are given back at their next step; without it, they are cancelled at
        once and run again elsewhere (at-least-once)."""
        self._stopping = True
        self.draining = self.draining or drain
        self.notify()

    def adopt(self, claimed: Claimed) -> None:
        """Drive a run this worker's owner name has already claimed (e.g. at start)."""
        driver = RunDriver(self, claimed)
        task = asyncio.create_task(driver.execute(), name=f"run:{claimed.run.id}")
        self.active[claimed.run.id] = (driver, task)
        task.add_done_callback(functools.partial(self._done, claimed.run.id))

    async def run(
        self,
        *,
        until_idle: bool = False,
        until_async: Callable[[], Awaitable[bool]] | None = None,
        watch: str | None = None,
    ) -> None:
        """Claim and execute runs until ``stop()``, or until idle (burst mode).

        With ``until_async`` the worker stops once it returns True; it is asked at start, after
        each activation of run ``watch`` ends, and at every poll interval.
        """
        await self.client.ensure_schema()
        self._wake = asyncio.Event()
        # Look for suspects at once, unless this is an embedded run's worker that has its run
        # already: a short run then ends without that extra claim (one poll later at most).
        loop_now = asyncio.get_running_loop().time()
        self._next_suspect_claim = loop_now + self.poll_interval if self.active else 0.0
        self._watch = watch
        self.client._workers.add(self)
        unsubscribe = self._subscribe()
        self.started_at = self.client.clock.now()
        await self._report("running")
        self.client._heartbeats.add(self)
        try:
            if self.root_id is None or not self.active:  # a fresh embedded run has no dead owner
                await self._dead_owner_sweep()
            if until_async is not None and not self.active and await until_async():
                return
            await self._loop(until_idle, until_async)
        finally:
            unsubscribe()
            try:
                if self.draining and self.active:
                    await self._drain()
            finally:
                self.client._heartbeats.remove(self)
                if self._chores is not None:
                    self._chores.cancel()
                self.client._workers.discard(self)
                await self._shutdown()

    def _subscribe(self) -> Callable[[], None]:
        """Wake up when the store says one of our queues has work (another process's)."""
        loop = asyncio.get_running_loop()
        wanted = set(self.queues)

        def on_work(queue: str) -> None:  # on the store's listener thread
            if queue == "*" or queue in wanted:
                with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                    loop.call_soon_threadsafe(self.notify)

        return self.client.store.subscribe(on_work)

    async def _loop(
        self, until_idle: bool, until_async: Callable[[], Awaitable[bool]] | None
    ) -> None:
        assert self._wake is not None
        # An embedded run's own worker has adopted it already: nothing else of its tree
        # is ready before the run commits children (which wakes this loop).
        adopted = self.root_id is not None and bool(self.active)
        while not self._stopping:
            self._wake.clear()
            try:
                if adopted:
                    adopted = False
                elif await self._claim():
                    continue
            except StoreError as exc:  # e.g. the database restarts: keep trying
                log.warning("claim failed: %s", exc)
            if until_idle and not self.active and not self._isolated:
                return
            wake = asyncio.ensure_future(self._wake.wait())
            waits: set[asyncio.Future[Any]] = {wake, *(t for _, t in self.active.values())}
            waits.update(self._isolated.values())
            _, pending = await asyncio.wait(
                waits, timeout=self.poll_interval, return_when=asyncio.FIRST_COMPLETED
            )
            wake.cancel()
            polled = wake in pending and len(pending) == len(waits)
            if until_async is not None and (self._watched_done or polled):
                self._watched_done = False
                if await until_async():
                    return

    async def _drain(self) -> None:
        """Let activations reach their next step and give their runs back (heartbeat on)."""
        with contextlib.suppress(StoreError):
            await self._report("draining")
        tasks = [t for _, t in self.active.values()] + list(self._isolated.values())
        log.info("draining %d run(s) for up to %.0fs", len(tasks), self.drain_timeout)
        _, pending = await asyncio.wait(tasks, timeout=self.drain_timeout)
        if pending:
            log.warning("drain timed out; %d run(s) are cancelled and given back", len(pending))

    async def _shutdown(self) -> None:
        leases = {run_id: d.epoch for run_id, (d, _) in self.active.items()}
        for _, task in self.active.values():
            task.cancel()
        for task in self._isolated.values():  # kills the child, gives the suspect back
            task.cancel()
        await asyncio.gather(*(t for _, t in self.active.values()), return_exceptions=True)
        await asyncio.gather(*self._isolated.values(), return_exceptions=True)
        await self._isolator.close()
        self.active.clear()
        with contextlib.suppress(StoreError):  # others may take these runs now, not after the lease
            await self.client.store.release(self.owner, leases, self.client.clock.now())
            await self._report("stopped")

    async def _report(self, state: str) -> None:
        if self.root_id is not None:
            return  # an embedded run's private worker is not a fleet member
        await self.client.store.report_worker(
            WorkerInfo(
                owner=self.owner,
                name=self.name,
                host=socket.gethostname(),
                pid=os.getpid(),
                queues=self.queues,
                concurrency=self.concurrency,
                active=len(self.active),
                state=state,
                started_at=self.started_at,
                heartbeat_at=self.client.clock.now(),
            )
        )

    async def _claim(self) -> bool:
        if self._alone is not None:  # a suspect runs alone here: take nothing beside it
            return False
        if not REGISTRY.workflows:
            return False
        if await self._claim_suspects():
            return True
        slots = self.concurrency - len(self.active)
        if slots <= 0:
            return False
        workflows = list(REGISTRY.workflows)
        limits: dict[str, QueueLimits] = {}
        per_queue: dict[str, int] = {}
        for name in self.queues:
            queue = REGISTRY.queues.get(name)
            if queue is None:
                continue
            limits[name] = queue.limits
            if queue.worker_concurrency is not None:
                busy = sum(1 for d, _ in self.active.values() if d.run.queue == name)
                per_queue[name] = max(0, queue.worker_concurrency - busy)
        claimed = await self.client.store.claim(
            owner=self.owner,
            queues=self.queues,
            workflows=workflows,
            limit=slots,
            now=self.client.clock.now(),
            lease_seconds=self.lease_seconds,
            root_id=self.root_id,
            dead_owners=self._dead_owners,
            limits=limits,
            slots=per_queue,
            max_recoveries=self.max_recoveries,
        )
        for c in claimed:
            self.adopt(c)
        return bool(claimed)

    async def _claim_suspects(self) -> bool:
        """Take suspects to run alone: in child processes, or alone here when they cannot
        (embedded workers, workflows defined in ``__main__``, no Linux). True when this
        worker now runs a suspect alone in its own process."""
        now = asyncio.get_running_loop().time()
        if self.draining or now < self._next_suspect_claim:
            return False
        self._next_suspect_claim = now + self.poll_interval
        spawn = [
            n for n, wf in REGISTRY.workflows.items() if spawnable(wf) and n not in self.unspawnable
        ]
        free = self.isolation_slots - len(self._isolated)
        if self.root_id is None and spawn and free > 0:
            for c in await self._claim_as(2, spawn, free):
                task = asyncio.create_task(self._isolator.supervise(c), name=f"isolate:{c.run.id}")
                self._isolated[c.run.id] = task
                self._isolated_epochs[c.run.id] = c.epoch
                task.add_done_callback(functools.partial(self._isolation_done, c.run.id))
        here = list(REGISTRY.workflows) if self.root_id is not None else None
        if here is None:
            here = [n for n in REGISTRY.workflows if n not in spawn]
        if self.active or not here:
            return False
        for c in await self._claim_as(3, here, 1):
            self._alone = c.run.id
            log.warning("run %s is a suspect; running it alone in this worker", c.run.id)
            self.adopt(c)
            return True
        return False

    async def _claim_as(self, isolation: int, workflows: list[str], limit: int) -> list[Claimed]:
        return await self.client.store.claim(
            owner=self.owner,
            queues=self.queues,
            workflows=workflows,
            limit=limit,
            now=self.client.clock.now(),
            lease_seconds=self.lease_seconds,
            root_id=self.root_id,
            dead_owners=self._dead_owners,
            max_recoveries=self.max_recoveries,
            isolation=isolation,
        )

    def _isolation_done(self, run_id: str, task: asyncio.Task[None]) -> None:
        self._isolated.pop(run_id, None)
        self._isolated_epochs.pop(run_id, None)
        if not task.cancelled() and task.exception() is not None:
            log.error("run %s: isolation failed", run_id, exc_info=task.exception())
        self.notify()

    def _done(self, run_id: str, task: asyncio.Task[None]) -> None:
        if run_id == self._alone:
            self._alone = None
        entry = self.active.get(run_id)
        if entry is not None and entry[1] is task:
            del self.active[run_id]
        self.completed_activations += 1
        if self._watch is None or run_id == self._watch:
            self._watched_done = True
        if not task.cancelled() and task.exception() is not None:
            log.error("run %s: driver crashed", run_id, exc_info=task.exception())
        self.notify()

    # -- called by the client's heartbeat thread (runtime/heartbeat.py) ----------------------
    async def renew_leases(self) -> set[str]:
        """Extend the leases of the runs in flight; returns the runs whose lease was lost.

        Runs on the heartbeat thread's loop, so it reads ``active`` as one snapshot.
        """
        leases = {run_id: d.epoch for run_id, (d, _) in list(self.active.items())}
        # The child renews its run too, but it needs a moment to start: a lease shorter
        # than that would run out under it, and its death would go uncharged.
        leases.update(dict(self._isolated_epochs))
        lost = await self.client.store.renew(
            self.owner, leases, self.client.clock.now() + self.lease_seconds
        )
        await self._report("draining" if self.draining else "running")
        return lost

    def leases_lost(self, lost: set[str]) -> None:
        """On the worker's loop: stop the activations whose lease another worker took."""
        for run_id in lost:
            isolated = self._isolated.get(run_id)
            if isolated is not None:  # kill the child: the run is someone else's now
                isolated.cancel()
            entry = self.active.get(run_id)
            if entry is not None:
                log.warning("run %s: lease lost; stopping its activation here", run_id)
                entry[1].cancel()

    def housekeeping(self, ticks: int) -> None:
        """On the worker's loop, at every heartbeat: look for dead owners; resync time."""
        if self._chores is None or self._chores.done():
            self._chores = asyncio.create_task(self._housekeep(ticks), name="worker chores")

    async def _housekeep(self, ticks: int) -> None:
        try:
            await self._dead_owner_sweep()
            clock = self.client.clock
            if ticks % 9 == 0 and isinstance(clock, DatabaseClock):
                await clock.sync(self.client.store.db_time)
        except StoreError as exc:
            log.warning("dead-owner sweep failed: %s", exc)

    async def _dead_owner_sweep(self) -> None:
        owners = await self.client.store.running_owners()
        self._dead_owners = dead_local_owners(owners, self.owner)
        if self._dead_owners:
            self.notify()
