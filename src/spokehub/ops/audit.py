"""Operator actions go to the audit trail here, so the CLI, the API and the dashboard all
record them the same way (each use case in ``ops`` calls ``record`` once it succeeded)."""

from __future__ import annotations

import getpass
from typing import Any

from spokehub.governance.audit import AuditEntry, AuditLog
from spokehub.governance.redaction import REDACTOR
from spokehub.runtime.client import Client

__all__ = ["audit_log", "local_actor", "record"]


def local_actor() -> str:
    """Who acts when no API token names them: the operating-system user of the CLI."""
    try:
        return f"local:{getpass.getuser()}"
    except (KeyError, OSError):  # no passwd entry (some containers)
        return "local:unknown"


def audit_log(client: Client) -> AuditLog:
    return AuditLog(client.store, client.clock, redact=REDACTOR.value)


async def record(
    client: Client,
    action: str,
    *,
    actor: str | None,
    run_id: str | None = None,
    details: dict[str, Any] | None = None,
) -> AuditEntry:
    """Append ``action`` by ``actor`` (the CLI's user when None) to the audit trail."""
    await client.ensure_schema()
    return await audit_log(client).append(
        action, actor=actor or local_actor(), run_id=run_id, details=details
    )
