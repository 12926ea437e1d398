"""Logging in to the dashboard with an API token, and out.

The pasted token is checked once; the browser then holds a signed session cookie that names
the token but never contains it (helper ``auth.set_session_cookie``).
"""

from __future__ import annotations

import hmac
import secrets
from math import ceil
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from spokehub.ops.tokens import Permission
from spokehub.server.auth import (
    CSRF_FIELD,
    Principal,
    clear_session_cookie,
    csrf_token,
    public,
    require,
    set_session_cookie,
    token_from_secret,
)
from spokehub.server.dashboard.view import LOGIN_URL, page
from spokehub.server.state import StateDep

__all__ = ["router"]

router = APIRouter(include_in_schema=False)
LOGIN_COOKIE = "spokehub_login"


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
async def login_form(request: Request, state: StateDep, next: str = "/ui/runs") -> Response:
    return _login_page(request, state, _safe_next(next), None, 200)


def _login_page(
    request: Request, state: StateDep, next_path: str, error: str | None, status: int
) -> Response:
    """The login form with a fresh login-CSRF pair: a random nonce in an HttpOnly cookie and
    its HMAC in the form. A page on another site can post a form here but cannot read the
    nonce, so it cannot log a victim's browser in to the attacker's token."""
    nonce = secrets.token_urlsafe(16)
    context = {
        "next": next_path,
        "error": error,
        "login_csrf": csrf_token(state.config.secret, f"login:{nonce}"),
    }
    response = page(request, "login.html", None, context, status_code=status)
    response.set_cookie(
        LOGIN_COOKIE,
        nonce,
        max_age=3600,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path=LOGIN_URL,
    )
    return response


def _login_csrf_ok(request: Request, state: StateDep, sent: str) -> bool:
    nonce = request.cookies.get(LOGIN_COOKIE, "")
    expected = csrf_token(state.config.secret, f"login:{nonce}")
    return bool(nonce) and hmac.compare_digest(expected.encode(), sent.encode())


@router.post(LOGIN_URL, dependencies=[Depends(public("checks the pasted token"))])
async def login(
    request: Request,
    state: StateDep,
    token: Annotated[str, Form()],
    next: Annotated[str, Form()] = "/ui/runs",
    csrf: Annotated[str, Form(alias=CSRF_FIELD)] = "",
) -> Response:
    next_path = _safe_next(next)
    address = request.client.host if request.client else "unknown"
    limiter = state.login_limiter
    wait = limiter.retry_after(address)
    if wait is not None:
        error = f"Too many failed logins from your address; try again in {ceil(wait)} s."
        response = _login_page(request, state, next_path, error, 429)
        response.headers["Retry-After"] = str(ceil(wait))
        return response
    if not _login_csrf_ok(request, state, csrf):
        error = "The login form expired or came from another site; log in again here."
        return _login_page(request, state, next_path, error, 403)
    record = await token_from_secret(state, token)
    if record is None:
        limiter.failed(address)
        return _login_page(request, state, next_path, "That token is unknown or revoked.", 401)
    response = RedirectResponse(next_path, status_code=303)
    response.delete_cookie(LOGIN_COOKIE, path=LOGIN_URL)
    set_session_cookie(response, request, record)
    return response


@router.post("/ui/logout")
async def logout(
    who: Annotated[Principal, Depends(require(Permission.READ, login_url=LOGIN_URL))],
) -> Response:
    response = RedirectResponse(LOGIN_URL, status_code=303)
    clear_session_cookie(response)
    return response
