"""Distribution over HTTP: ``/api/v1/distributions`` and the ``/ui/distributions`` pages.

Everything here reads the store (promotions, targets, inventory, audit, the rollout run), so
the server needs no hub folder; only the patterns x targets matrix renders the release from
the hub folder the rollout ran with, when it can (see ``dashboard.distribution_view``).
Plans and rollouts stay with the CLI, which has the hub.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from fastapi.responses import HTMLResponse

from spokehub.distribution import service
from spokehub.ops.tokens import Permission
from spokehub.runtime.client import Client
from spokehub.server.auth import Principal, require
from spokehub.server.dashboard import distribution_view as views
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
TargetName = Annotated[str | None, Query(min_length=1, max_length=200)]


async def _release(client: Client, name: str, release: str | None) -> str:
    await client.ensure_schema()
    chosen = await views.pick_release(client, name, release)
    if chosen is None:
        raise HTTPException(404, f"{name} has no promoted release")
    return chosen


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


@api_router.get("/{name}/matrix")
async def get_matrix(
    name: Name, state: StateDep, _: Reader, release: Release = None
) -> dict[str, Any]:
    """Patterns x targets of a release (default: the newest promoted): each cell's state."""
    chosen = await _release(state.client, name, release)
    return await views.matrix_view(state.client, name, chosen)


@api_router.get("/{name}/waves")
async def get_waves(
    name: Name, state: StateDep, _: Reader, release: Release = None
) -> dict[str, Any]:
    """The rollout of a release wave by wave: targets, analysis verdicts, the gate."""
    chosen = await _release(state.client, name, release)
    return await views.waves_view(state.client, name, chosen)


@api_router.get("/{name}/drift")
async def get_drift(
    name: Name, state: StateDep, _: Reader, target: TargetName = None
) -> list[dict[str, Any]]:
    """The newest drift findings, newest first: per target and resource, state and diff."""
    await state.client.ensure_schema()
    return await views.drift_view(state.client, name, target=target)


@ui_router.get("", response_class=HTMLResponse)
async def distributions_page(
    request: Request, state: StateDep, principal: UiReader
) -> HTMLResponse:
    names = await service.distributions(state.client)
    overviews = [await service.overview(state.client, n) for n in names]
    return page(request, "distribution.html", principal, {"overviews": overviews, "selected": None})


async def _release_context(state: StateDep, name: str, release: str | None) -> dict[str, Any]:
    client = state.client
    found = await service.overview(client, name)
    chosen = await views.pick_release(client, name, release)
    context: dict[str, Any] = {"overviews": [found], "selected": chosen, "name": name}
    if chosen is None:
        return {**context, "trail": [], "drift": [], "matrix": None, "rollout": None}
    return {
        **context,
        "trail": await service.timeline(client, name, chosen),
        "drift": await views.drift_view(client, name),
        "matrix": await views.matrix_view(client, name, chosen),
        "rollout": await views.waves_view(client, name, chosen),
    }


@ui_router.get("/{name}", response_class=HTMLResponse)
async def distribution_page(
    name: Name,
    request: Request,
    state: StateDep,
    principal: UiReader,
    release: Release = None,
) -> HTMLResponse:
    """One distribution: the matrix, the rollout wave by wave, drift, the audit timeline;
    kept current by the event stream (``/ui/events?distribution=``)."""
    context = await _release_context(state, name, release)
    return page(request, "distribution.html", principal, context)


@ui_router.get("/{name}/fragment", response_class=HTMLResponse)
async def distribution_fragment(
    name: Name,
    request: Request,
    state: StateDep,
    principal: UiReader,
    release: Release = None,
) -> HTMLResponse:
    """The live part of the distribution page, re-fetched when the event stream says so."""
    context = await _release_context(state, name, release)
    return page(request, "_distribution_live.html", principal, context)
