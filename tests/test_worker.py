"""Worker leases with real time: heartbeats keep them, a takeover fences the old owner out."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
import time
import uuid
from pathlib import Path

import pytest

import spokehub as sh
from spokehub import Client, RetryPolicy, RunStatus, Settings, step, workflow
from spokehub.engine.events import EventKind

slow_calls: list[str] = []


@step(retry=RetryPolicy(max_attempts=1))
async def wk_slow(tag: str) -> str:
    slow_calls.append(tag)
    await asyncio.sleep(0.8)
    return tag


@workflow
async def wk_flow(tag: str) -> str:
    return await wk_slow(tag)


def short_lease(tmp_path: Path) -> Client:
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'w.db'}", lease_seconds=0.3, poll_interval=0.05
    )
    return Client(settings=settings)


def test_heartbeats_keep_the_lease_of_a_long_step(tmp_path: Path) -> None:
    with short_lease(tmp_path) as client:

        async def go() -> tuple[str, int]:
            handle = await client.start_async(wk_flow, "a")
            first = sh.Worker(client)
            rival = sh.Worker(client)  # would take the run over if the lease ran out
            task = asyncio.create_task(first.run(until_idle=True))
            await asyncio.sleep(0.5)  # past the 0.3 s lease, inside the 0.8 s step
            await rival.run(until_idle=True)
            await task
            run = await handle.get_async()
            return await handle.result_async(), run.recoveries

        result, recoveries = asyncio.run(go())
    assert result == "a"
    assert recoveries == 0
    assert slow_calls.count("a") == 1


def test_a_worker_whose_lease_was_taken_commits_nothing(tmp_path: Path) -> None:
    with short_lease(tmp_path) as client:

        async def go() -> str:
            handle = await client.start_async(wk_flow, "b")
            worker = sh.Worker(client)
            task = asyncio.create_task(worker.run(until_idle=True))
            while "b" not in slow_calls:  # noqa: ASYNC110 - another task fills it; bounded by the timeout
                await asyncio.sleep(0.01)
            # Another worker takes the run over (as after a long pause of this one).
            conn = sqlite3.connect(tmp_path / "w.db")
            conn.execute(
                "UPDATE runs SET lease_owner = 'thief', lease_epoch = lease_epoch + 1 WHERE id = ?",
                (handle.id,),
            )
            conn.commit()
            conn.close()
            await asyncio.wait_for(task, 5)
            return handle.id

        run_id = asyncio.run(go())
        run = client.get_run(run_id)
        kinds = [e.kind for e in client.events(run_id)]
    assert run.status is RunStatus.RUNNING
    assert run.lease_owner == "thief"
    assert EventKind.STEP_COMPLETED not in kinds  # fenced out (heartbeat first, commit second)


# -- an async step that blocks the event loop ----------------------------------------------------
blocking_calls: list[str] = []


@step(retry=RetryPolicy(max_attempts=1))
async def wk_blocks_the_loop(tag: str) -> str:
    blocking_calls.append(tag)
    time.sleep(2.0)  # noqa: ASYNC251 - the mistake under test: blocks the worker's loop
    return tag


@workflow
async def wk_blocking_flow(tag: str) -> str:
    return await wk_blocks_the_loop(tag)


def _rival(url: str, stop: threading.Event) -> None:
    """Another worker, on its own thread and loop, that takes every run whose lease ran out."""
    settings = Settings(database_url=url, lease_seconds=0.3, poll_interval=0.05)

    async def main() -> None:
        client = Client(settings=settings)
        try:
            worker = sh.Worker(client)
            task = asyncio.create_task(worker.run())
            while not stop.is_set():  # noqa: ASYNC110 - set by another thread
                await asyncio.sleep(0.02)
            worker.stop()
            await task
        finally:
            await client.close_async()

    asyncio.run(main())


def test_an_async_step_that_blocks_the_loop_keeps_its_lease_and_is_named(
    db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """time.sleep(2) in an async step with a 0.3 s lease: the heartbeat does not depend on the
    loop, so a rival worker never takes the run, the step runs once, and a warning names it."""
    settings = Settings(database_url=db_url, lease_seconds=0.3, poll_interval=0.05)
    tag = f"blocked-{uuid.uuid4().hex[:6]}"
    stop = threading.Event()
    rival = threading.Thread(target=_rival, args=(db_url, stop))
    with Client(settings=settings) as client, caplog.at_level(logging.WARNING):
        handle = client.start(wk_blocking_flow.options(run_id=tag), tag)

        async def go() -> None:
            worker = sh.Worker(client)
            task = asyncio.create_task(worker.run(until_idle=True))
            while tag not in blocking_calls:  # noqa: ASYNC110 - the step appends it
                await asyncio.sleep(0.01)
            await asyncio.wait_for(task, 20)

        rival.start()
        try:
            asyncio.run(go())
            assert handle.result(timeout=10) == tag
        finally:
            stop.set()
            rival.join(10)
        run = client.get_run(tag)
    assert blocking_calls.count(tag) == 1, "a rival took the run while its loop was blocked"
    assert run.recoveries == 0
    warnings = [
        r.getMessage() for r in caplog.records if "event loop has been blocked" in r.getMessage()
    ]
    assert warnings, "no warning about the blocked loop"
    assert "step 'wk_blocks_the_loop'" in warnings[0], warnings[0]
    assert tag in warnings[0], warnings[0]


# -- suspects: a run whose worker died runs alone ------------------------------------------------
@workflow
async def wk_suspect_flow(tag: str) -> str:
    return await wk_slow(tag)


def test_an_embedded_worker_runs_a_suspect_alone_in_its_own_process(db_url: str) -> None:
    """A run left by a dead worker is a suspect; ``client.execute`` (an embedded worker, which
    cannot hand it to a child process) runs it alone here, and it completes, uncharged."""
    settings = Settings(database_url=db_url, lease_seconds=0.3, poll_interval=0.05)
    with Client(settings=settings) as client:
        tag = f"suspect-{uuid.uuid4().hex[:6]}"
        handle = client.start(wk_suspect_flow.options(run_id=tag), tag)

        async def ghost_claims() -> None:  # a worker that takes the run and dies at once
            (claimed,) = await client.store.claim(
                owner="ghost:1:gone",
                queues=["default"],
                workflows=["wk_suspect_flow"],
                limit=1,
                now=client.clock.now(),
                lease_seconds=0.01,
                root_id=tag,
            )
            assert claimed.run.id == tag

        asyncio.run(ghost_claims())
        time.sleep(0.05)  # the ghost's lease runs out
        run = client.execute(tag)
        assert run.status is RunStatus.COMPLETED, run
        assert handle.result() == tag
        assert run.recoveries == 1
        assert slow_calls.count(tag) == 1


def test_an_isolation_process_drives_one_run_under_its_workers_lease(tmp_path: Path) -> None:
    """What ``python -m spokehub.runtime.isolation`` does per run, called here directly: it
    drives the run under the supervisor's owner and epoch, and refuses a stale lease."""
    from spokehub.runtime.isolation import NOIMPORT, TEMPFAIL, _drive_one

    with short_lease(tmp_path) as client:
        tag = f"isolated-{uuid.uuid4().hex[:6]}"
        handle = client.start(wk_suspect_flow.options(run_id=tag), tag)

        async def go() -> tuple[int, int, int]:
            (c,) = await client.store.claim(
                owner="sup:1:x",
                queues=["default"],
                workflows=["wk_suspect_flow"],
                limit=1,
                now=client.clock.now(),
                lease_seconds=30,
                root_id=tag,
            )
            spec = {"run_id": tag, "owner": "sup:1:x", "module": __name__}
            missing = await _drive_one(client, {**spec, "module": "no_such_module_zz"})
            stale = await _drive_one(client, {**spec, "epoch": c.epoch - 1})
            return missing, stale, await _drive_one(client, {**spec, "epoch": c.epoch})

        missing, stale, done = asyncio.run(go())
        assert (missing, stale, done) == (NOIMPORT, TEMPFAIL, 0)
        assert handle.result() == tag
