"""Who is asking, and may they: bearer tokens, dashboard sessions, CSRF.

Every route declares exactly one of two dependencies, which the route x role test reads back:

- ``require(Permission.X)``: an API token (``Authorization: Bearer shk_...``) or a dashboard
  session cookie whose role grants X. Missing or invalid: 401. Wrong role: 403. A request
  authenticated by the cookie that changes something (POST, PUT, PATCH, DELETE) must also carry
  the CSRF token (header ``X-CSRF-Token`` or form field ``csrf_token``); bearer requests need
  none, since a browser never adds that header by itself.
- ``public("why")``: no credentials (health probes, webhooks whose signature is the auth).

A session cookie is ``{token id}.{expiry}.{signature}`` signed with the server secret: it never
holds the API token itself, and revoking the token ends the session at its next request.
The CSRF token is an HMAC of the session cookie, so it is bound to one session and one server.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass

from fastapi import Request, Response

from spokehub.ops.tokens import Permission, TokenNotFound, TokenRecord, authenticate, get_token
from spokehub.server.errors import ApiError
from spokehub.server.state import ServerState, get_state

__all__ = [
    "CSRF_FIELD",
    "CSRF_HEADER",
    "SESSION_COOKIE",
    "LoginRequired",
    "Principal",
    "Public",
    "Require",
    "clear_session_cookie",
    "csrf_token",
    "csrf_token_for",
    "current_principal",
    "public",
    "require",
    "session_value",
    "set_session_cookie",
    "token_from_secret",
]

SESSION_COOKIE = "spokehub_session"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
_UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_FORMS = ("application/x-www-form-urlencoded", "multipart/form-data")


@dataclass(frozen=True, slots=True)
class Principal:
    """The token behind a request, and whether it came as a bearer token or a session."""

    token: TokenRecord
    via: str  # "bearer" or "session"

    @property
    def name(self) -> str:
        return self.token.name


class LoginRequired(Exception):
    """A ``/ui`` page without a session: the app answers with a redirect to ``login_url``."""

    def __init__(self, login_url: str, next_path: str) -> None:
        super().__init__(next_path)
        self.login_url = login_url
        self.next_path = next_path


def _sign(secret: bytes, purpose: str, text: str) -> str:
    digest = hmac.new(secret, f"{purpose}:{text}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def session_value(state: ServerState, token: TokenRecord) -> str:
    """A fresh session cookie value for ``token``."""
    expires = int(state.client.clock.now() + state.config.session_seconds)
    payload = f"{token.id}.{expires}"
    return f"{payload}.{_sign(state.config.secret, 'session', payload)}"


async def _session_token(state: ServerState, cookie: str) -> TokenRecord | None:
    token_id, _, rest = cookie.partition(".")
    expires, _, signature = rest.partition(".")
    expected = _sign(state.config.secret, "session", f"{token_id}.{expires}")
    if not hmac.compare_digest(expected.encode(), signature.encode()):
        return None
    if not expires.isdigit() or int(expires) < state.client.clock.now():
        return None
    try:
        token = await get_token(state.client, token_id)
    except TokenNotFound:
        return None
    return token if token.active else None


async def token_from_secret(state: ServerState, secret: str) -> TokenRecord | None:
    """The active token with this secret (what a login form checks), or None."""
    return await authenticate(state.client, secret.strip())


def set_session_cookie(response: Response, request: Request, token: TokenRecord) -> None:
    """Log the browser in as ``token`` (after the login form checked its secret)."""
    state = get_state(request)
    response.set_cookie(
        SESSION_COOKIE,
        session_value(state, token),
        max_age=int(state.config.session_seconds),
        path="/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )


def clear_session_cookie(response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")


def csrf_token_for(request: Request) -> str:
    """The CSRF token forms of this session must send back ("" without a session)."""
    cookie = request.cookies.get(SESSION_COOKIE)
    if not cookie:
        return ""
    return csrf_token(get_state(request).config.secret, cookie)


def csrf_token(secret: bytes, session: str) -> str:
    """The CSRF token of the session cookie value ``session``."""
    return _sign(secret, "csrf", session)


async def current_principal(request: Request) -> Principal | None:
    """Who sent this request (bearer token first, then session), or None; no role check."""
    cached: Principal | None = getattr(request.state, "spokehub_principal", None)
    if cached is not None:
        return cached
    state = get_state(request)
    header = request.headers.get("authorization")
    principal: Principal | None = None
    if header is not None:
        scheme, _, secret = header.partition(" ")
        if scheme.lower() != "bearer" or not secret.strip():
            return None
        token = await authenticate(state.client, secret.strip())
        principal = None if token is None else Principal(token, "bearer")
    elif cookie := request.cookies.get(SESSION_COOKIE):
        token = await _session_token(state, cookie)
        principal = None if token is None else Principal(token, "session")
    request.state.spokehub_principal = principal
    return principal


async def _check_csrf(request: Request) -> None:
    expected = csrf_token_for(request)
    sent = request.headers.get(CSRF_HEADER, "")
    if not sent and request.headers.get("content-type", "").startswith(_FORMS):
        form = await request.form()  # Starlette keeps it, so the route reads it again for free
        value = form.get(CSRF_FIELD)
        sent = value if isinstance(value, str) else ""
    if not expected or not hmac.compare_digest(expected.encode(), sent.encode()):
        raise ApiError(
            403,
            "csrf",
            f"missing or wrong CSRF token; send the form's {CSRF_FIELD} field or the "
            f"{CSRF_HEADER} header (API clients: use Authorization: Bearer instead of the cookie)",
        )


class Require:
    """Dependency: the request's principal, whose role grants ``permission``."""

    def __init__(self, permission: Permission, *, login_url: str | None = None) -> None:
        self.permission = permission
        self.login_url = login_url

    def __repr__(self) -> str:
        return f"require({self.permission.value!r})"

    async def __call__(self, request: Request) -> Principal:
        principal = await current_principal(request)
        if principal is None:
            if self.login_url is not None and "authorization" not in request.headers:
                raise LoginRequired(self.login_url, request.url.path)
            raise ApiError(
                401,
                "unauthorized",
                "a valid API token is required; send Authorization: Bearer <token> (create one "
                "with `spokehub tokens create --role viewer --name NAME`)",
                headers={"WWW-Authenticate": "Bearer"},
            )
        if not principal.token.allows(self.permission):
            raise ApiError(
                403,
                "forbidden",
                f"role {principal.token.role.value!r} may not do this (needs permission "
                f"{self.permission.value!r}); ask an admin for a token with a suitable role",
            )
        if principal.via == "session" and request.method in _UNSAFE:
            await _check_csrf(request)
        return principal


class Public:
    """Dependency marker: the route needs no credentials, for the stated reason."""

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def __repr__(self) -> str:
        return f"public({self.reason!r})"

    async def __call__(self) -> None:
        return None


def require(permission: Permission, *, login_url: str | None = None) -> Require:
    """``Depends(require(Permission.READ))``; with ``login_url`` a browser without a session is
    redirected there (``?next=`` the page) instead of getting a 401."""
    return Require(permission, login_url=login_url)


def public(reason: str) -> Public:
    """``Depends(public("health probe"))``: this route needs no credentials."""
    return Public(reason)
