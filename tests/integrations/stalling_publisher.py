"""A publisher process that dies between publishing and marking: the test SIGKILLs it there.

python stalling_publisher.py DB_URL AMQP_URL EXCHANGE
"""

from __future__ import annotations

import asyncio
import sys

from spokehub import Client
from spokehub.integrations.bus import RabbitMQBus
from spokehub.integrations.outbox import OutboxMessage
from spokehub.integrations.publisher import OutboxPublisher


class Stalling(OutboxPublisher):
    async def mark(self, messages: list[OutboxMessage]) -> None:
        print(f"published {len(messages)}", flush=True)
        await asyncio.sleep(600)  # the test kills the process here


async def main(db_url: str, amqp: str, exchange: str) -> None:
    client = Client(db_url)
    bus = RabbitMQBus(amqp, exchange)
    await Stalling(client, bus, lease=1.0).publish_once()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
