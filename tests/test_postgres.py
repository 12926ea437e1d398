"""What only PostgreSQL deployments do: many workers on queues with limits, moving an embedded
database over, refusing a server that may lose commits. (Every other test of the suite runs on
PostgreSQL too, through the parametrised ``db_url`` fixture.)"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from spokehub import (
    Client,
    ConfigurationError,
    Queue,
    RunStatus,
    Settings,
    Worker,
    step,
    wait_for_signal,
    workflow,
)
from spokehub.cli.app import app
from spokehub.runtime.clock import DatabaseClock
from spokehub.testing import run_until_idle

# -- queues with limits, across several workers ----------------------------------------------
limited = Queue("pg-limited", concurrency=3, worker_concurrency=2, key_concurrency=1)
IN_FLIGHT: dict[str, int] = {"now": 0, "max": 0}
BY_KEY: dict[str, int] = {}
KEY_MAX: dict[str, int] = {}


@step
async def pg_busy(key: str) -> str:
    IN_FLIGHT["now"] += 1
    IN_FLIGHT["max"] = max(IN_FLIGHT["max"], IN_FLIGHT["now"])
    BY_KEY[key] = BY_KEY.get(key, 0) + 1
    KEY_MAX[key] = max(KEY_MAX.get(key, 0), BY_KEY[key])
    try:
        await asyncio.sleep(0.05)
    finally:
        IN_FLIGHT["now"] -= 1
        BY_KEY[key] -= 1
    return key


@workflow(queue=limited)
async def pg_tenant_job(key: str) -> str:
    return await pg_busy(key)


def test_queue_limits_hold_across_workers(pg_url: str) -> None:
    settings = Settings(database_url=pg_url, poll_interval=0.05)

    async def main() -> tuple[list[Any], int]:
        clients = [Client(settings=settings) for _ in range(3)]
        try:
            starter = clients[0]
            handles = [
                await starter.start_async(
                    pg_tenant_job.options(concurrency_key=f"t{i % 4}"), f"t{i % 4}"
                )
                for i in range(16)
            ]
            workers = [Worker(c, queues=["pg-limited"], concurrency=8) for c in clients]
            tasks = [asyncio.create_task(w.run()) for w in workers]
            results = [await h.result_async(timeout=60) for h in handles]
            for w in workers:
                w.stop()
            await asyncio.gather(*tasks)
            return results, max(w.completed_activations for w in workers)
        finally:
            for c in clients:
                await c.close_async()

    results, _ = asyncio.run(main())
    assert sorted(results) == sorted(f"t{i % 4}" for i in range(16))
    assert 2 <= IN_FLIGHT["max"] <= 3  # runs overlapped, up to the global concurrency
    assert KEY_MAX
    assert max(KEY_MAX.values()) == 1


# -- moving an embedded database to PostgreSQL ------------------------------------------------
@step
async def pg_double(x: int) -> int:
    return 2 * x


@workflow
async def pg_moving(x: int) -> int:
    first = await pg_double(x)
    approved = await wait_for_signal("go")
    return first + int(approved)


def test_db_copy_moves_runs_with_their_history_and_they_resume(tmp_path: Path, pg_url: str) -> None:
    sqlite_url = f"sqlite:///{tmp_path / 'embedded.db'}"
    with Client(settings=Settings(database_url=sqlite_url, poll_interval=0.05)) as embedded:
        done = embedded.start(pg_moving, 1)
        run_until_idle(embedded)
        embedded.send_signal(done.id, "go", 1)
        run_until_idle(embedded)
        assert done.result() == 3
        waiting = embedded.start(pg_moving.options(run_id="half-way"), 20)
        run_until_idle(embedded)
        assert waiting.status() is RunStatus.WAITING
        before = {r.id: embedded.events(r.id) for r in embedded.list_runs()}

    result = CliRunner().invoke(app, ["db", "copy", "--from", sqlite_url, "--to", pg_url, "--json"])
    assert result.exit_code == 0, result.output
    copied = json.loads(result.stdout)["rows"]
    assert copied["runs"] == 2
    assert copied["events"] == sum(len(e) for e in before.values())
    assert copied["inbox"] == 1

    with Client(settings=Settings(database_url=pg_url, poll_interval=0.05)) as moved:
        for run_id, events in before.items():
            assert moved.events(run_id) == events  # the ledger, event for event
        assert moved.get_run(done.id).result == 3
        moved.send_signal("half-way", "go", 2)  # inbox ids continue past the copied ones
        run_until_idle(moved)
        assert moved.get_run("half-way").result == 42
        assert [e.kind.value for e in moved.events("half-way")][-1] == "run_finished"

    again = CliRunner().invoke(app, ["db", "copy", "--from", sqlite_url, "--to", pg_url])
    assert again.exit_code != 0
    assert "already holds 2 run(s)" in again.output


# -- durability --------------------------------------------------------------------------------
def _with_option(url: str, option: str) -> str:
    return url.replace("options=", f"options=-c%20{option}%20", 1)


def test_a_server_that_may_lose_commits_is_refused_unless_asked(pg_url: str) -> None:
    unsafe = _with_option(pg_url, "synchronous_commit%3Doff")
    with pytest.raises(ConfigurationError, match="synchronous_commit=off") as refused:
        Client(settings=Settings(database_url=unsafe))
    assert "SPOKEHUB_UNSAFE_DURABILITY" in str(refused.value)
    with Client(settings=Settings(database_url=unsafe, unsafe_durability=True)) as c:
        assert c.list_runs() == []
    result = CliRunner().invoke(app, ["--db", unsafe, "runs", "list"])
    assert result.exit_code == 2
    assert "synchronous_commit=off" in result.output
    ok = CliRunner().invoke(app, ["--db", unsafe, "--unsafe-durability", "runs", "list"])
    assert ok.exit_code == 0, ok.output


# -- time ------------------------------------------------------------------------------------
class _Behind:
    def now(self) -> float:
        return time.time() - 3600.0


def test_database_clock_corrects_a_skewed_worker(pg_url: str) -> None:
    clock = DatabaseClock(_Behind())
    with Client(settings=Settings(database_url=pg_url), clock=clock) as c:
        c.list_runs()  # connects and syncs
        assert clock.synced
        assert abs(clock.now() - time.time()) < 1.0  # an hour of skew, corrected
        assert clock.offset == pytest.approx(3600.0, abs=1.0)


# -- a lost connection -----------------------------------------------------------------------
BACKEND: dict[str, int] = {}
CUT: list[int] = []


@step
async def pg_cut_connection(n: int) -> int:
    """On its first execution, the server drops the worker's store connection meanwhile."""
    if not CUT:
        import psycopg

        from tests.pg import BASE_URL

        with psycopg.connect(BASE_URL, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (BACKEND["pid"],))
    CUT.append(n)
    return n + 1


