"""Wiring governance into a client: what the CLI and the server do when they open one."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from spokehub.governance.audit import AuditLog
from spokehub.governance.hooks import Policies, PolicyInterceptor
from spokehub.governance.policyset import PolicySet
from spokehub.governance.redaction import REDACTOR
from spokehub.governance.secrets import SecretsInterceptor
from spokehub.governance.source import PolicySource
from spokehub.runtime.client import Client

__all__ = ["govern", "policies_of"]

log = logging.getLogger("spokehub.governance")
_pending: set[asyncio.Task[object]] = set()  # audit appends scheduled from sync callbacks


def govern(
    client: Client, *, policy_dir: str | Path | None = None, audit: bool = True
) -> Policies | None:
    """Mask secrets in ``client``'s steps, and decide at its policy hook points with
    ``policy_dir`` (default: the ``SPOKEHUB_POLICY_DIR`` setting); returns the policies, or
    None when no directory is configured.

    Every decision a binding matched and every change of the policy set go to the audit
    trail (``audit=False``: to the run's ledger only). The interceptors go innermost, after
    tracing and metrics, so a denial is traced.

    Raises:
        PolicyLoadError: the directory does not load (start nothing without its policies).
    """
    if not any(isinstance(i, SecretsInterceptor) for i in client.interceptors):
        # Innermost but for policies: a secret in a step's result or error is masked before
        # tracing, metrics or the ledger see it.
        client.interceptors = (*client.interceptors, SecretsInterceptor())
    directory = policy_dir or client.settings.policy_dir
    if not directory:
        return None
    trail = AuditLog(client.store, client.clock, redact=REDACTOR.value) if audit else None

    def changed(old: str | None, new: PolicySet) -> None:
        if trail is None:
            return
        details = {"from": old, **new.summary()}
        try:
            task = asyncio.get_running_loop().create_task(
                trail.append("policy.set_changed", actor="system", details=details)
            )
        except RuntimeError:  # no loop: a synchronous caller; the next decision shows the set
            log.info("policy set changed to %s (not audited: no event loop)", new.digest)
            return
        _pending.add(task)
        task.add_done_callback(_pending.discard)

    source = PolicySource(directory, on_change=changed)
    policies = Policies(source, clock=client.clock, sink=trail)
    client.interceptors = (*client.interceptors, PolicyInterceptor(policies))
    return policies


def policies_of(client: Client) -> Policies | None:
    """The policies a client's interceptors decide with, if any (for hooks outside runs,
    such as approval decisions)."""
    for interceptor in client.interceptors:
        if isinstance(interceptor, PolicyInterceptor):
            return interceptor.policies
    return None
