"""Who may call what: the route x role matrix read from the router, sessions, CSRF, Host.

The matrix is built from ``app.routes``: a route without a ``require(...)`` or ``public(...)``
dependency fails the test, so no route can be added without deciding who may call it.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, iter_route_contexts

from spokehub import Client, Settings
from spokehub.ops import tokens
from spokehub.ops.tokens import ROLE_PERMISSIONS, Role
from spokehub.server.auth import (
    CSRF_HEADER,
    SESSION_COOKIE,
    Public,
    Require,
    csrf_token,
    session_value,
)
from tests.server.conftest import ROLES, LiveServer


def _markers(dependant: Dependant) -> Iterator[Any]:
    for sub in dependant.dependencies:
        if isinstance(sub.call, (Require, Public)):
            yield sub.call
        yield from _markers(sub)


# Routes that are not APIRoutes (no dependencies to read) and need no credentials.
_PLAIN_PUBLIC = ("/api/v1/openapi.json", "/api/v1/docs", "/ui/static")


def _routes(live: LiveServer) -> list[tuple[str, str, Require | Public]]:
    """Every (method, path, declared access) of the app; fails on a route that declares none."""
    found = []
    for context in iter_route_contexts(live.app.routes):
        path = context.path or ""
        if not isinstance(context.original_route, APIRoute):
            assert path.startswith(_PLAIN_PUBLIC), (
                f"{path} is not an APIRoute: its access is unknown"
            )
            continue
        markers = list(_markers(context.dependant))
        assert len(markers) == 1, (
            f"{sorted(context.methods or ())} {path} must declare exactly one of "
            f"Depends(require(Permission.X)) or Depends(public('why')), found {markers}"
        )
        for method in sorted(context.methods or ()):
            found.append((method, path, markers[0]))
    return found


def _concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "matrix-x", path)


def _status(http: httpx.Client, method: str, path: str) -> int:
    """The status only: streamed, so that an event stream (SSE) does not hold the test."""
    body = {"json": {}} if method in ("POST", "PUT", "PATCH") else {}
    with http.stream(method, _concrete(path), **body) as response:  # type: ignore[arg-type]
        return response.status_code


def test_every_route_declares_access_and_the_matrix_holds(live: LiveServer) -> None:
    routes = _routes(live)
    assert len(routes) >= 15  # the API, hooks, probes (and the dashboard once mounted)
    refused = {401, 303}  # 303: a /ui page redirects to its login page
    for method, path, access in routes:
        where = f"{method} {path}"
        with live.http() as anon:
            status = _status(anon, method, path)
            if isinstance(access, Public):
                # A signed link is its own credential: a made-up one is refused with 403.
                signed = "approval-links/{token}" in path
                assert status not in ((401,) if signed else (401, 403)), where
                continue
            assert status in refused, f"{where} without a token answered {status}"
        for role in ROLES:
            with live.http(role) as http:
                status = _status(http, method, path)
            if access.permission in ROLE_PERMISSIONS[Role(role)]:
                assert status not in (401, 403), f"{where} as {role}: {status}"
            else:
                assert status == 403, f"{where} as {role} should be forbidden, got {status}"


def test_a_bad_or_malformed_token_is_401(live: LiveServer) -> None:
    for header in ("Bearer shk_not-a-real-token", "Basic dXNlcjpwYXNz", "Bearer", "shk_x"):
        with live.http(headers={"Authorization": header}) as http:
            answer = http.get("/api/v1/runs")
            assert answer.status_code == 401, header
            assert answer.json()["error"]["code"] == "unauthorized"
            assert answer.headers["www-authenticate"] == "Bearer"


def test_host_header_is_checked(live: LiveServer) -> None:
    with live.http("viewer") as http:
        evil = http.get("/api/v1/runs", headers={"Host": "evil.example"})
        assert evil.status_code == 400
        assert evil.json()["error"]["code"] == "host_not_allowed"
        assert http.get("/healthz", headers={"Host": "evil.example:80"}).status_code == 400
        port = live.url.rsplit(":", 1)[1]
        assert http.get("/healthz", headers={"Host": f"localhost:{port}"}).status_code == 200


async def _token(db_url: str, role: str) -> tokens.CreatedToken:
    client = Client(settings=Settings(database_url=db_url))
    try:
        return await tokens.create_token(client, name=f"session-{role}", role=role)
    finally:
        await client.close_async()


@pytest.fixture
def session(live: LiveServer) -> tuple[str, tokens.CreatedToken]:
    created = asyncio.run(_token(live.db_url, "operator"))
    return session_value(live.app.state.spokehub, created.record), created


def test_session_cookie_needs_csrf_for_changes(
    live: LiveServer, session: tuple[str, tokens.CreatedToken]
) -> None:
    cookie, _ = session
    with live.http(cookies={SESSION_COOKIE: cookie}) as http:
        assert http.get("/api/v1/runs").status_code == 200
        no_csrf = http.post("/api/v1/runs/ghost/cancel")
        assert no_csrf.status_code == 403
        assert no_csrf.json()["error"]["code"] == "csrf"
        wrong = http.post("/api/v1/runs/ghost/cancel", headers={CSRF_HEADER: "forged"})
        assert wrong.json()["error"]["code"] == "csrf"
        csrf = csrf_token(live.app.state.spokehub.config.secret, cookie)
        header = http.post("/api/v1/runs/ghost/cancel", headers={CSRF_HEADER: csrf})
        assert header.status_code == 404  # past auth and CSRF: the run does not exist
        form = http.post("/api/v1/runs/ghost/cancel", data={"csrf_token": csrf})
        assert form.status_code == 404


def test_tampered_and_revoked_sessions_are_401(
    live: LiveServer, session: tuple[str, tokens.CreatedToken]
) -> None:
    cookie, created = session
    token_id, expires, signature = cookie.split(".")
    forged = f"{token_id}.{int(expires) + 10**6}.{signature}"
    with live.http(cookies={SESSION_COOKIE: forged}) as http:
        assert http.get("/api/v1/runs").status_code == 401
    with live.http("admin") as admin:
        assert admin.delete(f"/api/v1/tokens/{created.record.id}").status_code == 204
    with live.http(cookies={SESSION_COOKIE: cookie}) as http:
        assert http.get("/api/v1/runs").status_code == 401


def test_tokens_are_stored_only_as_hashes(live: LiveServer) -> None:
    import sqlite3

    from spokehub.store.sqlite import parse_sqlite_url

    with sqlite3.connect(parse_sqlite_url(live.db_url)) as db:
        stored = [row[0] for row in db.execute("SELECT token_hash FROM api_tokens")]
    assert stored
    assert not set(stored) & set(live.tokens.values())
    assert tokens.hash_token(live.tokens["viewer"]) in stored
