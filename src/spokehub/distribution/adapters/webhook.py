"""``webhook``: send each resource as an event, signed per Standard Webhooks.

Headers ``webhook-id`` (the op's idempotency key, stable across retries and crashes, so the
receiver deduplicates), ``webhook-timestamp`` and ``webhook-signature`` (``v1,`` + base64
HMAC-SHA256 over ``id.timestamp.body``), and ``Idempotency-Key`` (the op's key). A webhook
cannot be read back, so the plan compares the desired content with the inventory. The POST goes
through the integrations HTTP connector (``outbound.exchange``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Iterable, Mapping, Sequence

from spokehub.distribution.adapters.base import BaseAdapter, applied, capabilities
from spokehub.distribution.adapters.outbound import exchange
from spokehub.distribution.errors import AdapterError
from spokehub.distribution.model import (
    Action,
    ApplyContext,
    Observed,
    Op,
    OpResult,
    Precondition,
    Scope,
)


def signing_key(secret: str) -> bytes:
    """The HMAC key of a Standard Webhooks secret (``whsec_<base64>``, or raw text)."""
    if secret.startswith("whsec_"):
        return base64.b64decode(secret.removeprefix("whsec_"))
    return secret.encode()


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` header value for one message."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    mac = hmac.new(signing_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


class WebhookAdapter(BaseAdapter):
    """POST each created or updated resource to ``config.url``."""

    kind = "webhook"
    CAPABILITIES = capabilities()  # write-only

    def _configure(self) -> None:
        if not self.config.get("url"):
            raise AdapterError("a webhook target needs spec.config.url")
        if not self.credentials:
            raise AdapterError("a webhook target needs credentialsRef (the signing secret)")
        self.url = str(self.config["url"])

    def read(self, keys: Sequence[str]) -> Mapping[str, Observed | None]:
        return dict.fromkeys(keys)

    def discover(self, scope: Scope) -> Iterable[Observed]:
        return []

    def apply(
        self, op: Op, *, idempotency_key: str, expect: Precondition | None, ctx: ApplyContext
    ) -> OpResult:
        if op.action is Action.DELETE:  # nothing to take back from a receiver
            return OpResult(op.key, op.action, None, changed=False, detail="webhooks keep no state")
        body = op.data or b""
        # A webhook-id may contain only [A-Za-z0-9_.-]; the idempotency key is a hex digest.
        msg_id = "msg_" + idempotency_key
        ts = int(time.time())
        headers = {
            "webhook-id": msg_id,
            "webhook-timestamp": str(ts),
            "webhook-signature": sign(self.credentials or "", msg_id, ts, body),
            "content-type": "application/json",
            # Explicit: inside a step the connector would add the step's key, one for all ops.
            "idempotency-key": idempotency_key,
        }
        resp = exchange(self.config, "POST", self.url, content=body, headers=headers)
        self.calls["write"] += 1
        if resp.status >= 300:
            raise AdapterError(f"POST {self.url}: HTTP {resp.status} {resp.text[:200]}")
        return applied(op)
