"""The outbox: domain events committed with the ledger events they come from.

``install_outbox(client)`` adds a sink to the client's store: whenever ledger events are
written, the significant ones become rows of ``outbox`` in the same transaction, so a domain
event exists if and only if its ledger event does. Their message id is ``<run id>:<ledger
position>``, stable forever, so a publisher that crashes after publishing and before marking
publishes the same id again and consumers can deduplicate.

Domain events: ``run.started``, ``run.completed``, ``run.failed``, ``run.cancelled``,
``step.failed`` (after the last attempt), ``approval.requested``, ``approval.decided``,
``policy.denied`` (a gate's or a step's denial: the ledger event that records it; a denied
*start* stores no run, so it is in the audit trail only), and the names given to
``emit(name, payload)`` by workflow code.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from spokehub.engine.events import Event, EventKind
from spokehub.errors import ConfigurationError
from spokehub.governance.hooks import GATE_STEP
from spokehub.store.base import Store, Tx

EMIT_STEP = "spokehub.emit"
_SIMPLE = {
    EventKind.RUN_STARTED: "run.started",
    EventKind.STEP_FAILED: "step.failed",
    EventKind.APPROVAL_REQUESTED: "approval.requested",
    EventKind.APPROVAL_DECIDED: "approval.decided",
}


@dataclass(frozen=True, slots=True)
class OutboxMessage:
    """One domain event as published: ``id`` is the stable message id."""

    seq: int
    id: str
    name: str
    payload: dict[str, Any]

    @property
    def body(self) -> bytes:
        return json.dumps(self.payload, separators=(",", ":")).encode()

    def to_dict(self) -> dict[str, Any]:
        return {"seq": self.seq, "id": self.id, "name": self.name, "payload": self.payload}


def domain_name(event: Event) -> str | None:
    """The domain event a ledger event stands for, if any."""
    if _denied(event):
        return "policy.denied"
    simple = _SIMPLE.get(event.kind)
    if simple is not None:
        return simple
    if event.kind is EventKind.RUN_FINISHED:
        return f"run.{event.data.get('status', 'finished')}"
    if event.kind is EventKind.STEP_COMPLETED and event.data.get("name") == EMIT_STEP:
        result = event.data.get("result")
        if isinstance(result, dict) and isinstance(result.get("event"), str):
            return str(result["event"])
    return None


def _denied(event: Event) -> bool:
    """A policy denial: a gate's decision, or a step refused before it ran."""
    if event.kind is EventKind.POLICY_DECIDED:
        return event.data.get("decision") == "deny"
    if event.kind is EventKind.STEP_COMPLETED and event.data.get("name") == GATE_STEP:
        result = event.data.get("result")
        return isinstance(result, dict) and result.get("decision") == "deny"
    if event.kind is EventKind.STEP_FAILED:
        error = event.data.get("error")
        return isinstance(error, dict) and error.get("code") == "policy_denied"
    return False


def _payload(name: str, run_id: str, workflow: str | None, event: Event) -> dict[str, Any]:
    data = event.data
    if event.kind is EventKind.STEP_COMPLETED:  # an emit's payload, or a gate's decision
        result = data["result"]
        data = result if name == "policy.denied" else result.get("payload")
    return {
        "id": f"{run_id}:{event.position}",
        "event": name,
        "run_id": run_id,
        "workflow": workflow,
        "at": event.at,
        "data": data,
    }


def outbox_sink(tx: Tx, run_id: str, events: Sequence[Event]) -> None:
    """The store sink: outbox rows for the domain events among ``events``."""
    workflow: str | None = None
    for event in events:
        name = domain_name(event)
        if name is None:
            continue
        if workflow is None:
            workflow = event.data.get("workflow") if event.kind is EventKind.RUN_STARTED else None
            if workflow is None:
                row = tx.execute("SELECT workflow FROM runs WHERE id = ?", (run_id,)).fetchone()
                workflow = row[0] if row else None
        payload = _payload(name, run_id, workflow, event)
        tx.execute(
            "INSERT INTO outbox (id, name, run_id, payload, created_at) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (id) DO NOTHING",
            (payload["id"], name, run_id, json.dumps(payload, separators=(",", ":")), time.time()),
        )


def outbox_from_env() -> bool:
    """``SPOKEHUB_OUTBOX=1``, or an event bus URL (``SPOKEHUB_EVENT_BUS_URL``), asks for it."""
    return os.environ.get("SPOKEHUB_OUTBOX") == "1" or bool(
        os.environ.get("SPOKEHUB_EVENT_BUS_URL")
    )


