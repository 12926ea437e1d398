"""What ``spokehub worker`` runs beside its worker when the integrations extra is installed.

* the scheduler (``SPOKEHUB_SCHEDULER=0`` turns it off; ``SPOKEHUB_SCHEDULER_INTERVAL``);
* the outbox (``SPOKEHUB_OUTBOX=1``, or implied by a bus URL);
* with ``SPOKEHUB_EVENT_BUS_URL=amqp://...``: the outbox publisher (to
  ``SPOKEHUB_EVENT_EXCHANGE``, default ``spokehub.events``) and the consumers of the
  triggers declared with ``@on_event``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Coroutine
from typing import Any

from spokehub.runtime.client import Client


@contextlib.asynccontextmanager
async def scheduling(client: Client, *, until_idle: bool) -> AsyncIterator[None]:
    """Run the integrations services while the body runs (a burst worker checks once)."""
    try:
        from spokehub.integrations.outbox import install_outbox, outbox_from_env
        from spokehub.integrations.scheduler import Scheduler
    except ImportError:
        yield
        return
    from spokehub.integrations import http, starts

    starts.enable(client)  # wf.options(debounce=..., throttle=...)
    http.use_database(client.settings.database_url)  # breakers shared on PostgreSQL
    if outbox_from_env():
        from spokehub.integrations.outbox import breaker_event_writer
        from spokehub.integrations.webhooks import WEBHOOKS

        install_outbox(client)
        WEBHOOKS.bind(client)
        http.on_transition(breaker_event_writer(client))
    scheduler = None
    if os.environ.get("SPOKEHUB_SCHEDULER", "1") != "0":
        interval = float(os.environ.get("SPOKEHUB_SCHEDULER_INTERVAL", "1.0"))
        scheduler = Scheduler(client, interval=interval)
    if until_idle:
        if scheduler is not None:
            await scheduler.sync_declared()
            await scheduler.tick()
        yield
        return
    stop = asyncio.Event()
    tasks = [asyncio.create_task(s) for s in _runners(client, scheduler, stop)]
    try:
        yield
    finally:
        stop.set()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(task, timeout=5)


def _runners(
    client: Client, scheduler: Any, stop: asyncio.Event
) -> list[Coroutine[Any, Any, None]]:
    runners: list[Coroutine[Any, Any, None]] = []
    if scheduler is not None:
        runners.append(scheduler.run(stop))
    from spokehub.integrations.outbox import outbox_from_env

    if outbox_from_env():
        from spokehub.integrations.dispatch import WebhookDispatcher

        runners.append(WebhookDispatcher(client).run(stop))
    url = os.environ.get("SPOKEHUB_EVENT_BUS_URL")
    if url:
        from spokehub.integrations.bus import DEFAULT_EXCHANGE, RabbitMQBus
        from spokehub.integrations.publisher import OutboxPublisher
        from spokehub.integrations.triggers import TRIGGERS, TriggerConsumer

        exchange = os.environ.get("SPOKEHUB_EVENT_EXCHANGE", DEFAULT_EXCHANGE)
        lease = float(os.environ.get("SPOKEHUB_OUTBOX_LEASE", "30"))
        bus = RabbitMQBus(url, exchange)
        runners.append(OutboxPublisher(client, bus, lease=lease).run(stop))
        if TRIGGERS:
            runners.append(TriggerConsumer(client, TRIGGERS, url=url).run(stop))
    return runners


def _register_deliveries() -> None:
    """With the outbox on, the webhook delivery workflow must be registered before the
    worker picks its queues; without it, no workflow is added to anyone's worker."""
    if os.environ.get("SPOKEHUB_OUTBOX") != "1" and not os.environ.get("SPOKEHUB_EVENT_BUS_URL"):
        return
    with contextlib.suppress(ImportError):
        import spokehub.integrations.webhooks  # noqa: F401 - registers the workflow


_register_deliveries()
