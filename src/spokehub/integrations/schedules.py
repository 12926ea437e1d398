"""Schedules: cron expressions in a time zone, and the fire times they give.

A schedule starts one run of a workflow per tick. The run id is derived from the schedule's
name and the tick time (``schedule:nightly:2026-11-29T02:30:00Z``), so however many workers
notice a tick, starting it again returns the same run: each tick starts exactly one run.

Catch-up after downtime (ticks that passed while no worker was up):

- ``skip``: missed ticks are dropped; a tick at most ``grace`` seconds late still runs.
- ``latest``: only the most recent missed tick runs.
- ``all``: every missed tick runs, the most recent ``max_catchup`` of them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from spokehub.errors import ConfigurationError

CatchUp = Literal["skip", "latest", "all"]
CATCH_UP: tuple[str, ...] = ("skip", "latest", "all")
_NAME = re.compile(r"^[A-Za-z0-9_.:\-]{1,200}$")


class ScheduleError(ConfigurationError):
    """A schedule's cron expression, time zone, name or option is invalid."""

    code = "schedule"


def check_cron(expression: str) -> str:
    """``expression`` if croniter accepts it (5 fields, or 6 with seconds last)."""
    from croniter import croniter

    text = " ".join(expression.split())
    if not text or not croniter.is_valid(text):
        raise ScheduleError(
            f"invalid cron expression {expression!r}; use 5 fields 'minute hour day month "
            "weekday', e.g. '*/5 * * * *' (a 6th field adds seconds)"
        )
    return text


def check_timezone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ScheduleError(
            f"unknown time zone {name!r}; use an IANA name such as 'UTC' or 'Europe/Paris'"
        ) from None


@dataclass(frozen=True, kw_only=True)
class Schedule:
    """A declared schedule: ``workflow`` started with ``input`` on each ``cron`` tick.

    Raises:
        ScheduleError: at construction, for an invalid cron, time zone, name or option.
    """

    name: str
    workflow: str
    cron: str
    timezone: str = "UTC"
    input: dict[str, Any] = field(default_factory=dict)
    catchup: CatchUp = "skip"
    max_catchup: int = 10
    grace: float = 60.0

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise ScheduleError(
                f"schedule name {self.name!r}: use 1-200 letters, digits and . _ : -"
            )
        object.__setattr__(self, "cron", check_cron(self.cron))
        check_timezone(self.timezone)
        if self.catchup not in CATCH_UP:
            raise ScheduleError(f"catch-up is one of {', '.join(CATCH_UP)}, not {self.catchup!r}")
        if not 1 <= self.max_catchup <= 10_000 or self.grace < 0:
            raise ScheduleError("max_catchup must be 1 to 10,000 and grace >= 0 seconds")

    def next_after(self, when: float) -> float:
        """The first tick strictly after ``when`` (seconds since the epoch)."""
        from croniter import croniter

        start = datetime.fromtimestamp(when, check_timezone(self.timezone))
        following: datetime = croniter(self.cron, start).get_next(datetime)
        return following.timestamp()

    def next_times(self, when: float, count: int) -> list[float]:
        out: list[float] = []
        for _ in range(count):
            when = self.next_after(when)
            out.append(when)
        return out

    def due(self, first: float, now: float) -> list[float]:
        """The ticks to start now, given the first tick not yet handled (``first <= now``).

        Walks back from ``now`` (at most ``max_catchup`` ticks), so a long downtime of a
        frequent schedule costs no more than a short one.
        """
        from croniter import croniter

        if first > now:
            return []
        want = self.max_catchup if self.catchup == "all" else 1
        # Just past `now`, so that a tick at exactly `now` counts as due.
        start = datetime.fromtimestamp(now + 0.000_5, check_timezone(self.timezone))
        walker = croniter(self.cron, start)
        missed: list[float] = []
        while len(missed) < want:
            tick = walker.get_prev(datetime).timestamp()
            if tick < first - 0.000_5:
                break
            missed.append(tick)
        missed.reverse()
        if self.catchup == "skip":
            return [t for t in missed if now - t <= self.grace]
        return missed


def run_id_for(name: str, tick: float) -> str:
    """The run id of a tick: the same on every worker, so a tick starts one run."""
    stamp = datetime.fromtimestamp(tick, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return f"schedule:{name}:{stamp}"
