"""The dashboard's read-only pages: runs, one run, the approvals inbox, queues, SLOs.

Each page is plain HTML that reads well without JavaScript; ``live.js`` swaps the
``*/fragment`` versions in when the event stream says something changed.
"""

from __future__ import annotations

import dataclasses
import os
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, Response

from spokehub import ops
from spokehub.errors import RunNotFound
from spokehub.ops.durations import parse_duration
from spokehub.ops.inbox import pending_approvals
from spokehub.ops.present import present
from spokehub.ops.slo import SloTarget, load_targets, slo_report
from spokehub.ops.tokens import Permission
from spokehub.server.auth import Principal, require
from spokehub.server.dashboard.view import LOGIN_URL, page
from spokehub.server.gantt import gantt_svg
from spokehub.server.state import StateDep
from spokehub.store.base import Tx
from spokehub.types import RunStatus

__all__ = ["router"]

router = APIRouter(prefix="/ui", include_in_schema=False)
Reader = Annotated[Principal, Depends(require(Permission.READ, login_url=LOGIN_URL))]
SLO_FILE_ENV = "SPOKEHUB_SLO_FILE"
GANTT_WIDTH = 1040


def _epoch(text: str | None, name: str) -> float | None:
    """A ``datetime-local`` value (read as UTC) as epoch seconds."""
    if not text:
        return None
    try:
        return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()
    except ValueError:
        raise ValueError(f"{name} must be a date and time like 2026-01-31T14:00") from None


def _workflow_names(tx: Tx) -> list[str]:
    rows = tx.execute("SELECT DISTINCT workflow FROM runs ORDER BY workflow LIMIT 500")
    return [str(r[0]) for r in rows.fetchall()]


async def _runs_context(
    state: StateDep,
    reveal: bool,
    status: str | None,
    workflow: str | None,
    q: str | None,
    start: str | None,
    end: str | None,
) -> dict[str, Any]:
    filters = {
        "status": status or "",
        "workflow": workflow or "",
        "q": q or "",
        "from": start or "",
        "to": end or "",
    }
    error = None
    runs = []
    try:
        runs = await ops.list_runs(
            state.client,
            status=RunStatus(status) if status else None,
            workflow=workflow or None,
            search=q or None,
            created_after=_epoch(start, "from"),
            created_before=_epoch(end, "to"),
            limit=200,
            reveal=reveal,
        )
    except ValueError as exc:
        error = str(exc)
    now = state.client.clock.now()
    return {
        "runs": runs,
        "durations": {r.id: ops.run_duration(r, now) for r in runs},
        "filters": filters,
        "statuses": [s.value for s in RunStatus],
        "workflows": await state.client.store.transact(_workflow_names, write=False),
        "error": error,
    }


RunFilters = Annotated[str | None, Query()]


@router.get("/runs", response_class=HTMLResponse)
async def runs_page(
    request: Request,
    state: StateDep,
    who: Reader,
    status: RunFilters = None,
    workflow: RunFilters = None,
    q: RunFilters = None,
    start: Annotated[str | None, Query(alias="from")] = None,
    end: Annotated[str | None, Query(alias="to")] = None,
) -> Response:
    """Newest runs first, filtered by a plain GET form; refreshed live by the event stream."""
    context = await _runs_context(
        state, state.reveals_to(who.token), status, workflow, q, start, end
    )
    return page(request, "runs.html", who, context, status_code=400 if context["error"] else 200)


@router.get("/runs/fragment", response_class=HTMLResponse)
async def runs_fragment(
    request: Request,
    state: StateDep,
    who: Reader,
    status: RunFilters = None,
    workflow: RunFilters = None,
    q: RunFilters = None,
    start: Annotated[str | None, Query(alias="from")] = None,
    end: Annotated[str | None, Query(alias="to")] = None,
) -> Response:
    """The runs table alone, for the live refresh."""
    context = await _runs_context(
        state, state.reveals_to(who.token), status, workflow, q, start, end
    )
    return page(request, "_runs_table.html", who, context)


