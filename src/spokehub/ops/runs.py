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
from spokehub.governance.decisions import decisions_in
from spokehub.governance.hooks import check_approval
from spokehub.governance.wiring import policies_of
from spokehub.intelligence.costs import RunCost, run_cost
from spokehub.intelligence.plan_view import AgentView, agent_view, plan_svg
from spokehub.intelligence.watch import AnomalyRecord, list_anomalies
from spokehub.ops.audit import local_actor, record
from spokehub.ops.present import present_event, present_run
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
    anomalies: tuple[AnomalyRecord, ...] = ()  # what the detectors flagged in this run

    @property
    def waits(self) -> list[TimelineRow]:
        return external_waits(self.timeline)

    @property
    def policy_decisions(self) -> list[dict[str, Any]]:
        """The run's policy decisions in ledger order (``seq``: the call they judged)."""
        return decisions_in(self.events)

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
        data["policy_decisions"] = self.policy_decisions
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
    reveal: bool = True,
) -> list[RunRecord]:
    """Newest runs first; ``search`` matches part of the run id, ignoring case.

    Values are shown as ``ops.present`` says: bad text escaped, secrets redacted unless
    ``reveal``.
    """
    if limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit}")
    if created_after is not None and created_before is not None and created_after > created_before:
        raise ValueError("created_after must not be later than created_before")
    runs = await client.list_runs_async(
        status=status,
        workflow=workflow,
        limit=limit,
        created_after=created_after,
        created_before=created_before,
        search=search,
    )
    return [present_run(run, reveal=reveal) for run in runs]


async def show_run(client: Client, run_id: str, *, reveal: bool = True) -> RunView:
    """A run's record, ledger and timeline, read at one moment (shown as ``list_runs``)."""
    run = present_run(await client.get_run_async(run_id), reveal=reveal)
    events = [present_event(e, reveal=reveal) for e in await client.events_async(run_id)]
    now = client.clock.now()
    flagged = tuple(await list_anomalies(client, run_id=run_id, limit=50))
    return RunView(run, build_timeline(events, now=now), tuple(events), now, flagged)


async def start(
    client: Client,
    wf: Workflow[..., Any],
    data: dict[str, JSON],
    *,
    run_id: str | None = None,
    actor: str | None = None,
    started_by: str | None = None,
) -> RunRecord:
    """Start ``wf`` with a JSON object of keyword arguments; idempotent by ``run_id``."""
    who = actor or started_by
    return (await start_run(client, wf, data, run_id=run_id, actor=who)).run


@dataclass(frozen=True, slots=True)
class Started:
    run: RunRecord
    created: bool  # False: the run id existed already, with the same workflow and input


async def start_run(
    client: Client,
    wf: Workflow[..., Any],
    data: dict[str, JSON],
    *,
    run_id: str | None = None,
    actor: str | None = None,
    started_by: str | None = None,
) -> Started:
    """``start``, also telling whether this call created the run (decided in the database).

    ``actor`` (who asks; ``started_by`` is the same) is recorded as the run's ``started_by``:
    policies see it, and approvals refuse that actor's vote unless they allow self-approval.
    """
    actor = actor or started_by or local_actor()
    handle = await client.start_input_async(wf, data, run_id=run_id, actor=actor)
    started = Started(await client.get_run_async(handle.id), bool(handle.created))
    if started.created:
        await record(
            client, "run.start", actor=actor, run_id=handle.id, details={"workflow": wf.name}
        )
    return started


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


async def send_signal(
    client: Client, run_id: str, name: str, payload: JSON = None, *, actor: str | None = None
) -> None:
    """Send signal ``name`` to a run that has not finished; it is kept until the run waits."""
    if not name:
        raise ValueError("a signal name is a non-empty string")
    await client.send_signal_async(run_id, name, payload)
    await record(client, "run.signal", actor=actor, run_id=run_id, details={"name": name})


@dataclass(frozen=True, slots=True)
class Decided:
    """A vote's effect: ``outcome`` is pending (quorum not reached), approved or rejected."""

    run_id: str
    name: str
    approved: bool
    outcome: str = "approved"
    approvals: int = 1
    quorum: int = 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "name": self.name,
            "approved": self.approved,
            "outcome": self.outcome,
            "approvals": self.approvals,
            "quorum": self.quorum,
        }


async def decide(
    client: Client,
    run_id: str,
    *,
    approved: bool,
    name: str | None = None,
    comment: str | None = None,
    by: str | None = None,
    role: str | None = None,
    via: str = "api",
) -> Decided:
    """Vote on the run's pending approval as ``by`` (with token ``role``).

    The vote is checked against the approval's assignees, self-approval rule and earlier
    votes; ``approved`` in the answer is this vote, ``outcome`` where the approval stands.
    """
    await _approval_policy(client, run_id, name, approved, by, comment)
    result = await client.vote_async(
        run_id, approved=approved, name=name, comment=comment, by=by, role=role, via=via
    )
    await record(
        client,
        "run.approve" if approved else "run.reject",
        actor=by,
        run_id=run_id,
        details={"name": result.name, "outcome": result.outcome},
    )
    return Decided(run_id, result.name, approved, result.outcome, result.approvals, result.quorum)


async def approve(
    client: Client,
    run_id: str,
    *,
    name: str | None = None,
    comment: str | None = None,
    by: str | None = None,
    role: str | None = None,
) -> Decided:
    """Approve the run's pending approval (``name`` when it waits for several)."""
    return await decide(client, run_id, approved=True, name=name, comment=comment, by=by, role=role)


async def reject(
    client: Client,
    run_id: str,
    *,
    name: str | None = None,
    comment: str | None = None,
    by: str | None = None,
    role: str | None = None,
) -> Decided:
    """Reject the run's pending approval; the workflow sees ``ApprovalRejected``."""
    return await decide(
        client, run_id, approved=False, name=name, comment=comment, by=by, role=role
    )


async def _approval_policy(
    client: Client,
    run_id: str,
    name: str | None,
    approved: bool,
    by: str | None,
    comment: str | None,
) -> None:
    """The policies' ``approval`` hook, when the client has policies; raises PolicyDenied."""
    policies = policies_of(client)
    if policies is None:
        return
    run = await client.get_run_async(run_id)
    await check_approval(
        policies,
        run_id=run_id,
        workflow=run.workflow,
        name=name,
        approved=approved,
        by=by,
        comment=comment,
    )


async def cancel(client: Client, run_id: str, *, actor: str | None = None) -> RunRecord:
    """Ask a run to stop. A run no worker picked up yet is cancelled at once."""
    run = await client.cancel_async(run_id)
    await record(client, "run.cancel", actor=actor, run_id=run_id)
    return run


async def fork(
    client: Client,
    run_id: str,
    *,
    from_step: int,
    new_run_id: str | None = None,
    actor: str | None = None,
) -> RunRecord:
    """Start a new run that replays ``run_id``'s calls before ``from_step``, then goes on live."""
    if from_step < 1:
        raise ValueError(f"--from-step counts calls from 1, got {from_step}")
    if new_run_id is not None and not new_run_id.strip():
        raise ValueError("the new run id must not be empty")
    # An id that is taken is refused by the store, atomically, with RunIdConflict.
    handle = await client.fork_async(run_id, from_step=from_step, new_run_id=new_run_id)
    details = {"from_step": from_step, "new_run_id": handle.id}
    await record(client, "run.fork", actor=actor, run_id=run_id, details=details)
    return await client.get_run_async(handle.id)
