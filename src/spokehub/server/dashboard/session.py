"""Logging in to the dashboard with an API token, and out.

The pasted token is checked once; the browser then holds a signed session cookie that names
the token but never contains it (helper ``auth.set_session_cookie``).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from spokehub.ops.tokens import Permission
from spokehub.server.auth import (
    Principal,
    clear_session_cookie,
    public,
    require,
    set_session_cookie,
    token_from_secret,
)
from spokehub.server.dashboard.view import LOGIN_URL, page
from spokehub.server.state import StateDep

__all__ = ["router"]

router = APIRouter(include_in_schema=False)


def _safe_next(target: str) -> str:
    """Only paths of this dashboard: an open redirect would help phishing."""
    if target.startswith("/ui/") and not target.startswith("/ui//") and "\\" not in target:
        return target
    return "/ui/runs"


@router.get("/", dependencies=[Depends(public("redirects to the dashboard"))])
async def root() -> RedirectResponse:
    return RedirectResponse("/ui/runs", status_code=303)


@router.get("/ui", dependencies=[Depends(public("redirects to the runs page"))])
async def ui_root() -> RedirectResponse:
    return RedirectResponse("/ui/runs", status_code=303)


@router.get(
    LOGIN_URL,
    response_class=HTMLResponse,
    dependencies=[Depends(public("the login form itself"))],
)
async def login_form(request: Request, next: str = "/ui/runs") -> Response:
    return page(request, "login.html", None, {"next": _safe_next(next), "error": None})


@router.post(LOGIN_URL, dependencies=[Depends(public("checks the pasted token"))])
async def login(
    request: Request,
    state: StateDep,
    token: Annotated[str, Form()],
    next: Annotated[str, Form()] = "/ui/runs",
) -> Response:
    record = await token_from_secret(state, token)
    if record is None:
        context = {"next": _safe_next(next), "error": "That token is unknown or revoked."}
        return page(request, "login.html", None, context, status_code=401)
    response = RedirectResponse(_safe_next(next), status_code=303)
    set_session_cookie(response, request, record)
    return response


@router.post("/ui/logout")
async def logout(
    who: Annotated[Principal, Depends(require(Permission.READ, login_url=LOGIN_URL))],
) -> Response:
    response = RedirectResponse(LOGIN_URL, status_code=303)
    clear_session_cookie(response)
    return response