async def _run_context(state: StateDep, run_id: str, reveal: bool) -> dict[str, Any]:
    view = await ops.show_run(state.client, run_id, reveal=reveal)
    svg = gantt_svg(view.timeline, view.events, now=view.now, width=GANTT_WIDTH)
    return {
        "view": view,
        "run": view.run,
        "duration": ops.run_duration(view.run, view.now),
        "gantt": svg,
        "waits": view.waits,
        "wait_key": ",".join(f"{w.kind.value}:{w.name}" for w in view.waits),
    }


@router.get("/runs/{run_id}", response_class=HTMLResponse)
async def run_page(request: Request, state: StateDep, who: Reader, run_id: str) -> Response:
    """One run: status, Gantt timeline, calls, input and output, ledger, and what to do."""
    try:
        context = await _run_context(state, run_id, state.reveals_to(who.token))
    except RunNotFound as exc:
        return page(
            request,
            "notice.html",
            who,
            {"title": "Run not found", "message": str(exc)},
            status_code=404,
        )
    return page(request, "run.html", who, context)


@router.get("/runs/{run_id}/fragment", response_class=HTMLResponse)
async def run_fragment(request: Request, state: StateDep, who: Reader, run_id: str) -> Response:
    """The live part of the run page (status, facts, timeline, calls, ledger)."""
    try:
        context = await _run_context(state, run_id, state.reveals_to(who.token))
    except RunNotFound as exc:
        return page(
            request,
            "notice.html",
            who,
            {"title": "Run not found", "message": str(exc)},
            status_code=404,
        )
    return page(request, "_run_live.html", who, context)


async def _inbox(state: StateDep, who: Principal, everyone: bool) -> dict[str, Any]:
    if everyone:
        items = await pending_approvals(state.client)
    else:
        items = await pending_approvals(state.client, assignee=who.name, role=who.token.role.value)
    reveal = state.reveals_to(who.token)
    items = [dataclasses.replace(i, subject=present(i.subject, reveal=reveal)) for i in items]
    return {"items": items, "now": state.client.clock.now(), "everyone": everyone}


@router.get("/inbox", response_class=HTMLResponse)
async def inbox_page(
    request: Request,
    state: StateDep,
    who: Reader,
    everyone: Annotated[bool, Query(alias="all")] = False,
) -> Response:
    """Approvals waiting for me (by name or role), or all of them with ``?all=1``; live."""
    return page(request, "inbox.html", who, await _inbox(state, who, everyone))


@router.get("/inbox/fragment", response_class=HTMLResponse)
async def inbox_fragment(
    request: Request,
    state: StateDep,
    who: Reader,
    everyone: Annotated[bool, Query(alias="all")] = False,
) -> Response:
    """The inbox table alone, re-fetched by the page when the event stream says so."""
    return page(request, "_inbox_table.html", who, await _inbox(state, who, everyone))


@router.get("/queues", response_class=HTMLResponse)
async def queues_page(request: Request, state: StateDep, who: Reader) -> Response:
    """Queue depths by status, and the workers with their last heartbeat."""
    store = state.client.store
    now = state.client.clock.now()
    stats = await store.queue_stats()
    workers = await store.list_workers()
    live_after = now - 3 * state.client.settings.lease_seconds
    return page(
        request,
        "queues.html",
        who,
        {
            "queues": stats,
            "workers": workers,
            "now": now,
            "live_after": live_after,
            "statuses": ["pending", "running", "waiting"],
        },
    )


def _targets() -> tuple[dict[str, SloTarget], str | None, str | None]:
    path = os.environ.get(SLO_FILE_ENV)
    if not path:
        return {}, None, None
    try:
        return load_targets(path), path, None
    except (OSError, ValueError) as exc:
        return {}, path, str(exc)


@router.get("/slo", response_class=HTMLResponse)
async def slo_page(request: Request, state: StateDep, who: Reader, window: str = "24h") -> Response:
    """Latency percentiles, error and retry rates per workflow, red/amber/green by target."""
    targets, path, file_error = _targets()
    context: dict[str, Any] = {
        "window": window,
        "slo_file": path,
        "error": file_error,
        "env_name": SLO_FILE_ENV,
    }
    try:
        seconds = parse_duration(window)
    except ValueError as exc:
        return page(
            request, "slo.html", who, {**context, "report": [], "error": str(exc)}, status_code=400
        )
    context["report"] = await slo_report(state.client, targets, window=seconds)
    return page(request, "slo.html", who, context)
