"""``POST /hooks/{name}``: a signed delivery starts the hook's workflow (see ``ops.hooks``).

No API token is asked: the Standard Webhooks signature is the credential.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request
from pydantic import BaseModel

from spokehub.observability import request_span
from spokehub.ops import hooks as ops_hooks
from spokehub.server.auth import public
from spokehub.server.errors import ErrorBody
from spokehub.server.state import StateDep

__all__ = ["HookAccepted", "router"]

router = APIRouter(tags=["webhooks"])


class HookAccepted(BaseModel):
    hook: str
    delivery_id: str
    run_id: str
    status: str


@router.post(
    "/hooks/{name}",
    status_code=202,
    dependencies=[Depends(public("webhook: the signature is the credential"))],
    responses={
        status: {"model": ErrorBody, "description": description}
        for status, description in (
            (400, "Missing headers or a body that is not JSON"),
            (401, "Bad signature or stale timestamp"),
            (404, "No such hook"),
            (409, "Delivery id already received"),
        )
    },
)
async def deliver(
    name: Annotated[str, Path(min_length=1, max_length=200)], request: Request, state: StateDep
) -> HookAccepted:
    """Verify a Standard Webhooks delivery and start the hook's workflow with its body."""
    body = await request.body()
    with request_span("POST /hooks/{name}", request.headers):
        run = await ops_hooks.receive(state.client, state.hooks, name, request.headers, body)
    delivery_id = request.headers["webhook-id"]
    return HookAccepted(hook=name, delivery_id=delivery_id, run_id=run.id, status=run.status.value)
