"""Webhook triggers: a signed HTTP delivery starts a configured workflow, once.

Deliveries are checked the Standard Webhooks way (https://www.standardwebhooks.com/): headers
``webhook-id``, ``webhook-timestamp`` (Unix seconds) and ``webhook-signature`` (space-separated
``v1,<base64 HMAC-SHA256>`` entries over ``"{id}.{timestamp}.{raw body}"``, keyed with the
base64 part of a ``whsec_...`` secret). Every delivery, accepted or not, is recorded with its
reason. The run id is ``hook:{name}:{delivery id}``, so a delivery id can start at most one run,
and a replayed one is refused before it reaches the workflow.

The hooks file (TOML)::

    [hooks.deploy]
    workflow = "deploy_site"       # a workflow registered in the server process
    secret_env = "DEPLOY_HOOK_SECRET"  # the env var holding "whsec_<base64>"
    tolerance = "5m"               # optional: how far the timestamp may be from now
    argument = "event"             # optional: pass the body as this one argument;
                                   # without it the body is the object of keyword arguments
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from spokehub.errors import ConfigurationError, SpokehubError
from spokehub.ops.durations import parse_duration
from spokehub.runtime.client import Client
from spokehub.runtime.definitions import REGISTRY
from spokehub.store.base import RunRecord, Tx

__all__ = [
    "Delivery",
    "Hook",
    "HookRejected",
    "list_deliveries",
    "load_hooks",
    "receive",
    "sign",
    "verify",
]

DEFAULT_TOLERANCE = 300.0
_MAX_TEXT = 200  # longest hook name / delivery id / reason kept in the deliveries table


@dataclass(frozen=True, slots=True, kw_only=True)
class Hook:
    """One webhook trigger from the hooks file."""

    name: str
    workflow: str
    secret_env: str
    tolerance: float = DEFAULT_TOLERANCE
    argument: str | None = None

    def secret(self, env: Mapping[str, str] | None = None) -> bytes:
        """The HMAC key: the base64 part of the ``whsec_...`` value of ``secret_env``."""
        value = (os.environ if env is None else env).get(self.secret_env, "")
        if not value:
            raise ConfigurationError(
                f"hook {self.name!r}: environment variable {self.secret_env} is not set; set it "
                "to the whsec_... secret shared with the sender"
            )
        try:
            return base64.b64decode(value.removeprefix("whsec_"), validate=True)
        except binascii.Error:
            raise ConfigurationError(
                f"hook {self.name!r}: {self.secret_env} is not whsec_ followed by base64"
            ) from None


class HookRejected(SpokehubError):
    """A delivery that was refused; ``reason`` is a stable word, ``status`` the HTTP answer."""

    code = "webhook_rejected"

    def __init__(self, reason: str, message: str, status: int) -> None:
        super().__init__(message)
        self.reason = reason
        self.status = status


def load_hooks(path: Path) -> dict[str, Hook]:
    """Read the hooks file; every mistake is a ``ConfigurationError`` naming the fix."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigurationError(
            f"hooks file {str(path)!r} does not exist; check --hooks"
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError(f"hooks file {str(path)!r} is not valid TOML: {exc}") from None
    table = data.get("hooks", {})
    if not isinstance(table, dict):
        raise ConfigurationError(f"{path}: [hooks] must be a table of [hooks.NAME] sections")
    return {name: _hook(path, name, spec) for name, spec in table.items()}


def _hook(path: Path, name: str, spec: Any) -> Hook:
    where = f"{path}: [hooks.{name}]"
    if not isinstance(spec, dict):
        raise ConfigurationError(f"{where} must be a table with workflow and secret_env")
    unknown = sorted(set(spec) - {"workflow", "secret_env", "tolerance", "argument"})
    if unknown:
        raise ConfigurationError(f"{where} has unknown key(s) {unknown}")
    for key in ("workflow", "secret_env"):
        if not isinstance(spec.get(key), str) or not spec[key]:
            raise ConfigurationError(f'{where} needs {key} = "..."')
    raw = spec.get("tolerance", DEFAULT_TOLERANCE)
    try:
        tolerance = parse_duration(raw) if isinstance(raw, str) else float(raw)
    except (TypeError, ValueError):
        raise ConfigurationError(f'{where}: tolerance is seconds or text like "5m"') from None
    argument = spec.get("argument")
    if argument is not None and not isinstance(argument, str):
        raise ConfigurationError(f"{where}: argument is the name of one workflow argument")
    return Hook(
        name=name,
        workflow=spec["workflow"],
        secret_env=spec["secret_env"],
        tolerance=tolerance,
        argument=argument,
    )


