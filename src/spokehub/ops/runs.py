"""Use cases on runs, shared by the CLI and the HTTP server: thin, async, over ``Client``.

They raise the errors of ``spokehub.errors`` (``RunNotFound``, ``InvalidRunState``,
``RunIdConflict``, ...) and ``ValueError`` for arguments that make no sense; callers map these
to exit codes or HTTP statuses by the error's ``code``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from spokehub.engine.events import Event
from spokehub.engine.timeline import RowKind, RowStatus, Timeline, TimelineRow, build_timeline
from spokehub.intelligence.costs import RunCost, run_cost
from spokehub.intelligence.plan_view import AgentView, agent_view, plan_svg
from spokehub.runtime.client import Client
from spokehub.runtime.definitions import Workflow
from spokehub.store.base import RunRecord
from spokehub.types import JSON, RunStatus

__all__ = [
    "Decided",
    "Progress",
    "RunView",
    "Started",
    "approve",
    "cancel",
    "execute",
    "external_waits",
    "follow",
    "fork",
    "list_runs",
    "reject",
    "run_duration",
    "send_signal",
    "show_run",
    "start",
    "start_run",
]


def run_duration(run: RunRecord, now: float) -> float:
    """How long the run took, or has taken so far."""
    end = run.finished_at if run.finished_at is not None else now
    return max(0.0, end - run.created_at)


@dataclass(frozen=True, slots=True)
class RunView:
    """Everything to show about one run: its record, its timeline and its raw ledger."""

    run: RunRecord
    timeline: Timeline
    events: tuple[Event, ...]
    now: float

    @property
    def waits(self) -> list[TimelineRow]:
        return external_waits(self.timeline)

    @property
    def llm(self) -> RunCost:
        """The run's recorded LLM calls, tokens and cost."""
        return run_cost(self.events)

    @property
    def agent(self) -> AgentView:
        """What an agent in this run planned and did (``present`` is False for other runs)."""
        return agent_view(self.events)

    def plan_graphs(self) -> list[tuple[int, str]]:
        """Each plan version and its SVG drawing."""
        return [(plan.version, plan_svg(plan)) for plan in self.agent.plans]

    def to_dict(self) -> dict[str, Any]:
        data = self.run.to_dict()
        data["duration"] = run_duration(self.run, self.now)
        data["llm"] = self.llm.to_dict()
        data["forked_from"] = self.timeline.forked_from
        data["from_step"] = self.timeline.from_step
        data["steps"] = [row.to_dict() for row in self.timeline.calls]
        data["run_events"] = [row.to_dict() for row in self.timeline.run_rows]
        data["events"] = [event.to_dict() for event in self.events]
        return data


def external_waits(timeline: Timeline) -> list[TimelineRow]:
    """The signals and approvals the run waits for now (someone outside must act)."""
    return [
        row
        for row in timeline.calls
        if row.status is RowStatus.WAITING and row.kind in (RowKind.SIGNAL, RowKind.APPROVAL)
    ]


async def list_runs(
    client: Client,
    *,
    status: RunStatus | None = None,
    workflow: str | None = None,
    limit: int = 100,
    created_after: float | None = None,
    created_before: float | None = None,
    search: str | None = None,
) -> list[RunRecord]:
    """Newest runs first; ``search`` matches part of the run id, ignoring case."""
    if limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit}")
    if created_after is not None and created_before is not None and created_after > created_before:
        raise ValueError("created_after must not be later than created_before")
    return await client.list_runs_async(
        status=status,
        workflow=workflow,
        limit=limit,
        created_after=created_after,
        created_before=created_before,
        search=search,
    )


async def show_run(client: Client, run_id: str) -> RunView:
    """A run's record, ledger and timeline, read at one moment."""
    run = await client.get_run_async(run_id)
    events = await client.events_async(run_id)
    now = client.clock.now()
    return RunView(run, build_timeline(events, now=now), tuple(events), now)


