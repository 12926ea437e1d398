"""What every dashboard page shares: the templates, redaction of secrets, time formatting.

Jinja2 autoescapes every template (``.html``), so values from runs (names, inputs, errors)
are text, never markup. Payloads arrive already shown as ``spokehub.ops.present`` says (bad
text escaped; secret-looking keys ``[redacted]`` unless the viewer may act on runs).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from spokehub.ops.durations import format_duration
from spokehub.ops.tokens import Permission
from spokehub.server.auth import CSRF_FIELD, Principal, csrf_token_for

__all__ = [
    "LOGIN_URL",
    "page",
    "pretty_json",
    "templates",
    "when",
]

HERE = Path(__file__).parent
LOGIN_URL = "/ui/login"


def pretty_json(value: Any) -> str:
    """Indented JSON for a ``<pre>`` block."""
    return json.dumps(value, indent=2, ensure_ascii=False, default=str, sort_keys=True)


def short_json(value: Any, limit: int = 160) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str, separators=(", ", ": "))
    return text if len(text) <= limit else text[: limit - 1] + "…"


def when(ts: float | None) -> str:
    """Times are shown in UTC, the same for every viewer and every server."""
    if ts is None:
        return "—"
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S")


def took(seconds: float | None) -> str:
    return "—" if seconds is None else format_duration(seconds)


templates = Jinja2Templates(directory=HERE / "templates")
templates.env.filters.update(when=when, took=took, pretty_json=pretty_json, short_json=short_json)


def page(
    request: Request,
    name: str,
    principal: Principal | None,
    context: dict[str, Any],
    *,
    status_code: int = 200,
) -> HTMLResponse:
    """Render a template with what every page needs: who is logged in, what they may do,
    and the CSRF field for the forms."""
    base = {
        "principal": principal,
        "can_operate": principal is not None and principal.token.allows(Permission.OPERATE),
        "can_approve": principal is not None and principal.token.allows(Permission.APPROVE),
        "csrf_field": CSRF_FIELD,
        "csrf_token": csrf_token_for(request),
        "nav": request.url.path,
    }
    return templates.TemplateResponse(request, name, {**base, **context}, status_code=status_code)
