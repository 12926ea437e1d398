"""The scheduler: each worker checks the schedules and starts the runs of due ticks.

Every worker may run one; they need no leader. A due tick's run id is derived from the
schedule and the tick (``run_id_for``), so when several workers see the same tick, the
second start returns the run the first created. The schedule then moves to its next tick
with a compare-and-set, so it is moved once. A worker that crashes between the start and
the move leaves the tick due, and the next check starts the same run id again: nothing is
lost and nothing is doubled.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING

from spokehub.integrations import schedule_store, starts
from spokehub.integrations.schedule_store import ScheduleRow
from spokehub.integrations.schedules import Schedule, run_id_for
from spokehub.runtime.definitions import REGISTRY, Registry

if TYPE_CHECKING:
    from spokehub.runtime.client import Client

log = logging.getLogger("spokehub.integrations.scheduler")


def declared(registry: Registry = REGISTRY) -> list[Schedule]:
    """The schedules declared with ``@workflow(schedule=...)`` (named after the workflow)."""
    out = []
    for wf in registry.workflows.values():
        spec = wf.schedule
        if spec is not None:
            out.append(
                Schedule(
                    name=wf.name,
                    workflow=wf.name,
                    cron=spec.cron,
                    timezone=spec.timezone,
                    catchup=spec.catchup,  # type: ignore[arg-type]
                )
            )
    return out


class Scheduler:
    """Starts the runs of due schedule ticks for the workflows this process knows.

    Args:
        client: where runs start; its clock says what time it is.
        interval: seconds between two checks (at most; a nearer tick shortens the wait).
    """

    def __init__(
        self, client: Client, *, interval: float = 1.0, registry: Registry = REGISTRY
    ) -> None:
        self.client = client
        self.interval = interval
        self.registry = registry

    async def sync_declared(self) -> None:
        """Store the schedules declared in code (their pause state is kept)."""
        await self.client.ensure_schema()
        now = self.client.clock.now()
        for schedule in declared(self.registry):
            await schedule_store.save(self.client.store, schedule, now, "code")

    async def tick(self) -> list[str]:
        """Start every due tick once; returns the ids of the runs this call created."""
        await self.client.ensure_schema()
        now = self.client.clock.now()
        created: list[str] = []
        for row in await schedule_store.list_all(self.client.store):
            if row.paused or row.next_fire_at is None or row.next_fire_at > now:
                continue
            try:
                created += await self._fire(row, now)
            except Exception:  # one broken schedule must not stop the others
                log.exception("schedule %r could not start its run", row.schedule.name)
        # Debounced bursts that are over are due work of the same kind.
        created += await starts.fire_due(self.client, self.registry)
        return created

    async def _fire(self, row: ScheduleRow, now: float) -> list[str]:
        schedule = row.schedule
        wf = self.registry.workflows.get(schedule.workflow)
        if wf is None or row.next_fire_at is None:
            return []  # a worker that imports the workflow will start it
        ticks = schedule.due(row.next_fire_at, now)
        created = []
        for tick in ticks:
            handle = await self.client.start_input_async(
                wf, dict(schedule.input), run_id=run_id_for(schedule.name, tick)
            )
            if handle.created:
                created.append(handle.id)
        following = schedule.next_after(now)
        await schedule_store.advance(
            self.client.store,
            schedule.name,
            row.next_fire_at,
            following,
            ticks[-1] if ticks else None,
        )
        return created

    async def next_due(self) -> float | None:
        rows = await schedule_store.list_all(self.client.store)
        times = [r.next_fire_at for r in rows if not r.paused and r.next_fire_at is not None]
        return min(times, default=None)

    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Check until ``stop`` is set (or the task is cancelled)."""
        stop = stop or asyncio.Event()
        await self.client.ensure_schema()
        await self.sync_declared()
        while not stop.is_set():
            try:
                await self.tick()
                nxt = await self.next_due()
            except Exception:  # the database may be briefly away: try again next round
                log.exception("schedule check failed")
                nxt = None
            wait = self.interval
            if nxt is not None:
                wait = max(0.0, min(wait, nxt - self.client.clock.now()))
            with contextlib.suppress(TimeoutError):  # the usual way out: time for a check
                await asyncio.wait_for(stop.wait(), timeout=wait or 0.01)
