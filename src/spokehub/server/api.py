"""The REST API, ``/api/v1``: every handler is one call into ``spokehub.ops``.

Permissions per route (see ``ops.tokens.ROLE_PERMISSIONS`` for which role has which):
reads need ``read``; start, signal, cancel and fork need ``operate``; approve and reject need
``approve``; token management needs ``admin``.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, Response, status
from fastapi.responses import JSONResponse

from spokehub import ops
from spokehub.errors import WorkflowNotFound
from spokehub.observability import request_span
from spokehub.ops import fleet, tokens
from spokehub.ops import hooks as ops_hooks
from spokehub.ops.present import present_run
from spokehub.ops.tokens import Permission
from spokehub.runtime.definitions import REGISTRY
from spokehub.server.auth import Principal, require
from spokehub.server.errors import ERROR_RESPONSES
from spokehub.server.models import (
    ApproveRequest,
    Decision,
    DeliveryOut,
    ForkRequest,
    QueueOut,
    RunDetail,
    RunOut,
    SignalRequest,
    SignalSent,
    StartRequest,
    TokenCreate,
    TokenCreated,
    TokenOut,
    WorkerOut,
    WorkflowOut,
)
from spokehub.server.state import StateDep
from spokehub.store.base import RunRecord
from spokehub.types import RunStatus

__all__ = ["router"]

router = APIRouter(prefix="/api/v1", responses=ERROR_RESPONSES)

Reader = Annotated[Principal, Depends(require(Permission.READ))]
Operator = Annotated[Principal, Depends(require(Permission.OPERATE))]
Approver = Annotated[Principal, Depends(require(Permission.APPROVE))]
Admin = Annotated[Principal, Depends(require(Permission.ADMIN))]
# Ids of existing runs are looked up as given (child runs add ".N" to their parent's id);
# new ids are checked against the run-id rule in one place (spokehub.engine.validation).
RunIdPath = Annotated[str, Path(min_length=1, max_length=1000)]


# -- runs ----------------------------------------------------------------------------------------
@router.post(
    "/runs",
    status_code=status.HTTP_201_CREATED,
    response_model=RunOut,
    responses={200: {"model": RunOut, "description": "The run existed with this id and input"}},
    tags=["runs"],
)
async def start_run(body: StartRequest, request: Request, state: StateDep, who: Operator) -> Any:
    """Start a run; idempotent by ``run_id`` (same id and input: the same run, 200).

    A ``traceparent`` header makes the run part of the caller's trace.
    """
    wf = REGISTRY.workflows.get(body.workflow)
    if wf is None:
        known = ", ".join(sorted(REGISTRY.workflows)) or "none"
        raise WorkflowNotFound(
            f"no workflow named {body.workflow!r} in this server (registered: {known}); "
            "start the server with --app MODULE_OR_FILE"
        )
    with request_span("POST /api/v1/runs", request.headers):
        started = await ops.start_run(
            state.client, wf, body.input, run_id=body.run_id, actor=who.name
        )
    code = status.HTTP_201_CREATED if started.created else status.HTTP_200_OK
    run = _shown(state, who, started.run)
    return JSONResponse(RunOut(**run).model_dump(mode="json"), status_code=code)


@router.get("/runs", response_model=list[RunOut], tags=["runs"])
async def list_runs(
    state: StateDep,
    who: Reader,
    run_status: Annotated[RunStatus | None, Query(alias="status")] = None,
    workflow: Annotated[str | None, Query(min_length=1)] = None,
    created_after: Annotated[float | None, Query(description="Epoch seconds")] = None,
    created_before: Annotated[float | None, Query(description="Epoch seconds")] = None,
    search: Annotated[str | None, Query(min_length=1, description="Part of the run id")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[dict[str, Any]]:
    """Newest runs first, filtered."""
    runs = await ops.list_runs(
        state.client,
        status=run_status,
        workflow=workflow,
        limit=limit,
        created_after=created_after,
        created_before=created_before,
        search=search,
        reveal=state.reveals_to(who.token),
    )
    return [run.to_dict() for run in runs]


@router.get("/runs/{run_id}", response_model=RunDetail, tags=["runs"])
async def get_run(run_id: RunIdPath, state: StateDep, who: Reader) -> dict[str, Any]:
    """A run with its timeline (one row per call) and its raw ledger.

    Values under secret-looking keys are ``[redacted]`` unless the token's role may act on runs
    (``SPOKEHUB_SERVER_REVEAL``).
    """
    view = await ops.show_run(state.client, run_id, reveal=state.reveals_to(who.token))
    return view.to_dict()


@router.post(
    "/runs/{run_id}/signals",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=SignalSent,
    tags=["runs"],
)
async def send_signal(
    run_id: RunIdPath, body: SignalRequest, state: StateDep, who: Operator
) -> SignalSent:
    """Send a named signal; it is kept until the run waits for it."""
    await ops.send_signal(state.client, run_id, body.name, body.payload, actor=who.name)
    return SignalSent(run_id=run_id, name=body.name)


@router.post("/runs/{run_id}/approve", response_model=Decision, tags=["approvals"])
async def approve(
    run_id: RunIdPath, body: ApproveRequest, state: StateDep, who: Approver
) -> dict[str, Any]:
    """Vote to approve as the token's name and role: 403 for a non-assignee or the run's own
    starter (unless allowed), 409 for a second vote or a closed approval."""
    decided = await ops.approve(
        state.client,
        run_id,
        name=body.name,
        comment=body.comment,
        by=who.name,
        role=who.token.role.value,
    )
    return decided.to_dict()


@router.post("/runs/{run_id}/reject", response_model=Decision, tags=["approvals"])
async def reject(
    run_id: RunIdPath, body: ApproveRequest, state: StateDep, who: Approver
) -> dict[str, Any]:
    """Vote to reject; with the configured number of rejections the workflow sees
    ``ApprovalRejected``."""
    decided = await ops.reject(
        state.client,
        run_id,
        name=body.name,
        comment=body.comment,
        by=who.name,
        role=who.token.role.value,
    )
    return decided.to_dict()


@router.post("/runs/{run_id}/cancel", response_model=RunOut, tags=["runs"])
async def cancel(run_id: RunIdPath, state: StateDep, who: Operator) -> dict[str, Any]:
    """Ask the run to stop; compensations of its completed steps run first."""
    run = await ops.cancel(state.client, run_id, actor=who.name)
    return _shown(state, who, run)


@router.post(
    "/runs/{run_id}/fork",
    status_code=status.HTTP_201_CREATED,
    response_model=RunOut,
    tags=["runs"],
)
async def fork(
    run_id: RunIdPath, body: ForkRequest, state: StateDep, who: Operator
) -> dict[str, Any]:
    """A new run replaying this one's calls before ``from_step``, then live."""
    run = await ops.fork(
        state.client,
        run_id,
        from_step=body.from_step,
        new_run_id=body.new_run_id,
        actor=who.name,
    )
    return _shown(state, who, run)


