"""Drift schedules: each Target's ``drift.interval`` becomes an integrations schedule.

One schedule per target (not one per distribution), so every target is checked as often as
its own manifest asks: ``dist-drift:<distribution>:<target>`` starts a
``spokehub.distribution.drift`` run for that target on each tick. A target without
``interval`` uses the default given at registration (``--every``, 10 minutes); a target in
mode ``off`` gets none. Cron has no "every N seconds from now", so an interval becomes the
largest cron step that divides its unit and is not longer than the interval (``7m`` ->
every 6 minutes, ``45s`` -> every 30 seconds, ``5h`` -> every 4 hours): a target is never
checked less often than asked. Registering again replaces the distribution's schedules
(targets removed or turned ``off`` lose theirs).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from spokehub.distribution.drift_workflow import DRIFT_WORKFLOW, DriftRequest, drift_check
from spokehub.distribution.manifests import seconds
from spokehub.distribution.steps import context_for
from spokehub.integrations import schedule_store
from spokehub.integrations.schedules import Schedule
from spokehub.runtime.client import Client
from spokehub.store.base import RunRecord

PREFIX = "dist-drift"
DEFAULT_INTERVAL = 600.0


def _step(limit: float, unit: int, steps_in: int) -> int:
    """The largest divisor of ``steps_in`` that is at most ``limit / unit`` (at least 1)."""
    want = max(1, int(limit // unit))
    return max(d for d in range(1, steps_in + 1) if steps_in % d == 0 and d <= want)


def cron_for(interval: float) -> tuple[str, float]:
    """A cron expression ticking at most every ``interval`` seconds, and its real period."""
    if interval < 60:
        n = _step(interval, 1, 60)
        return f"* * * * * */{n}", float(n)
    if interval < 3600:
        n = _step(interval, 60, 60)
        return f"*/{n} * * * *", n * 60.0
    if interval < 86400:
        n = _step(interval, 3600, 24)
        return f"0 */{n} * * *", n * 3600.0
    days = max(1, int(interval // 86400))
    return f"0 0 */{days} * *", days * 86400.0


def schedule_name(distribution: str, target: str) -> str:
    return f"{PREFIX}:{distribution}:{target}"


@dataclass(frozen=True, slots=True)
class DriftSchedule:
    target: str
    interval: float  # what the manifest (or the default) asked for
    period: float  # what the cron expression gives
    schedule: Schedule

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "name": self.schedule.name,
            "cron": self.schedule.cron,
            "interval": self.interval,
            "period": self.period,
        }


def plan_schedules(
    hub: str | Path, distribution: str, db: str, *, default: float = DEFAULT_INTERVAL
) -> list[DriftSchedule]:
    """The schedule of every target whose drift mode is not ``off`` (nothing is stored)."""
    root = str(Path(hub).resolve())
    ctx = context_for(root, distribution)
    out = []
    for target in ctx.targets():
        spec = target.spec.get("drift") or {}
        if spec.get("mode", "detect") == "off":
            continue
        interval = seconds(spec.get("interval"), default)
        cron, period = cron_for(interval)
        req = DriftRequest(hub=root, distribution=distribution, db=db, targets=[target.name])
        schedule = Schedule(
            name=schedule_name(distribution, target.name),
            workflow=DRIFT_WORKFLOW,
            cron=cron,
            input={"req": req.model_dump(mode="json")},
            catchup="latest",  # after downtime one check is enough: drift is a state
        )
        out.append(DriftSchedule(target.name, interval, period, schedule))
    return out


async def register(
    client: Client, hub: str | Path, distribution: str, *, default: float = DEFAULT_INTERVAL
) -> list[DriftSchedule]:
    """Store the distribution's drift schedules, dropping ones of targets no longer checked."""
    await client.ensure_schema()
    wanted = plan_schedules(hub, distribution, client.settings.database_url, default=default)
    names = {s.schedule.name for s in wanted}
    for stale in await registered(client, distribution):
        if stale not in names:
            await schedule_store.remove(client.store, stale)
    now = client.clock.now()
    for item in wanted:
        await schedule_store.save(client.store, item.schedule, now, "cli")
    return wanted


async def registered(client: Client, distribution: str) -> list[str]:
    """The names of the distribution's stored drift schedules."""
    await client.ensure_schema()
    prefix = f"{PREFIX}:{distribution}:"
    rows = await schedule_store.list_all(client.store)
    return [r.schedule.name for r in rows if r.schedule.name.startswith(prefix)]


async def unregister(client: Client, distribution: str) -> list[str]:
    """Remove every drift schedule of the distribution; returns their names."""
    names = await registered(client, distribution)
    for name in names:
        await schedule_store.remove(client.store, name)
    return names


async def check_now(
    client: Client,
    hub: str | Path,
    distribution: str,
    *,
    heal: bool = True,
    at: float | None = None,
    run_id: str | None = None,
) -> RunRecord:
    """One drift check now: start a run of the drift workflow and execute it in this process."""
    from spokehub.distribution import service

    await client.ensure_schema()
    root = service.hub_path(hub)
    context_for(root, distribution)  # bad manifests fail here, before a run exists
    req = DriftRequest(
        hub=root, distribution=distribution, db=client.settings.database_url, heal=heal, at=at
    )
    rid = run_id or f"dist-drift-{distribution}-{int(time.time() * 1000)}"
    handle = await client.start_async(drift_check.options(run_id=rid), req)
    return await service.drive(client, handle.id)
