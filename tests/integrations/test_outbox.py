"""The outbox: domain events committed with their ledger events, on both backends."""

from __future__ import annotations

import json

import pytest

from spokehub import Client, RetryPolicy, RunFailed, step, workflow
from spokehub.integrations.emit import emit, emit_sync
from spokehub.integrations.outbox import install_outbox, read
from spokehub.runtime.client import _sync
from spokehub.testing import run_until_idle


@step(retry=RetryPolicy(max_attempts=2, initial_delay=1, jitter=0))
async def flaky_charge(order: str) -> str:
    raise RuntimeError(f"card declined for {order}")


@workflow(name="itest.outbox.order")
async def order_flow(order: str) -> str:
    await emit("order.accepted", {"order": order})
    await flaky_charge(order)
    return "never"


@workflow(name="itest.outbox.sync")
def sync_flow() -> str:
    emit_sync("sync.done")
    return "ok"


def test_domain_events_are_in_the_outbox(client: Client) -> None:
    install_outbox(client)
    handle = client.start(order_flow.options(run_id="order-1"), "o-1")
    run_until_idle(client)
    with pytest.raises(RunFailed):
        handle.result()
    messages = _sync(read(client.store))
    assert [m.name for m in messages] == [
        "run.started",
        "order.accepted",
        "step.failed",
        "run.failed",
    ]
    ledger = {e.position for e in handle.events()}
    for m in messages:
        run_id, position = m.id.rsplit(":", 1)
        assert run_id == "order-1"
        assert int(position) in ledger  # the id is the ledger position: stable forever
        assert m.payload["workflow"] == "itest.outbox.order"
    assert messages[1].payload["data"] == {"order": "o-1"}
    assert json.loads(messages[0].body)["event"] == "run.started"
    assert _sync(read(client.store, after=messages[1].seq, limit=1))[0].name == "step.failed"


def test_a_sync_workflow_emits_too(client: Client) -> None:
    install_outbox(client)
    assert client.run(sync_flow) == "ok"
    assert [m.name for m in _sync(read(client.store))] == [
        "run.started",
        "sync.done",
        "run.completed",
    ]


def test_bad_event_names_are_refused() -> None:
    with pytest.raises(ValueError, match="dot-separated"):
        emit("has space")
    with pytest.raises(ValueError, match="dot-separated"):
        emit_sync("")


def test_breaker_transitions_are_written_to_the_outbox(client: Client) -> None:
    import asyncio

    from spokehub.integrations.outbox import breaker_event_writer

    listener = breaker_event_writer(client)

    async def transitions() -> None:
        listener("api.example.com:443", "open")
        listener("api.example.com:443", "closed")
        await asyncio.sleep(0.2)

    _sync(client.ensure_schema())
    _sync(transitions())
    for _ in range(50):
        messages = _sync(read(client.store))
        if len(messages) == 2:
            break
    assert [m.name for m in messages] == ["breaker.opened", "breaker.closed"]
    assert messages[0].payload["host"] == "api.example.com:443"


def test_a_failed_publish_gives_its_claim_back(client: Client) -> None:
    from spokehub.integrations import outbox
    from spokehub.integrations.bus import RabbitMQBus
    from spokehub.integrations.publisher import OutboxPublisher

    install_outbox(client)
    client.run(sync_flow)
    unreachable = RabbitMQBus("amqp://guest:guest@127.0.0.1:1/", "nowhere")  # nothing listens
    with pytest.raises(ConnectionError, match="Connect call failed"):
        _sync(OutboxPublisher(client, unreachable).publish_once())
    # Released at once: another publisher can claim all three without waiting for a lease.
    claimed = _sync(
        outbox.claim(client.store, owner="other", now=client.clock.now(), lease=30, limit=10)
    )
    assert len(claimed) == 3