@workflow
async def pg_survives_a_cut(n: int) -> int:
    return await pg_cut_connection(n) * 10


def test_a_lost_commit_hands_the_run_back_at_once(pg_url: str) -> None:
    """The commit of a step's result meets a dropped connection: the run is released (not left
    to its lease, not counted as a recovery) and resumes from its ledger."""
    # One run at a time and slow polls: the commit is the worker's next database operation.
    settings = Settings(database_url=pg_url, lease_seconds=60, poll_interval=5.0)

    async def main() -> tuple[Any, float]:
        async with asyncio.timeout(30):
            client = Client(settings=settings)  # the worker's: its connection is dropped
            watcher = Client(settings=settings)
            try:
                await client.ensure_schema()
                BACKEND["pid"] = await client.store.transact(
                    lambda tx: int(tx.execute("SELECT pg_backend_pid()").fetchone()[0])
                )
                handle = await watcher.start_async(pg_survives_a_cut, 4)
                began = time.monotonic()
                worker = Worker(client, concurrency=1)
                task = asyncio.create_task(worker.run())
                result = await handle.result_async(timeout=20)
                took = time.monotonic() - began
                worker.stop()
                await task
                return (result, await watcher.get_run_async(handle.id)), took
            finally:
                await client.close_async()
                await watcher.close_async()

    (result, run), took = asyncio.run(main())
    assert result == 50
    assert run.recoveries == 0  # released, not recovered
    assert len(CUT) == 2  # the lost result ran again: at least once, as documented
    assert took < 15, f"the run waited {took:.1f}s, as if for its 60 s lease"


# -- closing ----------------------------------------------------------------------------------
def test_closing_a_listening_store_does_not_wait_out_a_poll_timeout(pg_url: str) -> None:
    """The LISTEN thread is woken by close(): no second-long wait at the end of every process.

    (Speed figures are in benchmarks/README.md; this bound is ten times the real figure and
    well under the 1 s poll the listener used to wait out.)"""
    from spokehub.store.postgres import PostgresStore

    async def main() -> float:
        store = PostgresStore(Settings(database_url=pg_url))
        await store.migrate()
        unsubscribe = store.subscribe(lambda queue: None)
        listener = store._listener
        assert listener is not None
        for _ in range(1000):  # up to 10 s for the LISTEN connection
            if listener.connects:
                break
            await asyncio.sleep(0.01)
        assert listener.connects == 1
        await asyncio.sleep(0.05)  # the thread is now waiting for notifications
        unsubscribe()
        begin = time.perf_counter()
        await store.close()
        took = time.perf_counter() - begin
        assert not listener._thread.is_alive()
        return took

    took = asyncio.run(main())
    assert took < 0.3, f"closing the store took {took:.2f}s"
