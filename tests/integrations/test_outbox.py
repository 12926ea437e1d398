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


DENY_POLICIES = """
apiVersion: spokehub.dev/v1
kind: Policy
metadata: {name: freeze}
spec:
  validations:
    - expression: "!object.frozen"
      message: release freeze
---
apiVersion: spokehub.dev/v1
kind: PolicyBinding
metadata: {name: freeze-gate}
spec:
  policyName: freeze
  match: {hooks: [gate], names: [release]}
  actions: [Deny]
---
apiVersion: spokehub.dev/v1
kind: PolicyBinding
metadata: {name: freeze-step}
spec:
  policyName: freeze
  match: {hooks: [step], names: [itest_push]}
  actions: [Deny]
"""


@step(name="itest_push")
async def itest_push(frozen: bool) -> str:
    return "pushed"


@workflow(name="itest.outbox.push")
async def push_flow() -> str:
    return await itest_push(True)


@workflow(name="itest.outbox.release")
async def release_flow(frozen: bool) -> str:
    from spokehub.governance import policy_gate

    await policy_gate("release", {"frozen": frozen})
    return "released"


def test_a_policy_denial_is_a_domain_event(client: Client) -> None:
    from spokehub.governance import Policies, PolicyInterceptor, load_policy_texts

    policies = Policies(load_policy_texts([("p.yaml", DENY_POLICIES)]), clock=client.clock)
    client.interceptors = (*client.interceptors, PolicyInterceptor(policies))
    install_outbox(client)
    allowed = client.start(release_flow.options(run_id="rel-ok"), False)
    held = client.start(release_flow.options(run_id="rel-held"), True)
    run_until_idle(client)
    assert allowed.result() == "released"
    with pytest.raises(RunFailed, match="release freeze"):
        held.result()
    names = {(m.payload["run_id"], m.name) for m in _sync(read(client.store))}
    assert ("rel-held", "policy.denied") in names
    assert ("rel-ok", "policy.denied") not in names
    denied = [m for m in _sync(read(client.store)) if m.name == "policy.denied"]
    assert denied[0].payload["data"]["decision"] == "deny"
    pushed = client.start(push_flow.options(run_id="push-held"))
    run_until_idle(client)
    with pytest.raises(RunFailed):
        pushed.result()
    names = {(m.payload["run_id"], m.name) for m in _sync(read(client.store))}
    assert ("push-held", "policy.denied") in names  # the step was refused before it ran
