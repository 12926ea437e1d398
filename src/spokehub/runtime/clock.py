"""Time is asked of a Clock, so tests can move it by hand (see ``spokehub.testing.FakeClock``)."""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float:
        """Seconds since the epoch."""
        ...


class SystemClock:
    def now(self) -> float:
        return time.time()
