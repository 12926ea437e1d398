"""A worker app for the end-to-end bus test: a trigger, a workflow that emits an event."""

from __future__ import annotations

import os

from spokehub import workflow
from spokehub.integrations.emit import emit
from spokehub.integrations.triggers import on_event


@on_event(
    os.environ.get("ITEST_QUEUE", "itest.ship"),
    "order.paid",
    exchange=os.environ.get("SPOKEHUB_EVENT_EXCHANGE", "spokehub.events"),
)
@workflow(name="itest.bus.e2e")
async def ship_order(order_id: str) -> str:
    await emit("order.shipped", {"order_id": order_id})
    return order_id
