"""Wiring governance into a client: what the CLI and the server do when they open one."""

from __future__ import annotations

from pathlib import Path

from spokehub.governance.hooks import DecisionSink, Policies, PolicyInterceptor
from spokehub.governance.source import PolicySource
from spokehub.runtime.client import Client

__all__ = ["govern", "policies_of"]


def govern(
    client: Client,
    *,
    policy_dir: str | Path | None = None,
    sink: DecisionSink | None = None,
) -> Policies | None:
    """Decide at the policy hook points of ``client`` with ``policy_dir`` (default: the
    ``SPOKEHUB_POLICY_DIR`` setting); None when no directory is configured.

    The interceptor goes innermost, after tracing and metrics, so a denial is traced.

    Raises:
        PolicyLoadError: the directory does not load (start nothing without its policies).
    """
    directory = policy_dir or client.settings.policy_dir
    if not directory:
        return None
    policies = Policies(PolicySource(directory), clock=client.clock, sink=sink)
    client.interceptors = (*client.interceptors, PolicyInterceptor(policies))
    return policies


def policies_of(client: Client) -> Policies | None:
    """The policies a client's interceptors decide with, if any (for hooks outside runs,
    such as approval decisions)."""
    for interceptor in client.interceptors:
        if isinstance(interceptor, PolicyInterceptor):
            return interceptor.policies
    return None
