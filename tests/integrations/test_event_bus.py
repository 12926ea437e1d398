"""The event bus with the real RabbitMQ: publishing once per id across a SIGKILL, triggers."""

from __future__ import annotations

import asyncio
import json
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from spokehub import Client, Settings, workflow
from spokehub.integrations.bus import RabbitMQBus
from spokehub.integrations.outbox import install_outbox, read
from spokehub.integrations.publisher import OutboxPublisher
from spokehub.integrations.triggers import EventTrigger, TriggerConsumer, message_run_id
from spokehub.runtime.client import _sync
from tests.integrations.conftest import aio
from tests.integrations.rabbit import URL, broker, collect, require_rabbitmq, unique

ROOT = Path(__file__).resolve().parents[2]


@workflow(name="itest.bus.hello")
async def hello(name: str) -> str:
    return f"hello {name}"


@workflow(name="itest.bus.ship")
async def ship(order_id: str, quantity: int = 1) -> str:
    return f"{order_id} x{quantity}"


@pytest.fixture(autouse=True)
def rabbitmq() -> None:
    require_rabbitmq()


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Client]:
    c = Client(settings=Settings(database_url=f"sqlite:///{tmp_path}/bus.db", poll_interval=0.05))
    install_outbox(c)
    yield c
    c.close()


def test_published_once_per_id_across_a_publisher_killed_before_marking(
    db: Client, tmp_path: Path
) -> None:
    for i in range(5):
        db.run(hello.options(run_id=f"hello-{i}"), f"n{i}")
    expected = {m.id for m in _sync(read(db.store, limit=1000))}
    assert len(expected) == 10  # started and completed, for 5 runs
    exchange, queue = unique("events"), unique("all")

    async def scenario() -> list[object]:
        async with broker([exchange], [queue]) as channel:
            import aio_pika

            ex = await channel.declare_exchange(exchange, aio_pika.ExchangeType.TOPIC, durable=True)
            q = await channel.declare_queue(queue, durable=True)
            await q.bind(ex, routing_key="#")
            db_url = db.settings.database_url
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                str(Path(__file__).parent / "stalling_publisher.py"),
                db_url,
                URL,
                exchange,
                stdout=asyncio.subprocess.PIPE,
                env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
            )
            assert proc.stdout is not None
            line = (await asyncio.wait_for(proc.stdout.readline(), 60)).decode()
            assert line.startswith("published 10"), line
            proc.kill()  # SIGKILL: published, never marked
            await proc.wait()
            await asyncio.sleep(1.1)  # its claim's lease runs out
            bus = RabbitMQBus(URL, exchange)
            assert await OutboxPublisher(db, bus).drain() == 10
            await bus.close()
            return await collect(q, 20)

    got = _sync(scenario())
    ids = Counter(m.message_id for m in got)  # type: ignore[attr-defined]
    assert set(ids) == expected
    assert set(ids.values()) == {2}  # each one republished with the same id, never a new one
    bodies: dict[str, set[bytes]] = {}
    for m in got:
        bodies.setdefault(m.message_id, set()).add(m.body)  # type: ignore[attr-defined]
    assert all(len(b) == 1 for b in bodies.values())
    assert {m.routing_key for m in got} == {"run.started", "run.completed"}  # type: ignore[attr-defined]
    assert _sync(OutboxPublisher(db, RabbitMQBus(URL, exchange)).publish_once()) == 0


@aio
async def test_a_message_redelivered_five_times_starts_one_run(tmp_path: Path) -> None:
    client = Client(f"sqlite:///{tmp_path}/t.db")
    exchange, queue = unique("orders"), unique("ship")
    trigger = EventTrigger(queue=queue, routing_key="order.paid", workflow=ship, exchange=exchange)
    consumer = TriggerConsumer(client, [trigger], url=URL)
    async with broker([exchange], [queue, trigger.dead_letter_queue]) as channel:
        import aio_pika

        await consumer.start()
        ex = await channel.get_exchange(exchange)
        body = json.dumps({"order_id": "o-9", "quantity": 3}).encode()
        for _ in range(5):
            await ex.publish(
                aio_pika.Message(body=body, message_id="msg-1"), routing_key="order.paid"
            )
        # And three malformed ones: not JSON, not an object, not the workflow's input.
        for bad in (b"{oops", b"[1, 2]", b'{"order_id": 5, "colour": "red"}'):
            await ex.publish(aio_pika.Message(body=bad, message_id="bad"), routing_key="order.paid")
        await ex.publish(
            aio_pika.Message(body=json.dumps({"order_id": "o-10"}).encode(), message_id="msg-2"),
            routing_key="order.paid",
        )
        dlq = await channel.declare_queue(trigger.dead_letter_queue, durable=True)
        dead = await collect(dlq, 3)
        for _ in range(100):
            if len(consumer.started) >= 2:
                break
            await asyncio.sleep(0.05)
        main = await channel.declare_queue(queue, durable=True)
        assert main.declaration_result.message_count == 0  # everything was acked
        await consumer.close()
    assert sorted(consumer.started) == [
        message_run_id(queue, "msg-1", b""),
        message_run_id(queue, "msg-2", b""),
    ]
    runs = [r for r in await client.list_runs_async(limit=100) if r.id.startswith("event:")]
    assert len(runs) == 2
    assert (await client.get_run_async(message_run_id(queue, "msg-1", b""))).input == {
        "order_id": "o-9",
        "quantity": 3,
    }
    reasons = [m.headers["x-spokehub-reason"] for m in dead]
    assert "not JSON" in reasons[0]
    assert "not an object" in reasons[1]
    assert "does not fit itest.bus.ship" in reasons[2]
    assert len(consumer.dead) == 3
    await client.close_async()