async def start(
    client: Client, wf: Workflow[..., Any], data: dict[str, JSON], *, run_id: str | None = None
) -> RunRecord:
    """Start ``wf`` with a JSON object of keyword arguments; idempotent by ``run_id``."""
    return (await start_run(client, wf, data, run_id=run_id)).run


@dataclass(frozen=True, slots=True)
class Started:
    run: RunRecord
    created: bool  # False: the run id existed already, with the same workflow and input


async def start_run(
    client: Client, wf: Workflow[..., Any], data: dict[str, JSON], *, run_id: str | None = None
) -> Started:
    """``start``, also telling whether this call created the run (decided in the database)."""
    handle = await client.start_input_async(wf, data, run_id=run_id)
    return Started(await client.get_run_async(handle.id), bool(handle.created))


async def execute(client: Client, run_id: str) -> RunRecord:
    """Drive the run in this process until it finishes (waiting for signals if it must)."""
    return await client.execute_async(run_id)


@dataclass(frozen=True, slots=True)
class Progress:
    """What changed in a run since the last look: its record now, and its new events."""

    run: RunRecord
    new_events: tuple[Event, ...]
    events: tuple[Event, ...]


async def follow(
    client: Client, run_id: str, *, interval: float = 0.05, max_interval: float = 1.0
) -> AsyncIterator[Progress]:
    """Yield the run's progress each time its ledger or status changes, until it finishes.

    It polls every ``interval`` seconds while things happen, backing off to ``max_interval``
    while the run is quiet (e.g. waiting hours for an approval).
    """
    if interval <= 0 or max_interval < interval:
        raise ValueError("interval must be positive and max_interval at least interval")
    seen = 0
    last_status: RunStatus | None = None
    delay = interval
    while True:
        run = await client.get_run_async(run_id)  # before the events: a finished run's ledger
        events = await client.events_async(run_id)  # read after it is complete
        new = tuple(events[seen:])
        seen = len(events)
        if new or run.status is not last_status:
            last_status = run.status
            delay = interval
            yield Progress(run, new, tuple(events))
        else:
            delay = min(max_interval, delay * 1.5)
        if run.status.finished:
            return
        await asyncio.sleep(delay)


async def send_signal(client: Client, run_id: str, name: str, payload: JSON = None) -> None:
    """Send signal ``name`` to a run that has not finished; it is kept until the run waits."""
    if not name:
        raise ValueError("a signal name is a non-empty string")
    await client.send_signal_async(run_id, name, payload)


@dataclass(frozen=True, slots=True)
class Decided:
    run_id: str
    name: str
    approved: bool

    def to_dict(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "name": self.name, "approved": self.approved}


async def approve(
    client: Client,
    run_id: str,
    *,
    name: str | None = None,
    comment: str | None = None,
    by: str | None = None,
) -> Decided:
    """Approve the run's pending approval (``name`` when it waits for several)."""
    decided = await client.approve_async(run_id, name=name, comment=comment, by=by)
    return Decided(run_id, decided, True)


async def reject(
    client: Client,
    run_id: str,
    *,
    name: str | None = None,
    comment: str | None = None,
    by: str | None = None,
) -> Decided:
    """Reject the run's pending approval; the workflow sees ``ApprovalRejected``."""
    decided = await client.reject_async(run_id, name=name, comment=comment, by=by)
    return Decided(run_id, decided, False)


async def cancel(client: Client, run_id: str) -> RunRecord:
    """Ask a run to stop. A run no worker picked up yet is cancelled at once."""
    return await client.cancel_async(run_id)


async def fork(
    client: Client, run_id: str, *, from_step: int, new_run_id: str | None = None
) -> RunRecord:
    """Start a new run that replays ``run_id``'s calls before ``from_step``, then goes on live."""
    if from_step < 1:
        raise ValueError(f"--from-step counts calls from 1, got {from_step}")
    if new_run_id is not None and not new_run_id.strip():
        raise ValueError("the new run id must not be empty")
    # An id that is taken is refused by the store, atomically, with RunIdConflict.
    handle = await client.fork_async(run_id, from_step=from_step, new_run_id=new_run_id)
    return await client.get_run_async(handle.id)