def install_outbox(client: Any) -> None:
    """Write domain events to the outbox of ``client``'s database from now on.

    Install it in every process that writes ledgers (workers, the server) before they start.
    """
    adder = getattr(client.store, "add_event_sink", None)
    if adder is None:
        raise ConfigurationError("this store has no outbox support (a relational store is needed)")
    adder(outbox_sink)


def _message(row: Any) -> OutboxMessage:
    return OutboxMessage(int(row[0]), row[1], row[2], json.loads(row[3]))


async def claim(
    store: Store, *, owner: str, now: float, lease: float, limit: int
) -> list[OutboxMessage]:
    """Take up to ``limit`` unpublished messages (oldest first) for ``lease`` seconds."""
    skip_locked = getattr(type(store), "lock_rows", "")

    def take(tx: Tx) -> list[OutboxMessage]:
        rows = tx.execute(
            "UPDATE outbox SET claimed_by = ?, claimed_until = ? WHERE seq IN ("
            "SELECT seq FROM outbox WHERE published_at IS NULL "
            "AND (claimed_until IS NULL OR claimed_until < ?) "
            f"ORDER BY seq LIMIT ?{skip_locked}) RETURNING seq, id, name, payload",
            (owner, now + lease, now, limit),
        ).fetchall()
        return sorted((_message(r) for r in rows), key=lambda m: m.seq)

    return await store.transact(take)


async def mark_published(store: Store, seqs: Sequence[int], now: float) -> None:
    def mark(tx: Tx) -> None:
        for start in range(0, len(seqs), 500):
            chunk = list(seqs[start : start + 500])
            marks = ", ".join("?" for _ in chunk)
            tx.execute(f"UPDATE outbox SET published_at = ? WHERE seq IN ({marks})", (now, *chunk))

    await store.transact(mark)


async def release(store: Store, seqs: Sequence[int], owner: str) -> None:
    """Give back a claim that could not be published (another publisher may take it now)."""

    def free(tx: Tx) -> None:
        marks = ", ".join("?" for _ in seqs)
        tx.execute(
            f"UPDATE outbox SET claimed_by = NULL, claimed_until = NULL WHERE seq IN ({marks}) "
            "AND claimed_by = ? AND published_at IS NULL",
            (*seqs, owner),
        )

    if seqs:
        await store.transact(free)


async def read(store: Store, *, after: int = 0, limit: int = 100) -> list[OutboxMessage]:
    """Messages after sequence number ``after``, oldest first (for SQLite-only deployments)."""

    def select(tx: Tx) -> list[OutboxMessage]:
        rows = tx.execute(
            "SELECT seq, id, name, payload FROM outbox WHERE seq > ? ORDER BY seq LIMIT ?",
            (after, limit),
        ).fetchall()
        return [_message(r) for r in rows]

    return await store.transact(select, write=False)


def write_message(
    tx: Tx, msg_id: str, name: str, payload: dict[str, Any], run_id: str | None = None
) -> None:
    """Add a domain event that is not a ledger event (an anomaly, a breaker change) to the
    outbox inside the caller's transaction; the same ``msg_id`` twice is written once."""
    tx.execute(
        "INSERT INTO outbox (id, name, run_id, payload, created_at) VALUES (?, ?, ?, ?, ?) "
        "ON CONFLICT (id) DO NOTHING",
        (msg_id, name, run_id, json.dumps(payload, separators=(",", ":")), time.time()),
    )


def installed(store: Any) -> bool:
    """Whether ``install_outbox`` was called for this store."""
    return outbox_sink in getattr(store, "event_sinks", ())


def breaker_event_writer(client: Any) -> Any:
    """A connector ``on_transition`` listener that writes ``breaker.opened`` /
    ``breaker.half_open`` / ``breaker.closed`` to the outbox (best effort: it runs after the
    state change, in its own transaction; the worker that made the change writes it)."""
    import asyncio
    import logging

    log = logging.getLogger("spokehub.integrations.outbox")
    names = {"open": "breaker.opened", "half_open": "breaker.half_open", "closed": "breaker.closed"}
    pending: set[asyncio.Task[None]] = set()

    def listener(host: str, state: str) -> None:
        name = names.get(state, f"breaker.{state}")
        at = client.clock.now()
        msg_id = f"breaker:{host}:{state}:{at:.6f}"
        payload = {"id": msg_id, "event": name, "host": host, "state": state, "at": at}

        def insert(tx: Tx) -> None:
            write_message(tx, msg_id, name, payload)

        async def write() -> None:
            try:
                await client.store.transact(insert)
            except Exception:  # an event lost here must not fail the request
                log.exception("could not write %s for %s to the outbox", name, host)

        task = asyncio.get_running_loop().create_task(write())
        pending.add(task)
        task.add_done_callback(pending.discard)

    return listener
