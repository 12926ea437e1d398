"""Outbound webhooks: domain events POSTed to subscribed URLs, signed (Standard Webhooks).

A subscription names event patterns (``run.failed``, ``order.*``, ``*``; ``*`` matches any
characters, dots included) and an http(s) URL. The dispatcher reads the outbox and starts one
delivery run per (subscription, event), with the run id ``webhook:<subscription>:<event id>``,
so a delivery is never started twice. A delivery is the step ``webhook.send``: it signs the
body and POSTs it through the HTTP connector (the egress guard, breakers and rate limits
apply), retried with backoff on connection errors, 429 and 5xx. Its ledger holds every
attempt.

Headers (https://www.standardwebhooks.com): ``webhook-id`` (the event id, the same on every
retry), ``webhook-timestamp`` (seconds, of this attempt) and ``webhook-signature``
(``v1,<base64 HMAC-SHA256 of "id.timestamp.body">`` with the subscription's ``whsec_`` key).
"""

from __future__ import annotations

import base64
import binascii
import fnmatch
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from spokehub.engine.retry import RetryPolicy
from spokehub.errors import ConfigurationError, SpokehubError
from spokehub.integrations.connector import HttpConnector
from spokehub.integrations.errors import NON_RETRYABLE
from spokehub.runtime.definitions import step, workflow
from spokehub.store.base import Store, Tx

if TYPE_CHECKING:
    from spokehub.runtime.client import Client

DELIVERY_WORKFLOW = "spokehub.webhook.deliver"
RETRY = RetryPolicy(
    max_attempts=8,
    initial_delay=2.0,
    multiplier=3.0,
    max_delay=3600.0,
    jitter=0.2,
    non_retryable=NON_RETRYABLE,
)


class SubscriptionError(ConfigurationError):
    """A subscription is invalid (its URL, its events or its secret)."""

    code = "webhook_subscription"


class SubscriptionNotFound(SpokehubError, LookupError):
    code = "webhook_subscription_not_found"


@dataclass(frozen=True, slots=True)
class Subscription:
    id: str
    events: tuple[str, ...]
    url: str
    secret: str
    created_at: float

    def matches(self, name: str) -> bool:
        return any(fnmatch.fnmatchcase(name, pattern) for pattern in self.events)

    def to_dict(self) -> dict[str, Any]:
        """Without the secret."""
        return {
            "id": self.id,
            "events": list(self.events),
            "url": self.url,
            "created_at": self.created_at,
        }


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


def _key(secret: str) -> bytes:
    try:
        return base64.b64decode(secret.removeprefix("whsec_"), validate=True)
    except (binascii.Error, ValueError):
        raise SubscriptionError(
            "a webhook secret is 'whsec_' + base64 bytes; leave it out to get a new one"
        ) from None


def sign(secret: str, message_id: str, timestamp: int, body: str) -> str:
    """The ``webhook-signature`` header value for one attempt."""
    signed = f"{message_id}.{timestamp}.{body}".encode()
    mac = hmac.new(_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def check_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SubscriptionError(f"a webhook URL is http(s)://host/..., got {url!r}")
    return url


def _row(r: Any, reveal: Callable[[str], str]) -> Subscription:
    return Subscription(r[0], tuple(json.loads(r[1])), r[2], reveal(r[3]), r[4])


async def subscribe(
    store: Store, url: str, events: list[str], *, secret: str | None = None, now: float
) -> Subscription:
    """Add a subscription (checked first: http(s) URL, event patterns, secret)."""
    check_url(url)
    if not events or any(not e.strip() or len(e) > 200 for e in events):
        raise SubscriptionError("give one or more event patterns, e.g. ['run.failed', 'order.*']")
    secret = secret or new_secret()
    _key(secret)
    sub = Subscription("whsub_" + secrets.token_hex(8), tuple(events), url, secret, now)

    stored = _sealer(store, "seal_text")(secret)  # encrypted at rest when keys are set

    def insert(tx: Tx) -> None:
        tx.execute(
            "INSERT INTO webhook_subscriptions (id, events, url, secret, created_at) "
            "VALUES (?, ?, ?, ?, ?)",
            (sub.id, json.dumps(list(sub.events)), sub.url, stored, now),
        )

    await store.transact(insert)
    return sub


def _sealer(store: Store, name: str) -> Callable[[str], str]:
    """The store's ``seal_text``/``open_text`` (a relational store), else unchanged text."""
    found: Callable[[str], str] | None = getattr(store, name, None)
    return found if found is not None else (lambda text: text)


async def subscriptions(store: Store) -> list[Subscription]:
    reveal = _sealer(store, "open_text")

    def select(tx: Tx) -> list[Subscription]:
        rows = tx.execute(
            "SELECT id, events, url, secret, created_at FROM webhook_subscriptions "
            "WHERE active = 1 ORDER BY created_at, id"
        ).fetchall()
        return [_row(r, reveal) for r in rows]

    return await store.transact(select, write=False)


async def get_subscription(store: Store, sub_id: str) -> Subscription:
    reveal = _sealer(store, "open_text")

    def select(tx: Tx) -> Subscription:
        r = tx.execute(
            "SELECT id, events, url, secret, created_at FROM webhook_subscriptions "
            "WHERE id = ? AND active = 1",
            (sub_id,),
        ).fetchone()
        if r is None:
            raise SubscriptionNotFound(f"no webhook subscription {sub_id!r}")
        return _row(r, reveal)

    return await store.transact(select, write=False)


async def unsubscribe(store: Store, sub_id: str) -> None:
    def update(tx: Tx) -> None:
        done = tx.execute(
            "UPDATE webhook_subscriptions SET active = 0 WHERE id = ? AND active = 1", (sub_id,)
        )
        if done.rowcount == 0:
            raise SubscriptionNotFound(f"no webhook subscription {sub_id!r}")

    await store.transact(update)


class WebhookService:
    """Where delivery attempts find the database and the connector (bound at worker start)."""

    def __init__(self) -> None:
        self.client: Client | None = None
        self.connector: HttpConnector | None = None

    def bind(self, client: Client, connector: HttpConnector | None = None) -> None:
        from spokehub.integrations import http

        self.client = client
        self.connector = connector or http

    def ready(self) -> tuple[Client, HttpConnector]:
        if self.client is None or self.connector is None:
            raise ConfigurationError(
                "webhook deliveries need WEBHOOKS.bind(client) in the worker (spokehub worker "
                "does it when the outbox is on)"
            )
        return self.client, self.connector


WEBHOOKS = WebhookService()


@step(name="webhook.send", retry=RETRY)
async def send_webhook(subscription: str, message: dict[str, Any]) -> int:
    """One delivery attempt: sign (with this attempt's timestamp) and POST."""
    client, connector = WEBHOOKS.ready()
    sub = await get_subscription(client.store, subscription)
    body = json.dumps(message, separators=(",", ":"), sort_keys=True)
    stamp = int(time.time())
    headers = {
        "content-type": "application/json",
        "webhook-id": str(message.get("id")),
        "webhook-timestamp": str(stamp),
        "webhook-signature": sign(sub.secret, str(message.get("id")), stamp, body),
    }
    answer = await connector.send("POST", sub.url, content=body, headers=headers)
    return answer.status


@workflow(name=DELIVERY_WORKFLOW)
async def deliver_webhook(subscription: str, message: dict[str, Any]) -> int:
    """Deliver one event to one subscription (its ledger holds the attempts)."""
    return await send_webhook(subscription, message)


def delivery_run_id(subscription: str, message_id: str) -> str:
    return f"webhook:{subscription}:{message_id}"
