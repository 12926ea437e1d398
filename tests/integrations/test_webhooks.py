"""Outbound webhooks: signed deliveries checked by an independent verifier, retries, egress."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from spokehub import Client, RunStatus, workflow
from spokehub.integrations import HttpConnector, InProcessHostState
from spokehub.integrations.dispatch import WebhookDispatcher
from spokehub.integrations.outbox import install_outbox
from spokehub.integrations.webhooks import (
    DELIVERY_WORKFLOW,
    WEBHOOKS,
    SubscriptionError,
    SubscriptionNotFound,
    delivery_run_id,
    get_subscription,
    subscribe,
    subscriptions,
    unsubscribe,
)
from spokehub.runtime.client import _sync
from spokehub.server.integrations_api import delivery_attempts
from spokehub.testing import FakeClock, run_until_idle
from tests.integrations.scripted_server import Answer, ScriptedServer

SECRET = "whsec_" + base64.b64encode(b"a webhook key of 24 bytes").decode()


def verify(secret: str, headers: dict[str, str], body: bytes) -> bool:
    """The receiver's check, written from the Standard Webhooks text, not from spokehub."""
    key = base64.b64decode(secret.split("_", 1)[1])
    content = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    expected = base64.b64encode(hmac.new(key, content, hashlib.sha256).digest()).decode()
    given = [
        s.split(",", 1)[1] for s in headers["webhook-signature"].split(" ") if s.startswith("v1,")
    ]
    return any(hmac.compare_digest(expected, g) for g in given)


@workflow(name="itest.webhook.job")
async def job(n: int) -> int:
    return n * 2


@pytest.fixture
def hooked(tmp_path: Path, clock: FakeClock) -> Iterator[Client]:
    client = Client(f"sqlite:///{tmp_path}/wh.db", clock=clock)
    install_outbox(client)
    _sync(client.ensure_schema())
    connector = HttpConnector(allow=("127.0.0.1",), state=InProcessHostState(), clock=clock.now)
    WEBHOOKS.bind(client, connector)
    yield client
    connector.close()
    client.close()


def test_a_delivery_is_signed_retried_with_the_same_id_and_verifiable(
    hooked: Client, server: ScriptedServer
) -> None:
    sub = _sync(
        subscribe(hooked.store, server.url("/hook"), ["run.completed"], secret=SECRET, now=1.0)
    )
    other = _sync(subscribe(hooked.store, server.url("/other"), ["order.*"], now=1.0))
    assert hooked.run(job.options(run_id="job-1"), 21) == 42
    server.answer(Answer(503, b"busy"), Answer(200, b"ok"))
    dispatcher = WebhookDispatcher(hooked)
    assert _sync(dispatcher.dispatch_once()) == 2  # run.started and run.completed
    assert dispatcher.started == 1  # only run.completed matches, and only `sub`
    run_until_idle(hooked)
    requests = [r for r in server.requests if r.path == "/hook"]
    assert len(requests) == 2
    (webhook_id,) = {r.headers["webhook-id"] for r in requests}  # stable across retries
    assert webhook_id.startswith("job-1:")
    for r in requests:
        assert verify(SECRET, r.headers, r.body)
        assert not verify(other.secret, r.headers, r.body)
        assert json.loads(r.body)["event"] == "run.completed"
    assert requests[0].body == requests[1].body
    tampered = dict(requests[0].headers, **{"webhook-timestamp": "1"})
    assert not verify(SECRET, tampered, requests[0].body)
    run_id = delivery_run_id(sub.id, json.loads(requests[0].body)["id"])
    assert hooked.get_run(run_id).status is RunStatus.COMPLETED
    attempts = delivery_attempts(hooked.handle(run_id).events())
    assert [a["ok"] for a in attempts] == [False, True]
    assert attempts[1]["status"] == 200
    # The deliveries' own events are read, never delivered (no feedback loop); and every
    # message is read once.
    assert _sync(dispatcher.dispatch_once()) == 2
    assert dispatcher.started == 1
    assert _sync(dispatcher.dispatch_once()) == 0


def test_a_subscription_to_an_internal_address_is_refused_at_delivery(hooked: Client) -> None:
    sub = _sync(subscribe(hooked.store, "http://169.254.169.254/latest", ["*"], now=1.0))
    hooked.run(job.options(run_id="job-2"), 1)
    _sync(WebhookDispatcher(hooked).dispatch_once())
    run_until_idle(hooked)
    runs = [r for r in hooked.list_runs(limit=50) if r.workflow == DELIVERY_WORKFLOW]
    assert len(runs) == 2
    for run in runs:
        assert run.status is RunStatus.FAILED
        assert "EgressDenied" in json.dumps(run.error)
    assert sub.matches("anything.at.all")


def test_subscriptions_are_checked_at_declaration(hooked: Client) -> None:
    for url in ("ftp://example.com/x", "file:///etc/passwd", "javascript:alert(1)", "example.com"):
        with pytest.raises(SubscriptionError, match="http"):
            _sync(subscribe(hooked.store, url, ["*"], now=1.0))
    with pytest.raises(SubscriptionError, match="event patterns"):
        _sync(subscribe(hooked.store, "https://example.com/h", [], now=1.0))
    with pytest.raises(SubscriptionError, match="whsec_"):
        _sync(subscribe(hooked.store, "https://example.com/h", ["*"], secret="whsec_!!", now=1.0))
    sub = _sync(subscribe(hooked.store, "https://example.com/h", ["run.*"], now=1.0))
    assert sub.secret.startswith("whsec_")
    assert [s.id for s in _sync(subscriptions(hooked.store))] == [sub.id]
    assert "secret" not in sub.to_dict()
    _sync(unsubscribe(hooked.store, sub.id))
    with pytest.raises(SubscriptionNotFound):
        _sync(get_subscription(hooked.store, sub.id))
    with pytest.raises(SubscriptionNotFound):
        _sync(unsubscribe(hooked.store, sub.id))


def test_subscription_secrets_are_encrypted_at_rest(db_url: str) -> None:
    import os as _os

    from spokehub import Settings
    from spokehub.store.base import Tx

    keys = "w1:" + base64.b64encode(_os.urandom(32)).decode()
    with Client(settings=Settings(database_url=db_url, encryption_keys=keys)) as client:
        _sync(client.ensure_schema())
        sub = _sync(subscribe(client.store, "https://example.com/h", ["run.*"], now=1.0))

        def raw(tx: Tx) -> str:
            row = tx.execute("SELECT secret FROM webhook_subscriptions WHERE id = ?", (sub.id,))
            return str(row.fetchone()[0])

        stored = _sync(client.store.transact(raw, write=False))
        assert sub.secret not in stored  # sealed with the configured key
        assert _sync(subscriptions(client.store))[0].secret == sub.secret  # opened to sign
