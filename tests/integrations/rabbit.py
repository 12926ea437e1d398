"""The local RabbitMQ for the event bus tests: skipped without it, failed under CI's switch.

``SPOKEHUB_TEST_RABBITMQ_URL`` names the broker (default: guest on 127.0.0.1:5672). With
``SPOKEHUB_REQUIRE_RABBITMQ=1`` (CI) a missing broker fails the tests instead of skipping them.
Every test uses exchange and queue names of its own and deletes them afterwards.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit

import pytest

URL = os.environ.get("SPOKEHUB_TEST_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/")


def require_rabbitmq() -> None:
    parts = urlsplit(URL)
    try:
        socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 5672), 3).close()
    except OSError as exc:
        reason = f"no RabbitMQ at {parts.hostname}:{parts.port}: {exc}"
        if os.environ.get("SPOKEHUB_REQUIRE_RABBITMQ") == "1":
            pytest.fail(f"SPOKEHUB_REQUIRE_RABBITMQ=1 but {reason}")
        pytest.skip(reason)


def unique(prefix: str) -> str:
    return f"test.{prefix}.{secrets.token_hex(4)}"


@asynccontextmanager
async def broker(exchanges: list[str], queues: list[str]) -> AsyncIterator[Any]:
    """A channel; the named exchanges and queues are deleted on the way out."""
    import aio_pika

    connection = await aio_pika.connect_robust(URL)
    channel = await connection.channel()
    try:
        yield channel
    finally:
        for name in queues:
            await channel.queue_delete(name)
        for name in exchanges:
            await channel.exchange_delete(name)
        await connection.close()


async def collect(queue: Any, count: int, timeout: float = 10.0) -> list[Any]:
    """Read messages from ``queue`` until ``count`` arrived or ``timeout`` passed."""
    got: list[Any] = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while len(got) < count and loop.time() < deadline:
        message = await queue.get(fail=False)
        if message is None:
            await asyncio.sleep(0.05)
            continue
        await message.ack()
        got.append(message)
    return got
