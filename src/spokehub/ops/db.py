"""Database upkeep: apply migrations, prune finished runs, copy a database to another."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from spokehub.config import Settings
from spokehub.ops.durations import parse_duration
from spokehub.runtime.client import Client
from spokehub.store import open_store
from spokehub.store.base import PruneStats
from spokehub.store.copy import Progress, copy_database
from spokehub.store.relational import RelationalStore
from spokehub.store.rotation import Progress as RotationProgress
from spokehub.store.rotation import rotate_keys as reseal_all

__all__ = ["CopyResult", "PruneResult", "UpgradeResult", "copy", "prune", "upgrade"]


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


@dataclass(frozen=True, slots=True)
class CopyResult:
    source: str
    target: str
    rows: dict[str, int]

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "target": self.target, "rows": dict(self.rows)}


async def copy(
    source_url: str,
    target_url: str,
    *,
    settings: Settings | None = None,
    progress: Progress | None = None,
) -> CopyResult:
    """Copy every run, ledger, inbox item and blob from one database to an empty other one.

    Typically ``sqlite:///.spokehub/spokehub.db`` to ``postgresql://…``, moving an embedded
    deployment to PostgreSQL with its history. Stop the workers on the source first.
    """
    if source_url == target_url:
        raise ValueError("--from and --to name the same database")
    base = settings or Settings.from_env()
    source = open_store(base.with_(database_url=source_url))
    try:
        target = open_store(base.with_(database_url=target_url))
        try:
            if not isinstance(source, RelationalStore) or not isinstance(target, RelationalStore):
                raise ValueError("db copy works between SQLite and PostgreSQL databases")
            stats = await copy_database(source, target, progress)
        finally:
            await target.close()
    finally:
        await source.close()
    return CopyResult(_redact(source_url), _redact(target_url), stats.rows)


def _redact(url: str) -> str:
    """A URL without its password, fit to print."""
    head, sep, rest = url.partition("://")
    if not sep or "@" not in rest:
        return url
    auth, _, host = rest.rpartition("@")
    user = auth.split(":", 1)[0]
    return f"{head}://{user}:***@{host}" if ":" in auth else url


async def rotate_keys(
    *,
    settings: Settings | None = None,
    batch: int = 500,
    progress: RotationProgress | None = None,
) -> dict[str, int]:
    """Re-seal every stored payload with the first key of ``SPOKEHUB_ENCRYPTION_KEYS``.

    Payloads sealed with older keys (kept in the list to read them) and payloads stored
    before encryption was turned on are sealed with the current key, in batches. Afterwards
    the old keys can be dropped from the list.
    """
    store = open_store(settings or Settings.from_env())
    try:
        if not isinstance(store, RelationalStore):
            raise ValueError("rotate-keys works on SQLite and PostgreSQL databases")
        return await reseal_all(store, batch=batch, progress=progress)
    finally:
        await store.close()
