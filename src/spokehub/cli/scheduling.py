"""The scheduler that ``spokehub worker`` runs beside its worker (when the extra is installed)."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator

from spokehub.runtime.client import Client


@contextlib.asynccontextmanager
async def scheduling(client: Client, *, until_idle: bool) -> AsyncIterator[None]:
    """Check schedules while the body runs (a burst worker checks once, before it works).

    ``SPOKEHUB_SCHEDULER=0`` turns it off; without the ``integrations`` extra it is off.
    """
    try:
        from spokehub.integrations.scheduler import Scheduler
    except ImportError:
        yield
        return
    if os.environ.get("SPOKEHUB_SCHEDULER", "1") == "0":
        yield
        return
    interval = float(os.environ.get("SPOKEHUB_SCHEDULER_INTERVAL", "1.0"))
    scheduler = Scheduler(client, interval=interval)
    if until_idle:
        await scheduler.sync_declared()
        await scheduler.tick()
        yield
        return
    stop = asyncio.Event()
    task = asyncio.create_task(scheduler.run(stop))
    try:
        yield
    finally:
        stop.set()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, timeout=5)
