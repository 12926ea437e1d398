"""What a claim may take under the queues' limits: the decision, apart from the SQL.

``RelationalStore._claim`` reads candidates and counts in its transaction, then asks
``Admission`` about each candidate in claim order (priority, then age).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from spokehub.store.base import QueueLimits


@dataclass(frozen=True, slots=True, kw_only=True)
class ClaimRequest:
    owner: str
    queues: tuple[str, ...]
    workflows: tuple[str, ...]
    limit: int
    now: float
    lease_seconds: float
    root_id: str | None
    dead: tuple[str, ...]
    limits: dict[str, QueueLimits]
    slots: dict[str, int]
    max_recoveries: int | None
    isolation: int = 0  # claim suspects, to run them alone this way (store/isolation.py)


@dataclass(frozen=True, slots=True)
class Candidate:
    id: str
    queue: str
    status: str
    priority: int
    created_at: float
    recoveries: int
    key: str | None
    started_at: float | None


@dataclass(slots=True)
class Counts:
    running: dict[str, int] = field(default_factory=dict)  # queue -> runs executing
    keys: dict[tuple[str, str], int] = field(default_factory=dict)  # (queue, key) -> in progress
    started: dict[str, int] = field(default_factory=dict)  # queue -> first starts in the period


class Admission:
    """Decides, candidate by candidate, what a claim may take under the queues' limits."""

    def __init__(self, r: ClaimRequest, counts: Counts | None) -> None:
        self.r = r
        self.counts = counts or Counts()
        self.taken: dict[str, int] = {}

    def take(self, c: Candidate) -> bool:
        slots = self.r.slots.get(c.queue)
        if slots is not None and self.taken.get(c.queue, 0) >= slots:
            return False
        lim = self.r.limits.get(c.queue)
        if lim is not None and c.status != "running":  # a recovery already holds its place
            counts = self.counts
            if lim.concurrency is not None and counts.running.get(c.queue, 0) >= lim.concurrency:
                return False
            first_start = c.started_at is None
            key = (c.queue, c.key) if c.key is not None else None
            key_limit = lim.key_concurrency if first_start and key is not None else None
            if key is not None and key_limit is not None and counts.keys.get(key, 0) >= key_limit:
                return False
            started = counts.started.get(c.queue, 0)
            if first_start and lim.rate is not None and started >= lim.rate[0]:
                return False
            counts.running[c.queue] = counts.running.get(c.queue, 0) + 1
            if first_start and key is not None:
                counts.keys[key] = counts.keys.get(key, 0) + 1
            if first_start:
                counts.started[c.queue] = counts.started.get(c.queue, 0) + 1
        self.taken[c.queue] = self.taken.get(c.queue, 0) + 1
        return True