@aio
async def test_a_worker_consumes_triggers_and_publishes_its_events(tmp_path: Path) -> None:
    exchange, queue, watch = unique("e2e"), unique("ship"), unique("watch")
    db_url = f"sqlite:///{tmp_path}/e2e.db"
    env = {
        "PYTHONPATH": str(ROOT),
        "PATH": "/usr/bin:/bin",
        "SPOKEHUB_EVENT_BUS_URL": URL,
        "SPOKEHUB_EVENT_EXCHANGE": exchange,
        "ITEST_QUEUE": queue,
    }
    async with broker([exchange], [queue, f"{queue}.dead", watch]) as channel:
        import aio_pika

        ex = await channel.declare_exchange(exchange, aio_pika.ExchangeType.TOPIC, durable=True)
        seen = await channel.declare_queue(watch, durable=True)
        await seen.bind(ex, routing_key="order.shipped")
        log = open(tmp_path / "worker.log", "wb")  # noqa: ASYNC230, SIM115 - closed below
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "spokehub.cli",
            "--db",
            db_url,
            "worker",
            "--app",
            "tests.integrations.bus_app",
            stdout=log,
            stderr=log,
            env=env,
        )
        try:
            body = json.dumps({"order_id": "o-77"}).encode()
            got: list[object] = []
            for _ in range(40):  # the consumer declares its queue once the worker is up
                await ex.publish(aio_pika.Message(body=body, message_id="pay-77"), "order.paid")
                got = await collect(seen, 1, timeout=0.5)
                if got:
                    break
            assert got, (tmp_path / "worker.log").read_text()[-2000:]
            message = got[0]
            payload = json.loads(message.body)  # type: ignore[attr-defined]
            assert payload["data"] == {"order_id": "o-77"}
            assert payload["run_id"] == message_run_id(queue, "pay-77", b"")
        finally:
            proc.kill()  # SIGKILL
            await proc.wait()
            log.close()
    # However often "pay-77" was delivered, it started one run.
    client = Client(db_url)
    runs = [r for r in await client.list_runs_async(limit=100) if r.workflow == "itest.bus.e2e"]
    assert len(runs) == 1
    await client.close_async()


@aio
async def test_events_of_a_worker_killed_before_publishing_are_published_later(
    tmp_path: Path,
) -> None:
    """The worker commits its runs' events (outbox included), cannot reach the broker, and is
    SIGKILLed; a publisher started afterwards publishes them, with their ledger-derived ids."""
    db_url = f"sqlite:///{tmp_path}/killed.db"
    exchange, queue = unique("killed"), unique("all")
    env = {
        "PYTHONPATH": str(ROOT),
        "PATH": "/usr/bin:/bin",
        "SPOKEHUB_EVENT_BUS_URL": "amqp://guest:guest@127.0.0.1:1/",  # nothing listens there
        "SPOKEHUB_EVENT_EXCHANGE": exchange,
        "SPOKEHUB_OUTBOX_LEASE": "1",
    }
    client = Client(db_url)
    install_outbox(client)  # this process writes the run.started ledger event
    handle = await client.start_async(hello.options(run_id="killed-1"), "k")
    log = open(tmp_path / "worker.log", "wb")  # noqa: ASYNC230, SIM115 - closed below
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "spokehub.cli",
        "--db",
        db_url,
        "worker",
        "--app",
        "tests.integrations.test_event_bus",
        stdout=log,
        stderr=log,
        env=env,
    )
    try:
        assert await handle.result_async(timeout=60) == "hello k"
    finally:
        proc.kill()  # SIGKILL: committed, never published
        await proc.wait()
        log.close()
    await asyncio.sleep(1.1)  # a claim the killed worker held runs out
    pending = await read(client.store)
    assert [m.name for m in pending] == ["run.started", "run.completed"]
    async with broker([exchange], [queue]) as channel:
        import aio_pika

        ex = await channel.declare_exchange(exchange, aio_pika.ExchangeType.TOPIC, durable=True)
        q = await channel.declare_queue(queue, durable=True)
        await q.bind(ex, routing_key="#")
        bus = RabbitMQBus(URL, exchange)
        assert await OutboxPublisher(client, bus).drain() == 2
        await bus.close()
        got = await collect(q, 2)
    assert [m.message_id for m in got] == [m.id for m in pending]
    assert all(m.id.startswith("killed-1:") for m in pending)
    await client.close_async()
