"""Server-Sent Events that tell open pages "something changed", and the static files.

Why polling: the writers are worker processes, maybe on other machines, sharing only the
database; SQLite has no cross-process notification, so the server reads a cheap signature
(the newest ``updated_at`` and a count, one indexed query) every ``POLL_SECONDS`` and pushes
an event when it moves. One query per open page every half second is nothing for the store,
works the same on SQLite and PostgreSQL, and needs no broker. Pages then fetch their HTML
fragment, so the stream carries no run data at all.

A stream ends after ``STREAM_SECONDS`` and the browser's ``EventSource`` reconnects by
itself (after ``retry``); that keeps server shutdown from waiting on idle streams.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query
from fastapi.responses import FileResponse, Response, StreamingResponse

from spokehub.distribution.rollout import WORKFLOW_NAME
from spokehub.ops.tokens import Permission
from spokehub.server.auth import Principal, public, require
from spokehub.server.dashboard.view import HERE, LOGIN_URL
from spokehub.server.state import StateDep
from spokehub.store.base import Tx

__all__ = ["router"]

router = APIRouter(prefix="/ui", include_in_schema=False)
POLL_SECONDS = 0.5
STREAM_SECONDS = 60.0
KEEPALIVE_SECONDS = 15.0
STATIC = {
    "dashboard.css": "text/css",
    "live.js": "text/javascript",
    "distribution.css": "text/css",
}


# A distribution changes when a promotion, a target row, an inventory row or an audit entry
# does (the governance chain included), or when one of its rollout runs moves (a gate waits).
_DISTRIBUTION_SIGNATURE = (
    "SELECT (SELECT MAX(updated_at) FROM dist_promotions WHERE distribution = ?), "
    "(SELECT COUNT(*) FROM dist_promotions WHERE distribution = ?), "
    "(SELECT MAX(updated_at) FROM dist_targets WHERE distribution = ?), "
    "(SELECT MAX(updated_at) FROM dist_inventory WHERE distribution = ?), "
    "(SELECT COUNT(*) FROM dist_inventory WHERE distribution = ?), "
    "(SELECT MAX(seq) FROM dist_audit WHERE distribution = ?), "
    "(SELECT MAX(seq) FROM audit_log), "
    "(SELECT MAX(updated_at) FROM runs WHERE workflow = ?), "
    "(SELECT COUNT(*) FROM runs WHERE workflow = ?)"
)


def _signature(run_id: str | None, distribution: str | None = None) -> Any:
    def read(tx: Tx) -> Any:
        if distribution is not None:
            params = (distribution,) * 6 + (WORKFLOW_NAME,) * 2
            row = tx.execute(_DISTRIBUTION_SIGNATURE, params).fetchone()
        elif run_id is None:
            row = tx.execute("SELECT MAX(updated_at), COUNT(*) FROM runs").fetchone()
        else:
            row = tx.execute(
                "SELECT r.updated_at, r.status, (SELECT COUNT(*) FROM events e "
                "WHERE e.run_id = r.id) FROM runs r WHERE r.id = ?",
                (run_id,),
            ).fetchone()
        return tuple(row) if row is not None else None

    return read


async def changes(
    state: StateDep,
    run_id: str | None,
    *,
    distribution: str | None = None,
    poll: float = POLL_SECONDS,
    lifetime: float = STREAM_SECONDS,
) -> AsyncIterator[str]:
    """SSE text: one ``change`` event whenever the signature moves (the first one at once)."""
    yield f"retry: {int(poll * 2000)}\n\n"
    loop = asyncio.get_running_loop()
    began = last_sent = loop.time()
    seen: Any = object()
    while loop.time() - began < lifetime:
        current = await state.client.store.transact(_signature(run_id, distribution), write=False)
        if current != seen:
            seen = current
            last_sent = loop.time()
            yield f"event: change\ndata: {json.dumps({'run': run_id})}\n\n"
        elif loop.time() - last_sent > KEEPALIVE_SECONDS:
            last_sent = loop.time()
            yield ": keep-alive\n\n"
        await asyncio.sleep(poll)


@router.get("/events")
async def events(
    state: StateDep,
    who: Annotated[Principal, Depends(require(Permission.READ, login_url=LOGIN_URL))],
    run: str | None = None,
    distribution: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
) -> StreamingResponse:
    """``text/event-stream`` of changes to all runs, to run ``run``, or to ``distribution``
    (its promotions, targets, inventory, audit entries and rollout runs)."""
    await state.client.ensure_schema()
    return StreamingResponse(
        changes(state, run, distribution=distribution),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


@router.get("/static/{name}", dependencies=[Depends(public("stylesheet and script, no data"))])
async def static(name: str) -> Response:
    if name not in STATIC:
        raise HTTPException(404, "no such file")
    return FileResponse(
        HERE / "static" / name,
        media_type=STATIC[name],
        headers={"Cache-Control": "public, max-age=300"},
    )
