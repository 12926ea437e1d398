"""Distribution over HTTP: ``/api/v1/distributions`` and the ``/ui/distributions`` pages.

Everything here reads the store only (promotions, targets, inventory, audit), so the server
needs no access to the hub folder. Plans and rollouts stay with the CLI, which has the hub.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import HTMLResponse

from spokehub.distribution import service
from spokehub.ops.tokens import Permission
from spokehub.server.auth import Principal, require
from spokehub.server.dashboard.view import LOGIN_URL, page
from spokehub.server.errors import ERROR_RESPONSES
from spokehub.server.state import StateDep

__all__ = ["api_router", "ui_router"]

api_router = APIRouter(
    prefix="/api/v1/distributions", responses=ERROR_RESPONSES, tags=["distribution"]
)
ui_router = APIRouter(prefix="/ui/distributions", include_in_schema=False)
Reader = Annotated[Principal, Depends(require(Permission.READ))]
UiReader = Annotated[Principal, Depends(require(Permission.READ, login_url=LOGIN_URL))]
# Bounded like run ids, so a request can be wrong (and the API fuzzer can try that).
Name = Annotated[str, Path(min_length=1, max_length=200)]
Release = Annotated[str | None, Query(min_length=1, max_length=200)]


@api_router.get("")
async def list_distributions(state: StateDep, _: Reader) -> list[str]:
    """Distributions with at least one promotion."""
    return await service.distributions(state.client)


@api_router.get("/{name}")
async def get_distribution(name: Name, state: StateDep, _: Reader) -> dict[str, Any]:
    """Per target: release, sync, health, resources owned, last drift check; the promotions."""
    return await service.overview(state.client, name)


@api_router.get("/{name}/audit")
async def get_audit(
    name: Name, state: StateDep, _: Reader, release: Release = None
) -> list[dict[str, Any]]:
    """The audit timeline (hash-chained), optionally of one release."""
    return await service.timeline(state.client, name, release)


@ui_router.get("", response_class=HTMLResponse)
async def distributions_page(
    request: Request, state: StateDep, principal: UiReader
) -> HTMLResponse:
    names = await service.distributions(state.client)
    overviews = [await service.overview(state.client, n) for n in names]
    return page(request, "distribution.html", principal, {"overviews": overviews, "selected": None})


@ui_router.get("/{name}", response_class=HTMLResponse)
async def distribution_page(
    name: Name,
    request: Request,
    state: StateDep,
    principal: UiReader,
    release: Release = None,
) -> HTMLResponse:
    found = await service.overview(state.client, name)
    chosen = release or (found["promotions"][-1]["release"] if found["promotions"] else None)
    trail = await service.timeline(state.client, name, chosen) if chosen else []
    drift = [
        e for e in await service.timeline(state.client, name) if e["kind"] in ("drift", "alert")
    ]
    live = any(p["status"] == "Progressing" for p in found["promotions"])
    context = {
        "overviews": [found],
        "selected": chosen,
        "trail": trail,
        "drift": drift[-20:],
        "live": live,
    }
    return page(request, "distribution.html", principal, context)
