"""The event bus: a small protocol, and its RabbitMQ implementation (``rabbitmq`` extra).

``EventBus`` is what the outbox publisher needs: publish a batch of messages, each with its
stable id, routed by its name. RabbitMQ is the first implementation (a topic exchange,
persistent messages, publisher confirms); NATS or Kafka can follow behind the same protocol.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any, Protocol

from spokehub.errors import ConfigurationError
from spokehub.integrations.outbox import OutboxMessage

DEFAULT_URL = "amqp://guest:guest@127.0.0.1:5672/"
DEFAULT_EXCHANGE = "spokehub.events"


class EventBus(Protocol):
    """Where domain events go."""

    async def publish(self, messages: Sequence[OutboxMessage]) -> None:
        """Publish every message (confirmed by the broker) or raise."""
        ...

    async def close(self) -> None: ...


def _aio_pika() -> Any:
    try:
        import aio_pika
    except ImportError:
        raise ConfigurationError(
            "the RabbitMQ event bus needs aio-pika: pip install 'spokehub[rabbitmq]'"
        ) from None
    return aio_pika


class RabbitMQBus:
    """Publishes to a durable topic exchange; the routing key is the event name.

    Args:
        url: the broker (``amqp://user:password@host:5672/vhost``).
        exchange: the topic exchange (declared durable if missing).
    """

    def __init__(self, url: str = DEFAULT_URL, exchange: str = DEFAULT_EXCHANGE) -> None:
        self.url = url
        self.exchange_name = exchange
        self._connection: Any = None
        self._exchange: Any = None

    async def _ready(self) -> Any:
        if self._exchange is None:
            aio_pika = _aio_pika()
            self._connection = await aio_pika.connect_robust(self.url)
            channel = await self._connection.channel(publisher_confirms=True)
            self._exchange = await channel.declare_exchange(
                self.exchange_name, aio_pika.ExchangeType.TOPIC, durable=True
            )
        return self._exchange

    async def publish(self, messages: Sequence[OutboxMessage]) -> None:
        aio_pika = _aio_pika()
        exchange = await self._ready()
        # Confirms are awaited together: one round trip per batch, not per message.
        await asyncio.gather(
            *(
                exchange.publish(
                    aio_pika.Message(
                        body=m.body,
                        message_id=m.id,
                        type=m.name,
                        content_type="application/json",
                        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                    ),
                    routing_key=m.name,
                )
                for m in messages
            )
        )

    async def close(self) -> None:
        if self._connection is not None:
            await self._connection.close()
        self._connection = self._exchange = None