def _shown(state: StateDep, who: Principal, run: RunRecord) -> dict[str, Any]:
    return present_run(run, reveal=state.reveals_to(who.token)).to_dict()


# -- fleet ---------------------------------------------------------------------------------------
@router.get("/queues", response_model=list[QueueOut], tags=["fleet"])
async def list_queues(state: StateDep, _: Reader) -> list[dict[str, Any]]:
    """Queues with unfinished runs, counted per status."""
    return [q.to_dict() for q in await fleet.list_queues(state.client)]


@router.get("/workers", response_model=list[WorkerOut], tags=["fleet"])
async def list_workers(
    state: StateDep,
    _: Reader,
    seen_within: Annotated[
        float | None, Query(gt=0, description="Only workers seen in the last N seconds")
    ] = None,
) -> list[dict[str, Any]]:
    """Worker processes as they last reported themselves."""
    workers = await fleet.list_workers(state.client, seen_within=seen_within)
    return [w.to_dict() for w in workers]


@router.get("/workflows", response_model=list[WorkflowOut], tags=["fleet"])
async def list_workflows(_: Reader) -> list[dict[str, Any]]:
    """Workflows this server process can start (imported with ``--app``)."""
    return [wf.to_dict() for wf in fleet.list_workflows()]


@router.get("/webhooks/deliveries", response_model=list[DeliveryOut], tags=["webhooks"])
async def list_deliveries(
    state: StateDep,
    _: Reader,
    hook: Annotated[str | None, Query(min_length=1)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[dict[str, Any]]:
    """Webhook deliveries, latest first, accepted and rejected (with the reason)."""
    found = await ops_hooks.list_deliveries(state.client, hook=hook, limit=limit)
    return [d.to_dict() for d in found]


# -- tokens --------------------------------------------------------------------------------------
@router.get("/tokens", response_model=list[TokenOut], tags=["tokens"])
async def list_tokens(state: StateDep, _: Admin) -> list[dict[str, Any]]:
    """Every API token (never its secret), revoked ones too."""
    return [t.to_dict() for t in await tokens.list_tokens(state.client)]


@router.post(
    "/tokens", status_code=status.HTTP_201_CREATED, response_model=TokenCreated, tags=["tokens"]
)
async def create_token(body: TokenCreate, state: StateDep, who: Admin) -> dict[str, Any]:
    """A new token; its secret is in this answer only."""
    created = await tokens.create_token(
        state.client, name=body.name, role=body.role, actor=who.name
    )
    return {**created.record.to_dict(), "token": created.secret}


@router.delete(
    "/tokens/{token_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    tags=["tokens"],
)
async def revoke_token(
    token_id: Annotated[str, Path(min_length=1, max_length=200)], state: StateDep, who: Admin
) -> Response:
    """Revoke a token at once (dashboard sessions opened with it end too)."""
    await tokens.revoke_token(state.client, token_id, actor=who.name)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
