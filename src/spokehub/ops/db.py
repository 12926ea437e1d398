"""Database upkeep: apply migrations, prune finished runs."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from spokehub.ops.durations import parse_duration
from spokehub.runtime.client import Client
from spokehub.store.base import PruneStats

__all__ = ["PruneResult", "UpgradeResult", "prune", "upgrade"]


@dataclass(frozen=True, slots=True)
class UpgradeResult:
    applied: tuple[str, ...]  # migrations applied now, e.g. ("0001_initial",)
    version: int  # the schema version after the upgrade

    def to_dict(self) -> dict[str, Any]:
        return {"applied": list(self.applied), "version": self.version}


async def upgrade(client: Client) -> UpgradeResult:
    """Apply the migrations the database has not seen yet, in order."""
    applied = await client.store.migrate()
    version = await client.store.schema_version()
    return UpgradeResult(tuple(applied), version)


@dataclass(frozen=True, slots=True)
class PruneResult:
    older_than: float  # seconds
    cutoff: float  # runs that finished before this moment were deleted
    runs: int
    events: int
    blobs: int
    bytes_before: int
    bytes_after: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


async def prune(client: Client, *, older_than: float | str) -> PruneResult:
    """Delete runs that finished more than ``older_than`` ago (seconds, or text like ``30d``)."""
    seconds = parse_duration(older_than) if isinstance(older_than, str) else float(older_than)
    if seconds < 0:
        raise ValueError("older_than must not be negative")
    cutoff = client.clock.now() - seconds
    stats: PruneStats = await client.prune_async(older_than=seconds)
    return PruneResult(
        older_than=seconds,
        cutoff=cutoff,
        runs=stats.runs,
        events=stats.events,
        blobs=stats.blobs,
        bytes_before=stats.bytes_before,
        bytes_after=stats.bytes_after,
    )
