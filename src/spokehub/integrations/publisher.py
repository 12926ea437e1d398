"""Publishing the outbox: claim a batch, publish it, mark it published.

At least once: a publisher that dies after publishing and before marking leaves its batch
claimed until its lease ends; the next publisher publishes the same messages again, with the
same ids. Several publishers share the work (claims skip each other's rows on PostgreSQL).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from typing import TYPE_CHECKING

from spokehub.integrations import outbox
from spokehub.integrations.bus import EventBus
from spokehub.integrations.outbox import OutboxMessage

if TYPE_CHECKING:
    from spokehub.runtime.client import Client

log = logging.getLogger("spokehub.integrations.publisher")


class OutboxPublisher:
    """Moves outbox messages to an ``EventBus``.

    Args:
        client: whose database holds the outbox.
        bus: where messages go.
        batch: messages per claim.
        lease: seconds a claimed batch is reserved to this publisher.
        interval: seconds between polls when the outbox is empty.
    """

    def __init__(
        self,
        client: Client,
        bus: EventBus,
        *,
        batch: int = 500,
        lease: float = 30.0,
        interval: float = 0.5,
    ) -> None:
        self.client = client
        self.bus = bus
        self.batch = batch
        self.lease = lease
        self.interval = interval
        self.owner = f"publisher-{secrets.token_hex(4)}"

    async def publish_once(self) -> int:
        """Publish one batch; returns how many messages it held."""
        await self.client.ensure_schema()
        messages = await outbox.claim(
            self.client.store,
            owner=self.owner,
            now=self.client.clock.now(),
            lease=self.lease,
            limit=self.batch,
        )
        if not messages:
            return 0
        try:
            await self.bus.publish(messages)
        except BaseException:
            # Some may have gone out: they go again, with the same ids (at least once).
            with contextlib.suppress(Exception):
                await outbox.release(self.client.store, [m.seq for m in messages], self.owner)
            raise
        await self.mark(messages)
        return len(messages)

    async def mark(self, messages: list[OutboxMessage]) -> None:
        await outbox.mark_published(
            self.client.store, [m.seq for m in messages], self.client.clock.now()
        )

    async def drain(self) -> int:
        """Publish until the outbox has nothing claimable."""
        total = 0
        while n := await self.publish_once():
            total += n
        return total

    async def run(self, stop: asyncio.Event | None = None) -> None:
        stop = stop or asyncio.Event()
        while not stop.is_set():
            try:
                sent = await self.publish_once()
            except Exception:  # the broker or database may be away: retry next round
                log.exception("outbox publishing failed; retrying")
                sent = 0
            if sent:
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self.interval)
