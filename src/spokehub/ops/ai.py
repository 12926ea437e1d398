"""Use cases of the intelligence layer shared by the CLI and the HTTP server: spend over time,
and the calibration of confidence-routed decisions.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from spokehub.intelligence import storage
from spokehub.intelligence.calibration import Calibration, calibration
from spokehub.intelligence.costs import SpendReport, spend_report

if TYPE_CHECKING:
    from spokehub.runtime.client import Client


async def spend(client: Client, *, days: float = 30, workflow: str | None = None) -> SpendReport:
    """LLM spend of the last ``days`` days: total, per day, per model, per workflow."""
    if days <= 0:
        raise ValueError(f"days must be positive, got {days}")
    await client.ensure_schema()
    since = client.clock.now() - days * 86400
    rows = await client.store.transact(
        lambda tx: storage.usage_rows(tx, since=since, workflow=workflow), write=False
    )
    return spend_report(rows, since=since)


async def calibrate(
    client: Client,
    workflow: str,
    *,
    name: str | None = None,
    bins: int = 10,
    target: float = 0.95,
) -> Calibration:
    """Calibration of ``workflow``'s decisions that a human answered."""
    if bins < 1:
        raise ValueError(f"bins must be at least 1, got {bins}")
    if not 0 < target <= 1:
        raise ValueError(f"the target precision is a fraction in (0, 1], got {target}")
    await client.ensure_schema()
    return await calibration(client.store, workflow, name=name, bins=bins, target=target)
