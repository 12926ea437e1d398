"""Debounce and throttle for starts: ``wf.options(debounce=30, key=...)``, ``throttle=...``.

**Debounce**: the starts of a burst (same workflow and key) make one run, started
``debounce`` seconds after the last of them with the last input. The first start of a burst
fixes the run id (``debounce:<workflow>:<key>:<random>``), so every start of the burst returns
a handle on the same run (it exists once the burst is over). Workers fire due bursts (with the
schedules); firing is a compare-and-set, and a burst whose firing worker died is fired again
with the same run id, which starts it at most once.

**Throttle**: ``throttle=(n, period, key)`` allows ``n`` starts per ``period`` seconds per key
(a token bucket in the database, shared by every process); one more fails with ``Throttled``
whose ``retry_after`` says when a start will pass.

Both need ``enable(client)`` (``spokehub worker`` and ``spokehub serve`` call it).
"""

from __future__ import annotations

import json
import secrets
from typing import TYPE_CHECKING, Any

from spokehub.integrations.errors import IntegrationError
from spokehub.integrations.ratelimit import Bucket, RateLimit, take
from spokehub.runtime.definitions import REGISTRY, Registry, StartControl, Workflow
from spokehub.store.base import Tx
from spokehub.types import JSON

if TYPE_CHECKING:
    from spokehub.runtime.client import Client, RunHandle

STALE_FIRING = 30.0  # seconds after which a burst being fired by a silent worker is retried


class Throttled(IntegrationError):
    """Too many starts with this key in the period; retry after ``retry_after`` seconds."""

    code = "throttled"

    def __init__(self, key: str, retry_after: float) -> None:
        super().__init__(
            f"starts with key {key!r} are throttled; the next one is allowed in {retry_after:.1f}s"
        )
        self.retry_after = retry_after


def enable(client: Client) -> Client:
    """Let ``client`` start workflows whose options carry debounce or throttle."""
    client.start_control = control
    return client


async def control(client: Client, wf: Workflow[..., Any], data: dict[str, JSON]) -> RunHandle[Any]:
    from spokehub.runtime.client import RunHandle

    spec: StartControl = wf.starts  # type: ignore[assignment]
    await client.ensure_schema()
    now = client.clock.now()
    if spec.throttle is not None:
        await _throttle(client, wf, spec, now)
    if spec.debounce is None:
        return await client.start_now_async(wf, data)
    run_id = await _debounce(client, wf, spec, data, now)
    return RunHandle(client, run_id, wf, created=None)


async def _throttle(client: Client, wf: Workflow[..., Any], spec: StartControl, now: float) -> None:
    n, period = spec.throttle  # type: ignore[misc]
    limit = RateLimit(requests=n, period=period)
    key = f"{wf.name}:{spec.key}"

    def take_token(tx: Tx) -> float | None:
        row = tx.execute(
            "INSERT INTO start_throttles (key, tokens, updated_at) VALUES (?, ?, ?) "
            "ON CONFLICT (key) DO UPDATE SET key = excluded.key RETURNING tokens, updated_at",
            (key, limit.capacity, now),
        ).fetchone()
        ok, wait, bucket = take(limit, Bucket(float(row[0]), float(row[1])), now)
        tx.execute(
            "UPDATE start_throttles SET tokens = ?, updated_at = ? WHERE key = ?",
            (bucket.tokens, bucket.updated_at, key),
        )
        return None if ok else wait

    wait = await client.store.transact(take_token)
    if wait is not None:
        raise Throttled(spec.key, wait)


async def _debounce(
    client: Client, wf: Workflow[..., Any], spec: StartControl, data: dict[str, JSON], now: float
) -> str:
    key = f"{wf.name}:{spec.key}"
    fresh = f"debounce:{wf.name}:{spec.key}:{secrets.token_hex(6)}"
    due = now + float(spec.debounce or 0)

    def upsert(tx: Tx) -> str:
        row = tx.execute(
            "INSERT INTO start_debounces (run_id, key, workflow, input, due_at, state, "
            "updated_at) VALUES (?, ?, ?, ?, ?, 'open', ?) "
            "ON CONFLICT (key) WHERE state = 'open' DO UPDATE SET input = excluded.input, "
            "due_at = excluded.due_at, updated_at = excluded.updated_at RETURNING run_id",
            (fresh, key, wf.name, json.dumps(data), due, now),
        ).fetchone()
        return str(row[0])

    return await client.store.transact(upsert)


async def fire_due(client: Client, registry: Registry = REGISTRY) -> list[str]:
    """Start the runs of the bursts that are over; returns the run ids this call created."""
    await client.ensure_schema()
    now = client.clock.now()

    def due(tx: Tx) -> list[Any]:
        return tx.execute(
            "SELECT run_id, workflow, input, due_at, state FROM start_debounces "
            "WHERE (state = 'open' AND due_at <= ?) OR (state = 'firing' AND updated_at < ?)",
            (now, now - STALE_FIRING),
        ).fetchall()

    created = []
    for run_id, name, payload, due_at, state in await client.store.transact(due, write=False):
        wf = registry.workflows.get(name)
        if wf is None or not await _claim(client, run_id, due_at, state, now):
            continue  # another worker fires it (or one that imports the workflow will)
        handle = await client.start_now_async(wf, json.loads(payload), run_id=run_id)
        if handle.created:
            created.append(run_id)
        await client.store.transact(_deleter(run_id))
    return created


def _deleter(run_id: str) -> Any:
    def delete(tx: Tx) -> None:
        tx.execute("DELETE FROM start_debounces WHERE run_id = ?", (run_id,))

    return delete


async def _claim(client: Client, run_id: str, due_at: float, state: str, now: float) -> bool:
    def cas(tx: Tx) -> bool:
        done = tx.execute(
            "UPDATE start_debounces SET state = 'firing', updated_at = ? WHERE run_id = ? "
            "AND due_at = ? AND state = ?",
            (now, run_id, due_at, state),
        )
        return bool(done.rowcount == 1)

    return await client.store.transact(cas)
