"""Order saga: reserve stock, charge the card, book a shipment; undo what was done on failure.

    spokehub run examples/order_saga.py:order_saga --input '{}'
    spokehub run examples/order_saga.py:order_saga --input '{"card": "flaky"}'     # retried
    spokehub run examples/order_saga.py:order_saga --input '{"card": "declined"}'  # release
    spokehub run examples/order_saga.py:order_saga --input '{"carrier": "down"}'   # refund+release

The inventory, payment and shipping services are simulated by ``FakeService``: every call is a
JSON file under ``.spokehub/example-effects/`` (or ``$SPOKEHUB_EXAMPLE_EFFECTS``) named by the
step's idempotency key, so a retried call returns the first answer instead of acting twice.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from spokehub import RetryPolicy, step, step_context, workflow

Card = Literal["ok", "flaky", "declined"]
Carrier = Literal["ok", "down"]


class LineItem(BaseModel):
    sku: str
    quantity: int = Field(gt=0)
    unit_cents: int = Field(ge=0)


class Order(BaseModel):
    order_id: str
    items: list[LineItem]
    card: Card
    carrier: Carrier

    @property
    def total_cents(self) -> int:
        return sum(item.quantity * item.unit_cents for item in self.items)


class Receipt(BaseModel):
    order_id: str
    reservation_id: str
    charge_id: str
    tracking_number: str
    total_cents: int


class TransientError(Exception):
    """The remote service hiccuped (timeout, 503); trying again is safe."""


class CardDeclined(Exception):
    """The bank said no; retrying cannot change that."""


class FakeService:
    """A remote API stand-in: one JSON file per call, keyed by the caller's idempotency key."""

    def __init__(self, name: str) -> None:
        self.name = name

    def call(self, action: str, key: str, request: dict[str, Any]) -> str:
        folder = Path(os.environ.get("SPOKEHUB_EXAMPLE_EFFECTS", ".spokehub/example-effects"))
        path = folder / self.name / f"{action}-{key.replace(':', '_')}.json"
        if path.exists():  # the same key again: answer as the first time, act no more
            return str(json.loads(path.read_text())["id"])
        ident = f"{action}_{hashlib.sha256(key.encode()).hexdigest()[:10]}"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(
            json.dumps({"action": action, "id": ident, "key": key, "request": request}, indent=2)
        )
        return ident


inventory = FakeService("inventory")
payments = FakeService("payments")
shipping = FakeService("shipping")
TRANSIENT = RetryPolicy(max_attempts=4, initial_delay=0.1, non_retryable=(CardDeclined,))


async def release(reservation_id: str, order: Order) -> None:
    inventory.call("release", step_context().idempotency_key, {"reservation": reservation_id})


async def refund(charge_id: str, order: Order) -> None:
    payments.call("refund", step_context().idempotency_key, {"charge": charge_id})


async def cancel_shipment(tracking_number: str, order: Order) -> None:
    shipping.call("cancel", step_context().idempotency_key, {"tracking": tracking_number})


@step(retry=TRANSIENT, compensate=release)
async def reserve_stock(order: Order) -> str:
    skus = {item.sku: item.quantity for item in order.items}
    return inventory.call("reserve", step_context().idempotency_key, skus)


@step(retry=TRANSIENT, compensate=refund)
async def charge_card(order: Order) -> str:
    ctx = step_context()
    if order.card == "declined":
        raise CardDeclined(f"card for order {order.order_id} was declined")
    charge_id = payments.call("charge", ctx.idempotency_key, {"cents": order.total_cents})
    if order.card == "flaky" and ctx.attempt == 1:
        # The classic: the bank charged, but the answer got lost. The retry sends the same
        # idempotency key, so the customer is charged once.
        raise TransientError("payment gateway timed out after charging")
    return charge_id


@step(retry=TRANSIENT, compensate=cancel_shipment)
async def book_shipment(order: Order) -> str:
    if order.carrier == "down":
        raise TransientError("carrier API returned 503")
    return shipping.call("book", step_context().idempotency_key, {"order": order.order_id})


DEFAULT_ITEMS = [LineItem(sku="mug-blue", quantity=2, unit_cents=1250)]


@workflow
async def order_saga(
    order_id: str = "A-1001",
    items: list[LineItem] | None = None,
    card: Card = "ok",
    carrier: Carrier = "ok",
) -> Receipt:
    """Take an order through stock, payment and shipping; a failure undoes the earlier steps."""
    order = Order(order_id=order_id, items=items or DEFAULT_ITEMS, card=card, carrier=carrier)
    reservation_id = await reserve_stock(order)
    charge_id = await charge_card(order)
    tracking_number = await book_shipment(order)
    return Receipt(
        order_id=order.order_id,
        reservation_id=reservation_id,
        charge_id=charge_id,
        tracking_number=tracking_number,
        total_cents=order.total_cents,
    )
