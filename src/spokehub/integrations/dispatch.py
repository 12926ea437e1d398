"""The webhook dispatcher: from the outbox, one delivery run per matching subscription.

Every outbox message is looked at once (``dispatched_at``). Messages written before a
subscription existed are not sent to it, nor are the events of the delivery runs themselves.
A dispatcher that crashes before marking looks at the same messages again, and the delivery
run ids make that harmless.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import TYPE_CHECKING, Any

from spokehub.integrations.webhooks import (
    DELIVERY_WORKFLOW,
    deliver_webhook,
    delivery_run_id,
    subscriptions,
)
from spokehub.store.base import Tx

if TYPE_CHECKING:
    from spokehub.runtime.client import Client

log = logging.getLogger("spokehub.integrations.webhooks")


class WebhookDispatcher:
    def __init__(self, client: Client, *, batch: int = 200, interval: float = 0.5) -> None:
        self.client = client
        self.batch = batch
        self.interval = interval
        self.started = 0

    async def dispatch_once(self) -> int:
        """Start the deliveries of one batch of messages; returns how many messages it read
        (``started`` counts the delivery runs created)."""
        await self.client.ensure_schema()
        store = self.client.store
        limit = self.batch

        def pending(tx: Tx) -> list[Any]:
            return tx.execute(
                "SELECT seq, id, name, payload FROM outbox WHERE dispatched_at IS NULL "
                "ORDER BY seq LIMIT ?",
                (limit,),
            ).fetchall()

        rows = await store.transact(pending, write=False)
        if not rows:
            return 0
        subs = await subscriptions(store)
        for _seq, msg_id, name, payload in rows:
            message = json.loads(payload)
            if message.get("workflow") == DELIVERY_WORKFLOW:
                continue  # a delivery's own events would feed back into deliveries forever
            for sub in subs:
                if sub.matches(name):
                    wf = deliver_webhook.options(run_id=delivery_run_id(sub.id, msg_id))
                    handle = await self.client.start_async(wf, sub.id, message)
                    self.started += 1 if handle.created else 0
        seqs = [int(r[0]) for r in rows]
        now = self.client.clock.now()

        def mark(tx: Tx) -> None:
            marks = ", ".join("?" for _ in seqs)
            tx.execute(f"UPDATE outbox SET dispatched_at = ? WHERE seq IN ({marks})", (now, *seqs))

        await store.transact(mark)
        return len(rows)

    async def run(self, stop: asyncio.Event | None = None) -> None:
        stop = stop or asyncio.Event()
        while not stop.is_set():
            try:
                busy = await self.dispatch_once()
            except Exception:  # keep going: the database may be briefly away
                log.exception("webhook dispatch failed; retrying")
                busy = 0
            if busy:
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self.interval)
