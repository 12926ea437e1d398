"""Time is asked of a Clock, so tests can move it by hand (see ``spokehub.testing.FakeClock``)."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float:
        """Seconds since the epoch."""
        ...


class SystemClock:
    def now(self) -> float:
        return time.time()


class DatabaseClock:
    """The database server's clock, read locally: ``base`` plus an offset measured against it.

    Due times (timers, retries, leases, deadlines) are compared with this clock, so a worker
    whose own clock is skewed fires nothing early: every worker agrees with the one clock
    of the database. ``sync`` measures the offset (half a round trip of uncertainty, well
    under a millisecond on a LAN); workers call it again on their heartbeat.
    """

    def __init__(self, base: Clock | None = None) -> None:
        self.base = base or SystemClock()
        self.offset = 0.0
        self.synced = False

    def now(self) -> float:
        return self.base.now() + self.offset

    async def sync(self, read_db_time: Callable[[], Awaitable[float]]) -> float:
        """Measure the offset to the database clock; returns it."""
        before = self.base.now()
        db = await read_db_time()
        after = self.base.now()
        self.offset = db - (before + after) / 2
        self.synced = True
        return self.offset