def sign(secret: bytes, delivery_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` value a sender puts on ``body`` (senders and tests use it)."""
    signed = f"{delivery_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def verify(
    secret: bytes, headers: Mapping[str, str], body: bytes, *, now: float, tolerance: float
) -> str:
    """Check a delivery's headers; return its delivery id or raise ``HookRejected``."""
    delivery_id = headers.get("webhook-id", "")
    stamp = headers.get("webhook-timestamp", "")
    signatures = headers.get("webhook-signature", "")
    if not delivery_id or not stamp or not signatures:
        raise HookRejected(
            "missing_headers",
            "a webhook needs the headers webhook-id, webhook-timestamp and webhook-signature",
            400,
        )
    if len(delivery_id) > _MAX_TEXT:
        raise HookRejected("bad_id", f"webhook-id is longer than {_MAX_TEXT} characters", 400)
    if not stamp.isdigit():
        raise HookRejected("bad_timestamp", "webhook-timestamp must be Unix seconds", 400)
    if abs(now - int(stamp)) > tolerance:
        raise HookRejected(
            "stale_timestamp",
            f"webhook-timestamp is more than {tolerance:g}s away from the server's clock; "
            "send deliveries promptly and check the sender's clock",
            401,
        )
    expected = sign(secret, delivery_id, int(stamp), body).encode("ascii")
    # Several signatures are allowed so that a sender can rotate its secret.
    if not any(hmac.compare_digest(expected, s.encode()) for s in signatures.split()):
        raise HookRejected("bad_signature", "no webhook-signature matches this body", 401)
    return delivery_id


@dataclass(frozen=True, slots=True)
class Delivery:
    """One recorded delivery."""

    id: int
    hook: str
    delivery_id: str | None
    received_at: float
    status: str  # "accepted" or "rejected"
    reason: str | None
    run_id: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "hook": self.hook,
            "delivery_id": self.delivery_id,
            "received_at": self.received_at,
            "status": self.status,
            "reason": self.reason,
            "run_id": self.run_id,
        }


async def receive(
    client: Client,
    hooks: Mapping[str, Hook],
    name: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    env: Mapping[str, str] | None = None,
) -> RunRecord:
    """Verify, record and start one delivery; raise ``HookRejected`` (recorded too) if refused."""
    now = client.clock.now()
    raw_id = headers.get("webhook-id") or None
    try:
        hook = hooks.get(name)
        if hook is None:
            raise HookRejected("unknown_hook", f"no webhook named {name!r} is configured", 404)
        delivery_id = verify(hook.secret(env), headers, body, now=now, tolerance=hook.tolerance)
        data = _input(hook, body)
    except HookRejected as exc:
        await _record(client, name, raw_id, now, "rejected", exc.reason, None)
        raise
    run_id = f"hook:{hook.name}:{delivery_id}"
    if not await _record(client, name, delivery_id, now, "accepted", None, run_id):
        await _record(client, name, delivery_id, now, "rejected", "replayed", None)
        raise HookRejected(
            "replayed", f"delivery {delivery_id!r} was already received; it is not run twice", 409
        )
    try:
        wf = REGISTRY.workflows.get(hook.workflow)
        if wf is None:
            raise ConfigurationError(
                f"hook {hook.name!r} names workflow {hook.workflow!r}, which this server has not "
                "imported; start it with --app MODULE_OR_FILE"
            )
        handle = await client.start_input_async(
            wf, data, run_id=run_id, started_by=f"hook:{hook.name}"
        )
    except (SpokehubError, ValueError, TypeError) as exc:
        await _mark_failed(client, name, delivery_id, f"start failed: {exc}")
        raise
    return await client.get_run_async(handle.id)


def _input(hook: Hook, body: bytes) -> dict[str, Any]:
    try:
        value = json.loads(body) if body.strip() else {}
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise HookRejected("bad_body", "the webhook body is not JSON", 400) from None
    if hook.argument is not None:
        return {hook.argument: value}
    if not isinstance(value, dict):
        raise HookRejected(
            "bad_body",
            f"hook {hook.name!r} passes the body as keyword arguments, so it must be a JSON "
            'object (or set argument = "..." in the hooks file)',
            400,
        )
    return value


async def _record(
    client: Client,
    hook: str,
    delivery_id: str | None,
    now: float,
    status: str,
    reason: str | None,
    run_id: str | None,
) -> bool:
    """Insert a delivery row; False when an accepted one with that id exists already."""

    def insert(tx: Tx) -> bool:
        rows = tx.execute(
            "INSERT INTO webhook_deliveries "
            "(hook, delivery_id, received_at, status, reason, run_id) VALUES (?, ?, ?, ?, ?, ?) "
            "ON CONFLICT DO NOTHING RETURNING id",
            (_cut(hook), _cut(delivery_id), now, status, _cut(reason), run_id),
        )
        return rows.fetchone() is not None

    await client.ensure_schema()
    return await client.store.transact(insert)


async def _mark_failed(client: Client, hook: str, delivery_id: str, reason: str) -> None:
    """A delivery whose run could not start is kept, as rejected with why."""

    def update(tx: Tx) -> None:
        tx.execute(
            "UPDATE webhook_deliveries SET status = 'rejected', reason = ?, run_id = NULL "
            "WHERE hook = ? AND delivery_id = ? AND status = 'accepted'",
            (_cut(reason), _cut(hook), _cut(delivery_id)),
        )

    await client.store.transact(update)


async def list_deliveries(
    client: Client, *, hook: str | None = None, limit: int = 100
) -> list[Delivery]:
    """The latest deliveries first."""
    if limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit}")

    def select(tx: Tx) -> list[Delivery]:
        where, params = ("WHERE hook = ?", [hook]) if hook is not None else ("", [])
        rows = tx.execute(
            "SELECT id, hook, delivery_id, received_at, status, reason, run_id "
            f"FROM webhook_deliveries {where} ORDER BY id DESC LIMIT ?",
            (*params, limit),
        ).fetchall()
        return [Delivery(*row) for row in rows]

    await client.ensure_schema()
    return await client.store.transact(select, write=False)


def _cut(text: str | None) -> str | None:
    return None if text is None else text[:_MAX_TEXT]
