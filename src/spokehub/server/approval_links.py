"""Approvals over HTTP beyond approve/reject: the inbox, and signed approval links.

``GET /api/v1/approvals`` lists what waits for the caller (by token name and role; ``all``
for every one).

``POST /api/v1/runs/{run_id}/approval-links`` (admin) issues a link for one person;
``GET /ui/approval-links/{token}`` shows the confirm page; ``POST`` to the same path (a form)
or ``POST /api/v1/approval-links/{token}`` (JSON) decides. The link is the credential: a bad
signature answers 403 and changes nothing; a used or expired link answers 410.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, Field

from spokehub.errors import SpokehubError
from spokehub.governance.links import DEFAULT_TTL
from spokehub.ops.approval_links import create_link, decide_with_link, open_link
from spokehub.ops.inbox import pending_approvals
from spokehub.ops.tokens import Permission
from spokehub.server.auth import Principal, public, require
from spokehub.server.dashboard.view import page
from spokehub.server.errors import ERROR_RESPONSES, status_for
from spokehub.server.models import Decision
from spokehub.server.state import StateDep

__all__ = ["router"]

router = APIRouter()
Admin = Annotated[Principal, Depends(require(Permission.ADMIN))]
Reader = Annotated[Principal, Depends(require(Permission.READ))]
_LINK = Depends(public("a signed approval link is the credential"))


class LinkRequest(BaseModel):
    by: str = Field(min_length=1, description="The person (user name) the link is for.")
    role: str | None = Field(default=None, description="Their role, for role:NAME assignees.")
    name: str | None = Field(default=None, min_length=1, description="Which approval.")
    ttl_seconds: float = Field(default=DEFAULT_TTL, gt=0, description="Lifetime (24 h).")


class LinkOut(BaseModel):
    token: str
    path: str
    run_id: str
    name: str
    by: str
    expires_at: float


class LinkDecision(BaseModel):
    approved: bool
    comment: str | None = Field(default=None, max_length=2000)


class PendingOut(BaseModel):
    run_id: str
    workflow: str
    name: str
    requested_at: float | None
    deadline: float | None
    assignees: list[str]
    subject: Any
    quorum: int
    escalated: bool


@router.get(
    "/api/v1/approvals",
    response_model=list[PendingOut],
    responses=ERROR_RESPONSES,
    tags=["approvals"],
)
async def list_approvals(
    state: StateDep,
    who: Reader,
    everyone: Annotated[bool, Query(alias="all", description="Every pending approval")] = False,
) -> list[dict[str, Any]]:
    """Approvals waiting for the caller (assigned by name, by role, or to anyone), oldest first."""
    if everyone:
        items = await pending_approvals(state.client)
    else:
        items = await pending_approvals(state.client, assignee=who.name, role=who.token.role.value)
    return [item.to_dict() for item in items]


@router.post(
    "/api/v1/runs/{run_id}/approval-links",
    status_code=201,
    response_model=LinkOut,
    responses=ERROR_RESPONSES,
    tags=["approvals"],
)
async def issue_link(run_id: str, body: LinkRequest, state: StateDep, _: Admin) -> dict[str, Any]:
    """A single-use link for ``by`` to decide the run's approval (expires in 24 h)."""
    issued = await create_link(
        state.client,
        state.config.secret,
        run_id,
        by=body.by,
        name=body.name,
        role=body.role,
        ttl=body.ttl_seconds,
    )
    return issued.to_dict()


@router.post(
    "/api/v1/approval-links/{token}",
    response_model=Decision,
    responses={**ERROR_RESPONSES, 410: {"description": "The link was used or expired"}},
    tags=["approvals"],
    dependencies=[_LINK],
)
async def decide_by_link(token: str, body: LinkDecision, state: StateDep) -> dict[str, Any]:
    """Decide as the link's person; 403 for a bad signature, 410 when used or expired."""
    decided = await decide_with_link(
        state.client, state.config.secret, token, approved=body.approved, comment=body.comment
    )
    return decided.to_dict()


def _notice(request: Request, exc: SpokehubError) -> HTMLResponse:
    status = status_for(exc)
    title = {403: "Link not valid", 410: "Link no longer valid"}.get(status, "Not done")
    context = {"title": title, "message": str(exc), "back": "/ui/inbox"}
    return page(request, "notice.html", None, context, status_code=status)


@router.get(
    "/ui/approval-links/{token}",
    response_class=HTMLResponse,
    include_in_schema=False,
    dependencies=[_LINK],
)
async def confirm_page(request: Request, token: str, state: StateDep) -> Response:
    """What the link decides, with Approve and Reject buttons; nothing changes until clicked."""
    try:
        view = await open_link(state.client, state.config.secret, token)
    except SpokehubError as exc:
        return _notice(request, exc)
    return page(request, "approval_link.html", None, {"view": view, "token": token})


@router.post(
    "/ui/approval-links/{token}",
    response_class=HTMLResponse,
    include_in_schema=False,
    dependencies=[_LINK],
)
async def confirm(
    request: Request,
    token: str,
    state: StateDep,
    decision: Annotated[str, Form()] = "",
    comment: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    """The confirm page's form: approve or reject, once."""
    if decision not in ("approve", "reject"):
        refused = {"title": "Not done", "message": "choose Approve or Reject", "back": ""}
        return page(request, "notice.html", None, refused, status_code=400)
    try:
        decided = await decide_with_link(
            state.client,
            state.config.secret,
            token,
            approved=decision == "approve",
            comment=comment or None,
        )
    except SpokehubError as exc:
        return _notice(request, exc)
    verb = "approved" if decided.approved else "rejected"
    where = (
        f"{decided.approvals} of {decided.quorum} approvals so far"
        if decided.outcome == "pending"
        else f"the approval is {decided.outcome}"
    )
    context: dict[str, Any] = {
        "title": f"You {verb} {decided.name!r}",
        "message": f"Run {decided.run_id}: {where}.",
        "back": "/ui/inbox",
        "ok": True,
    }
    return page(request, "notice.html", None, context)
