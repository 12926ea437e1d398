"""Schedules as rows of the ``schedules`` table, on either backend (through ``Store.transact``)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from spokehub.errors import SpokehubError
from spokehub.integrations.schedules import Schedule
from spokehub.store.base import Store, Tx

_COLUMNS = (
    "name, workflow, cron, timezone, input, catchup, max_catchup, paused, next_fire_at, "
    "last_fire_at, source, created_at, updated_at"
)


class ScheduleNotFound(SpokehubError, LookupError):
    code = "schedule_not_found"

    def __init__(self, name: str) -> None:
        super().__init__(f"no schedule named {name!r}; list them with `spokehub schedules list`")


@dataclass(frozen=True, slots=True)
class ScheduleRow:
    """A stored schedule with its state."""

    schedule: Schedule
    paused: bool
    next_fire_at: float | None
    last_fire_at: float | None
    source: str  # "code" | "cli" | "api"
    created_at: float
    updated_at: float

    def to_dict(self, upcoming: int = 3) -> dict[str, Any]:
        s = self.schedule
        nxt = [] if self.paused or self.next_fire_at is None else [self.next_fire_at]
        if nxt and upcoming > 1:
            nxt += s.next_times(nxt[0], upcoming - 1)
        return {
            "name": s.name,
            "workflow": s.workflow,
            "cron": s.cron,
            "timezone": s.timezone,
            "input": s.input,
            "catchup": s.catchup,
            "max_catchup": s.max_catchup,
            "paused": self.paused,
            "next_fire_at": self.next_fire_at,
            "next_fire_times": nxt,
            "last_fire_at": self.last_fire_at,
            "source": self.source,
        }


def _row(r: Any) -> ScheduleRow:
    schedule = Schedule(
        name=r[0],
        workflow=r[1],
        cron=r[2],
        timezone=r[3],
        input=json.loads(r[4]),
        catchup=r[5],
        max_catchup=int(r[6]),
    )
    return ScheduleRow(schedule, bool(r[7]), r[8], r[9], r[10], r[11], r[12])


async def save(store: Store, schedule: Schedule, now: float, source: str) -> ScheduleRow:
    """Create or update a schedule; its next tick is recomputed when its timing changed."""

    def write(tx: Tx) -> ScheduleRow:
        found = tx.execute(f"SELECT {_COLUMNS} FROM schedules WHERE name = ?", (schedule.name,))
        old = found.fetchone()
        values = (
            schedule.workflow,
            schedule.cron,
            schedule.timezone,
            json.dumps(schedule.input, sort_keys=True),
            schedule.catchup,
            schedule.max_catchup,
        )
        if old is None:
            tx.execute(
                f"INSERT INTO schedules ({_COLUMNS}) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, 0, ?, NULL, ?, ?, ?)",
                (schedule.name, *values, schedule.next_after(now), source, now, now),
            )
        else:
            current = _row(old)
            retimed = (current.schedule.cron, current.schedule.timezone) != (
                schedule.cron,
                schedule.timezone,
            )
            nxt = schedule.next_after(now) if retimed else current.next_fire_at
            tx.execute(
                "UPDATE schedules SET workflow = ?, cron = ?, timezone = ?, input = ?, "
                "catchup = ?, max_catchup = ?, next_fire_at = ?, source = ?, updated_at = ? "
                "WHERE name = ?",
                (*values, nxt, source, now, schedule.name),
            )
        return _select(tx, schedule.name)

    return await store.transact(write)


def _select(tx: Tx, name: str) -> ScheduleRow:
    found = tx.execute(f"SELECT {_COLUMNS} FROM schedules WHERE name = ?", (name,)).fetchone()
    if found is None:
        raise ScheduleNotFound(name)
    return _row(found)


async def get(store: Store, name: str) -> ScheduleRow:
    return await store.transact(lambda tx: _select(tx, name), write=False)


async def list_all(store: Store) -> list[ScheduleRow]:
    def read(tx: Tx) -> list[ScheduleRow]:
        rows = tx.execute(f"SELECT {_COLUMNS} FROM schedules ORDER BY name").fetchall()
        return [_row(r) for r in rows]

    return await store.transact(read, write=False)


async def set_paused(store: Store, name: str, paused: bool, now: float) -> ScheduleRow:
    """Pause, or resume from now on (ticks missed while paused are not caught up)."""

    def write(tx: Tx) -> ScheduleRow:
        current = _select(tx, name)
        nxt = current.next_fire_at if paused else current.schedule.next_after(now)
        tx.execute(
            "UPDATE schedules SET paused = ?, next_fire_at = ?, updated_at = ? WHERE name = ?",
            (1 if paused else 0, nxt, now, name),
        )
        return _select(tx, name)

    return await store.transact(write)


async def remove(store: Store, name: str) -> None:
    def write(tx: Tx) -> None:
        if tx.execute("DELETE FROM schedules WHERE name = ?", (name,)).rowcount == 0:
            raise ScheduleNotFound(name)

    await store.transact(write)


async def advance(
    store: Store, name: str, expected: float, following: float, fired: float | None
) -> bool:
    """Move a schedule from tick ``expected`` to ``following``; False if another did first."""

    def write(tx: Tx) -> bool:
        done = tx.execute(
            "UPDATE schedules SET next_fire_at = ?, last_fire_at = COALESCE(?, last_fire_at) "
            "WHERE name = ? AND next_fire_at = ? AND paused = 0",
            (following, fired, name, expected),
        )
        return bool(done.rowcount == 1)

    return await store.transact(write)
