"""The audit trail over HTTP: ``GET /api/v1/audit`` (JSON), ``GET /api/v1/audit/verify`` and
the dashboard page ``/ui/audit``; and the entry that records the server's configuration at start.

Reading the trail needs the admin permission: it names every actor and token.
"""

from __future__ import annotations

import json
from typing import Annotated, Any
from urllib.parse import urlsplit, urlunsplit

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, Response

from spokehub.governance.audit import AuditEntry
from spokehub.ops.audit import audit_log, record
from spokehub.ops.tokens import Permission
from spokehub.server.auth import Principal, require
from spokehub.server.config import ServerConfig
from spokehub.server.dashboard.view import LOGIN_URL, page
from spokehub.server.state import ServerState, StateDep

__all__ = ["api_router", "record_server_start", "ui_router"]

api_router = APIRouter(prefix="/api/v1", tags=["audit"])
ui_router = APIRouter(prefix="/ui", include_in_schema=False)
Admin = Annotated[Principal, Depends(require(Permission.ADMIN))]
UiAdmin = Annotated[Principal, Depends(require(Permission.ADMIN, login_url=LOGIN_URL))]
Text = Annotated[str | None, Query(min_length=1, max_length=200)]


@api_router.get("/audit")
async def list_audit(
    state: StateDep,
    _: Admin,
    run_id: Text = None,
    actor: Text = None,
    action: Annotated[str | None, Query(min_length=1, max_length=100, description="Prefix")] = None,
    since: Annotated[float | None, Query(description="Epoch seconds")] = None,
    after_seq: Annotated[int, Query(ge=0, le=2**62)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[dict[str, Any]]:
    """Audit entries in chain order, filtered; page with ``after_seq`` (the last seq seen)."""
    entries = await audit_log(state.client).entries(
        run_id=run_id, actor=actor, action=action, since=since, after_seq=after_seq, limit=limit
    )
    return [e.to_dict() for e in entries]


@api_router.get("/audit/verify")
async def verify_audit(state: StateDep, _: Admin) -> dict[str, Any]:
    """Recompute the hash chain: ``ok``, entries checked, head hash, the first bad entry."""
    return (await audit_log(state.client).verify()).to_dict()


def _summary(entry: AuditEntry) -> str:
    details = entry.details
    if entry.action == "policy.decision":
        return f"{details.get('hook')} {details.get('decision')}"
    text = json.dumps(details, sort_keys=True)
    return text if len(text) <= 160 else text[:157] + "..."


@ui_router.get("/audit", response_class=HTMLResponse)
async def audit_page(
    request: Request,
    state: StateDep,
    who: UiAdmin,
    run_id: str | None = None,
    actor: str | None = None,
    action: str | None = None,
) -> Response:
    """The trail, newest 200 matching entries, with the chain's verification."""
    filters = {"run_id": run_id or None, "actor": actor or None, "action": action or None}
    log = audit_log(state.client)
    entries = await log.entries(
        run_id=filters["run_id"], actor=filters["actor"], action=filters["action"]
    )
    shown = [{**e.to_dict(), "summary": _summary(e)} for e in entries[-200:][::-1]]
    verification = await log.verify()
    context = {"entries": shown, "filters": filters, "verification": verification}
    return page(request, "audit.html", who, context)


def _without_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


async def record_server_start(state: ServerState) -> None:
    """Audit the configuration the server starts with (never its secret or a password)."""
    config: ServerConfig = state.config
    settings = config.settings
    details = {
        "host": config.host,
        "port": config.port,
        "allowed_hosts": list(config.allowed_hosts),
        "hooks_file": str(config.hooks_file) if config.hooks_file else None,
        "worker": config.worker,
        "database": _without_password(settings.database_url),
        "policy_dir": settings.policy_dir,
        "hooks": sorted(state.hooks),
    }
    await record(state.client, "server.start", actor="system", details=details)
