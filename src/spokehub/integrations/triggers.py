"""Event triggers: a queue bound to a routing key starts one run per message.

The run id is derived from the message id (``event:<queue>:<message id>``; the SHA-256 of the
body when the message has none), so a redelivered message finds its run instead of starting
another. The message is acknowledged only after the run is durably started. A message that
is not a JSON object, or does not fit the workflow's input, goes to the dead-letter queue
(``<queue>.dead``) with the reason in the ``x-spokehub-reason`` header; the consumer goes on.
A database that is briefly away makes the message go back to the queue (requeued).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from spokehub.errors import RunIdConflict, SerializationError, SpokehubError, StoreError
from spokehub.integrations.bus import DEFAULT_EXCHANGE, DEFAULT_URL, _aio_pika
from spokehub.runtime.definitions import Workflow

if TYPE_CHECKING:
    from spokehub.runtime.client import Client

log = logging.getLogger("spokehub.integrations.triggers")


@dataclass(frozen=True)
class EventTrigger:
    """Start ``workflow`` with each message routed to ``queue`` by ``routing_key``.

    The message body is the run's input: a JSON object of the workflow's arguments.
    """

    queue: str
    routing_key: str
    workflow: Workflow[..., Any]
    exchange: str = DEFAULT_EXCHANGE

    @property
    def dead_letter_queue(self) -> str:
        return f"{self.queue}.dead"


class Malformed(Exception):
    """A message that can never start a run (it is dead-lettered with this reason)."""


def message_run_id(queue: str, message_id: str | None, body: bytes) -> str:
    key = message_id or "sha256-" + hashlib.sha256(body).hexdigest()
    return f"event:{queue}:{key}"


def parse_input(trigger: EventTrigger, body: bytes) -> dict[str, Any]:
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, ValueError) as exc:
        raise Malformed(f"the body is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise Malformed(f"the body is a JSON {type(data).__name__}, not an object of arguments")
    try:
        return dict(trigger.workflow.codec.validate_input(data))
    except (SerializationError, TypeError, ValueError) as exc:
        raise Malformed(f"the input does not fit {trigger.workflow.name}: {exc}") from None


class TriggerConsumer:
    """Consumes the triggers' queues and starts runs.

    Args:
        client: where runs start.
        triggers: the bindings to consume.
        url: the RabbitMQ broker.
        prefetch: unacknowledged messages per channel.
    """

    def __init__(
        self,
        client: Client,
        triggers: Sequence[EventTrigger],
        *,
        url: str = DEFAULT_URL,
        prefetch: int = 32,
    ) -> None:
        self.client = client
        self.triggers = list(triggers)
        self.url = url
        self.prefetch = prefetch
        self.started: list[str] = []  # run ids this consumer created
        self.dead: list[tuple[str, str]] = []  # (queue, reason) of dead-lettered messages
        self._connection: Any = None

    async def start(self) -> None:
        """Declare the queues and bindings and begin consuming (returns at once)."""
        aio_pika = _aio_pika()
        await self.client.ensure_schema()
        self._connection = await aio_pika.connect_robust(self.url)
        channel = await self._connection.channel()
        await channel.set_qos(prefetch_count=self.prefetch)
        for trigger in self.triggers:
            exchange = await channel.declare_exchange(
                trigger.exchange, aio_pika.ExchangeType.TOPIC, durable=True
            )
            queue = await channel.declare_queue(trigger.queue, durable=True)
            await queue.bind(exchange, routing_key=trigger.routing_key)
            await channel.declare_queue(trigger.dead_letter_queue, durable=True)
            await queue.consume(self._handler(channel, trigger))

    def _handler(self, channel: Any, trigger: EventTrigger) -> Any:
        async def on_message(message: Any) -> None:
            await self.handle(channel, trigger, message)

        return on_message

    async def handle(self, channel: Any, trigger: EventTrigger, message: Any) -> None:
        """Start the message's run, then ack; dead-letter what can never start one."""
        try:
            data = parse_input(trigger, message.body)
            run_id = message_run_id(trigger.queue, message.message_id, message.body)
            handle = await self.client.start_input_async(trigger.workflow, data, run_id=run_id)
        except Malformed as exc:
            await self._dead_letter(channel, trigger, message, str(exc))
            return
        except RunIdConflict as exc:  # the same message id arrived with another body
            await self._dead_letter(channel, trigger, message, str(exc))
            return
        except (StoreError, OSError):  # not this message's fault: let it come back
            log.warning("could not start a run for a message on %s; requeued", trigger.queue)
            await message.nack(requeue=True)
            return
        except SpokehubError as exc:
            await self._dead_letter(channel, trigger, message, f"{type(exc).__name__}: {exc}")
            return
        if handle.created:
            self.started.append(handle.id)
        await message.ack()

    async def _dead_letter(
        self, channel: Any, trigger: EventTrigger, message: Any, reason: str
    ) -> None:
        aio_pika = _aio_pika()
        headers = dict(message.headers or {})
        headers["x-spokehub-reason"] = reason[:1000]
        headers["x-spokehub-queue"] = trigger.queue
        await channel.default_exchange.publish(
            aio_pika.Message(
                body=message.body,
                message_id=message.message_id,
                headers=headers,
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            ),
            routing_key=trigger.dead_letter_queue,
        )
        await message.ack()
        self.dead.append((trigger.queue, reason))
        log.warning("dead-lettered a message on %s: %s", trigger.queue, reason)

    async def close(self) -> None:
        if self._connection is not None:
            await self._connection.close()
            self._connection = None

    async def run(self, stop: asyncio.Event | None = None) -> None:
        await self.start()
        try:
            await (stop or asyncio.Event()).wait()
        finally:
            await self.close()


TRIGGERS: list[EventTrigger] = []
"""The triggers declared with ``on_event``; ``spokehub worker`` consumes them."""


def on_event(queue: str, routing_key: str, *, exchange: str = DEFAULT_EXCHANGE) -> Any:
    """Start the decorated workflow for each message routed to ``queue`` by ``routing_key``.

    Example:
        >>> @on_event("shipping", "order.paid")
        ... @workflow
        ... async def ship(order_id: str) -> None: ...
    """

    def register(wf: Workflow[..., Any]) -> Workflow[..., Any]:
        if not isinstance(wf, Workflow):
            raise TypeError("@on_event goes above @workflow: it registers a workflow")
        TRIGGERS.append(EventTrigger(queue, routing_key, wf, exchange))
        return wf

    return register
