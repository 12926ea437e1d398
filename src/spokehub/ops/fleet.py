"""The fleet at a glance: queues with their depth, worker processes, registered workflows."""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any

from spokehub.runtime.client import Client
from spokehub.runtime.definitions import REGISTRY
from spokehub.store.base import QueueStats, WorkerInfo

__all__ = ["WorkflowInfo", "list_queues", "list_workers", "list_workflows"]


async def list_queues(client: Client) -> list[QueueStats]:
    """Every queue with unfinished runs, with its count per status."""
    await client.ensure_schema()
    return await client.store.queue_stats()


async def list_workers(client: Client, *, seen_within: float | None = None) -> list[WorkerInfo]:
    """Workers as they last reported; ``seen_within`` seconds keeps only recent heartbeats."""
    if seen_within is not None and seen_within <= 0:
        raise ValueError(f"seen_within must be positive, got {seen_within}")
    await client.ensure_schema()
    since = None if seen_within is None else client.clock.now() - seen_within
    return await client.store.list_workers(seen_since=since)


@dataclass(frozen=True, slots=True)
class WorkflowInfo:
    name: str
    queue: str
    version: str | None
    parameters: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "queue": self.queue,
            "version": self.version,
            "parameters": list(self.parameters),
        }


def list_workflows() -> list[WorkflowInfo]:
    """The workflows registered in this process (what it can start and execute), by name."""
    return [
        WorkflowInfo(
            name=wf.name,
            queue=wf.queue,
            version=wf.version,
            parameters=tuple(inspect.signature(wf.fn).parameters),
        )
        for _, wf in sorted(REGISTRY.workflows.items())
    ]
