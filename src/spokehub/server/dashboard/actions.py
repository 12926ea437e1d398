"""The dashboard's forms that change runs: cancel, signal, approve and reject.

Plain POST forms carrying the session's CSRF field (``require`` checks it for cookie
sessions); each answers with a redirect back to the page it came from (post/redirect/get),
or with a page that says what went wrong and what to do.
"""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response

from spokehub import ops
from spokehub.errors import SpokehubError
from spokehub.ops.tokens import Permission
from spokehub.server.auth import Principal, require
from spokehub.server.dashboard.view import LOGIN_URL, page
from spokehub.server.errors import status_for
from spokehub.server.state import StateDep

__all__ = ["router"]

router = APIRouter(prefix="/ui", include_in_schema=False)
Operator = Annotated[Principal, Depends(require(Permission.OPERATE, login_url=LOGIN_URL))]
Approver = Annotated[Principal, Depends(require(Permission.APPROVE, login_url=LOGIN_URL))]
Text = Annotated[str, Form()]


def _back(run_id: str, then: str) -> RedirectResponse:
    target = "/ui/inbox" if then == "inbox" else f"/ui/runs/{run_id}"
    return RedirectResponse(target, status_code=303)


def _refused(request: Request, who: Principal, run_id: str, exc: Exception) -> Response:
    status = 404 if getattr(exc, "code", "") == "run_not_found" else 409
    if isinstance(exc, SpokehubError) and status_for(exc) in (403, 410):
        status = status_for(exc)  # not yours to decide, or a link that is gone
    if isinstance(exc, ValueError):
        status = 400
    return page(
        request,
        "notice.html",
        who,
        {"title": "Not done", "message": str(exc), "back": f"/ui/runs/{run_id}"},
        status_code=status,
    )


@router.post("/runs/{run_id}/cancel")
async def cancel_run(request: Request, state: StateDep, who: Operator, run_id: str) -> Response:
    try:
        await ops.cancel(state.client, run_id, actor=who.name)
    except SpokehubError as exc:
        return _refused(request, who, run_id, exc)
    return _back(run_id, "run")


@router.post("/runs/{run_id}/signal")
async def signal_run(
    request: Request, state: StateDep, who: Operator, run_id: str, name: Text, payload: Text = ""
) -> Response:
    try:
        value = json.loads(payload) if payload.strip() else None
    except json.JSONDecodeError as exc:
        return _refused(request, who, run_id, ValueError(f"the payload is not JSON: {exc}"))
    try:
        await ops.send_signal(state.client, run_id, name, value, actor=who.name)
    except (SpokehubError, ValueError) as exc:
        return _refused(request, who, run_id, exc)
    return _back(run_id, "run")


@router.post("/runs/{run_id}/decide")
async def decide_run(
    request: Request,
    state: StateDep,
    who: Approver,
    run_id: str,
    name: Text,
    decision: Text,
    comment: Text = "",
    then: Text = "run",
) -> Response:
    """Approve or reject approval ``name``; ``by`` is the logged-in token's name."""
    if decision not in ("approve", "reject"):
        return _refused(request, who, run_id, ValueError("decision must be approve or reject"))
    decide = ops.approve if decision == "approve" else ops.reject
    try:
        await decide(
            state.client,
            run_id,
            name=name,
            comment=comment or None,
            by=who.name,
            role=who.token.role.value,
        )
    except SpokehubError as exc:
        return _refused(request, who, run_id, exc)
    return _back(run_id, then)
