"""The dashboard's integrations page: each host's breaker, the schedules, webhook deliveries."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

from spokehub import ops
from spokehub.integrations import http, schedule_store, webhooks
from spokehub.ops.tokens import Permission
from spokehub.server.auth import Principal, require
from spokehub.server.dashboard.view import LOGIN_URL, page
from spokehub.server.integrations_api import delivery_attempts
from spokehub.server.state import StateDep

__all__ = ["router"]

router = APIRouter(prefix="/ui", include_in_schema=False)
Reader = Annotated[Principal, Depends(require(Permission.READ, login_url=LOGIN_URL))]


@router.get("/integrations", response_class=HTMLResponse)
async def integrations_page(request: Request, state: StateDep, who: Reader) -> Response:
    """Breakers per host, schedules with their next fire times, recent webhook deliveries."""
    client = state.client
    await client.ensure_schema()
    schedules = [r.to_dict() for r in await schedule_store.list_all(client.store)]
    runs = await ops.list_runs(client, workflow=webhooks.DELIVERY_WORKFLOW, limit=30)
    deliveries: list[dict[str, Any]] = []
    for run in runs:
        message = run.input.get("message") or {}
        attempts = delivery_attempts(await client.events_async(run.id))
        deliveries.append(
            {
                "run_id": run.id,
                "event": message.get("event") if isinstance(message, dict) else None,
                "subscription": run.input.get("subscription"),
                "status": run.status.value,
                "attempts": len(attempts),
                "last": attempts[-1] if attempts else None,
            }
        )
    return page(
        request,
        "integrations.html",
        who,
        {"hosts": http.hosts(), "schedules": schedules, "deliveries": deliveries},
    )
