"""Cancelling a run while one of its steps is in flight (issue 8, defect 1).

Once a cancel is acknowledged no new call starts; the step in flight finishes, completed
steps are compensated, and the run ends ``cancelled``, also when that step was the last call.
"""

from __future__ import annotations

import asyncio

import pytest

import spokehub as sh
from spokehub import Client, RunStatus, Settings, step, workflow
from spokehub.engine.events import EventKind
from spokehub.store.base import NewRun
from spokehub.testing import run_until_idle

log: list[str] = []
settings_of_test: dict[str, Settings] = {}


def _cancel_from_outside() -> None:
    """Acknowledge a cancel of the current run through a second client, as an API call would."""
    run_id = sh.step_context().run_id
    with Client(settings=settings_of_test["s"]) as other:
        other.cancel(run_id)


def cx_undo(result: str, item: str) -> None:
    log.append(f"undo {item}")


@step(compensate=cx_undo)
def cx_book(item: str) -> str:
    log.append(f"book {item}")
    if item.startswith("cancel"):
        _cancel_from_outside()
    return item


@step(compensate=cx_undo)
async def cx_book_async(item: str) -> str:
    log.append(f"book {item}")
    if item.startswith("cancel"):
        run_id = sh.step_context().run_id
        async with _AsyncOther() as other:
            await other.cancel_async(run_id)
    return item


class _AsyncOther:
    async def __aenter__(self) -> Client:
        self.client = Client(settings=settings_of_test["s"])
        return self.client

    async def __aexit__(self, *exc: object) -> None:
        await self.client.close_async()


@workflow
def cx_two(first: str, second: str) -> list[str]:
    return [cx_book(first), cx_book(second)]


@workflow
async def cx_two_async(first: str, second: str) -> list[str]:
    return [await cx_book_async(first), await cx_book_async(second)]


@pytest.fixture(autouse=True)
def _share(client: Client) -> None:
    log.clear()
    settings_of_test["s"] = client.settings


def _assert_cancelled(client: Client, handle: sh.RunHandle[object]) -> None:
    assert handle.status() is RunStatus.CANCELLED
    with pytest.raises(sh.RunCancelledError):
        handle.result()
    kinds = [e.kind for e in client.events(handle.id)]
    assert EventKind.CANCEL_REQUESTED in kinds
    assert kinds[-1] is EventKind.RUN_FINISHED


def test_cancel_during_first_step_starts_no_new_call(client: Client) -> None:
    handle = client.start(cx_two, "cancel-a", "b")
    run_until_idle(client)
    assert log == ["book cancel-a", "undo cancel-a"]  # step b never started
    _assert_cancelled(client, handle)
    started = [e for e in client.events(handle.id) if e.kind is EventKind.STEP_STARTED]
    assert [e.seq for e in started] == [1]


def test_cancel_during_the_last_step_still_ends_cancelled(client: Client) -> None:
    handle = client.start(cx_two, "a", "cancel-b")
    run_until_idle(client)
    assert log == ["book a", "book cancel-b", "undo cancel-b", "undo a"]
    _assert_cancelled(client, handle)


def test_cancel_during_an_async_step(client: Client) -> None:
    handle = client.start(cx_two_async, "cancel-a", "b")
    run_until_idle(client)
    assert log == ["book cancel-a", "undo cancel-a"]
    _assert_cancelled(client, handle)


def test_replay_after_an_early_cancel_matches_the_live_run(client: Client) -> None:
    """A worker that dies right after committing the cancel: the next one replays the ledger
    and must apply the cancel before the in-flight step's result, as the live run did."""
    live = client.start(cx_two, "cancel-a", "b")
    run_until_idle(client)
    events = client.events(live.id)
    cancel = next(e for e in events if e.kind is EventKind.CANCEL_REQUESTED)
    completed = next(e for e in events if e.kind is EventKind.STEP_COMPLETED)
    assert cancel.position > completed.position
    assert cancel.data["before"] == completed.position
    assert cancel.v == 2
    ledger = [e for e in events if e.position <= cancel.position]
    run = live.get()
    asyncio.run(
        client.store.insert_run(
            NewRun(
                id="replayed",
                workflow=run.workflow,
                version=run.version,
                queue=run.queue,
                input=run.input,
                input_hash=run.input_hash,
                events=tuple(ledger),
            ),
            client.clock.now(),
        )
    )
    log.clear()
    run_until_idle(client)
    assert log == ["undo cancel-a"]  # nothing booked again, b never started
    replayed = client.handle("replayed")
    _assert_cancelled(client, replayed)
    started = [e for e in client.events("replayed") if e.kind is EventKind.STEP_STARTED]
    assert [e.seq for e in started] == [1]
