"""A public test kit: test your workflows without sleeping, without servers.

Example:
    >>> clock = FakeClock()
    >>> client = Client("sqlite:///:memory:", clock=clock)  # doctest: +SKIP
    >>> handle = client.start(reminder, "ada")
    >>> run_until_idle(client)          # runs what is due, then jumps the clock to the next timer
    >>> handle.result()
"""

from __future__ import annotations

import asyncio
import threading

from spokehub.intelligence.scripted import Reply, ScriptedProvider, label_logprobs
from spokehub.runtime.client import Client, _sync
from spokehub.runtime.definitions import REGISTRY
from spokehub.runtime.worker import Worker

__all__ = [
    "FakeClock",
    "Reply",
    "ScriptedProvider",
    "label_logprobs",
    "run_until_idle",
    "run_until_idle_async",
]


class FakeClock:
    """A clock that moves only when told to. Thread-safe."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self._now = start
        self._lock = threading.Lock()

    def now(self) -> float:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("time only moves forward")
        with self._lock:
            self._now += seconds

    def set(self, when: float) -> None:
        with self._lock:
            if when < self._now:
                raise ValueError("time only moves forward")
            self._now = when


async def run_until_idle_async(
    client: Client,
    *,
    advance_time: bool = True,
    queues: tuple[str, ...] | None = None,
    max_rounds: int = 10_000,
) -> int:
    """Execute everything that can run; with a FakeClock, jump it to each next wake-up.

    Returns the number of run activations executed. Runs that wait for a signal or an
    approval stay waiting: send it, then call this again.
    """
    worker = Worker(client, queues=queues or _all_queues(), inline_wait=0.0)
    activations = 0
    for _ in range(max_rounds):
        await worker.run(until_idle=True)
        activations = worker.completed_activations
        clock = client.clock
        if not (advance_time and isinstance(clock, FakeClock)):
            break
        nxt = await client.store.next_wake(queues=worker.queues, workflows=list(REGISTRY.workflows))
        if nxt is None:
            break
        clock.set(max(nxt, clock.now()))
    await asyncio.sleep(0)
    return activations


def run_until_idle(client: Client, **kwargs: object) -> int:
    return _sync(run_until_idle_async(client, **kwargs))  # type: ignore[arg-type]


def _all_queues() -> tuple[str, ...]:
    queues = {wf.queue for wf in REGISTRY.workflows.values()}
    return tuple(sorted(queues)) or ("default",)
