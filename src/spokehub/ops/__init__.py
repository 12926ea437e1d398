"""Use cases shared by the CLI and the HTTP server: list, show, start, steer and upkeep runs.

Each is a small async function over ``spokehub.Client``; errors are those of
``spokehub.errors`` (mapped to exit codes or HTTP statuses by their ``code``) and ``ValueError``
for meaningless arguments.
"""

from spokehub.ops.db import CopyResult, PruneResult, UpgradeResult, copy, prune, upgrade
from spokehub.ops.durations import format_duration, parse_duration
from spokehub.ops.runs import (
    Decided,
    Progress,
    RunView,
    Started,
    approve,
    cancel,
    execute,
    external_waits,
    follow,
    fork,
    list_runs,
    reject,
    run_duration,
    send_signal,
    show_run,
    start,
    start_run,
)

__all__ = [
    "CopyResult",
    "Decided",
    "Progress",
    "PruneResult",
    "RunView",
    "Started",
    "UpgradeResult",
    "approve",
    "cancel",
    "copy",
    "execute",
    "external_waits",
    "follow",
    "fork",
    "format_duration",
    "list_runs",
    "parse_duration",
    "prune",
    "reject",
    "run_duration",
    "send_signal",
    "show_run",
    "start",
    "start_run",
    "upgrade",
]
