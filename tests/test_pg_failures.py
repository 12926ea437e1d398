"""Failures of single workers on PostgreSQL, with real processes and a real server.

Each test starts ``pg_chaos_worker.py`` processes (or the ``spokehub worker`` command) on a
fresh schema, does something bad to one of them (SIGSTOP past its lease, SIGTERM mid-step,
a step that kills its own process, its LISTEN connection terminated by the server, a skewed
clock, its store connection terminated in the middle of a group commit), and checks
spokehub's ledger against the external ledger the steps write (``pg_chaos_ledger``). They
fail, never skip, under ``SPOKEHUB_REQUIRE_POSTGRES=1``.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import signal
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from spokehub import Client, EventKind, RunStatus, Settings, Worker
from spokehub.runtime.clock import Clock, DatabaseClock
from tests import pg_chaos_app as app
from tests import pg_chaos_ledger as ledger
from tests.crash_ledger import check_ledger
from tests.pg_chaos_support import HERE, WorkerProcess, local_ports, wait_until

FAST = {
    "SPOKEHUB_LEASE_SECONDS": "2",
    "SPOKEHUB_POLL_INTERVAL": "0.2",
    "SPOKEHUB_INLINE_WAIT": "0.1",
}


@dataclass
class Scene:
    """A schema, an external ledger, a client, and the worker processes of one test."""

    url: str
    tmp: Path
    client: Client
    workers: list[WorkerProcess] = field(default_factory=list)

    @property
    def ledger_path(self) -> Path:
        return self.tmp / "ledger.db"

    def worker(self, name: str, concurrency: int = 2, **settings: str) -> WorkerProcess:
        proc = WorkerProcess(
            self.url,
            self.ledger_path,
            self.tmp / f"{name}.log",
            concurrency=concurrency,
            settings={**FAST, **settings},
        )
        self.workers.append(proc)
        return proc

    def attempts(self, run_id: str, step: str | None = None) -> list[ledger.Attempt]:
        return [
            a
            for a in ledger.attempts(self.ledger_path)
            if a.run == run_id and (step is None or a.step == step)
        ]

    def completed(self, run_id: str) -> dict[int, list[dict[str, object]]]:
        """seq -> the data of its step_completed events (there must be one per step)."""
        events = self.client.events(run_id)
        check_ledger(events)
        out: dict[int, list[dict[str, object]]] = {}
        for e in events:
            if e.kind is EventKind.STEP_COMPLETED:
                assert e.seq is not None
                out.setdefault(e.seq, []).append(e.data)
        return out


@contextlib.contextmanager
def _scene(url: str, tmp_path: Path) -> Iterator[Scene]:
    ledger.create(tmp_path / "ledger.db")
    client = Client(settings=Settings(database_url=url, poll_interval=0.05))
    s = Scene(url, tmp_path, client)
    try:
        yield s
    finally:
        for w in s.workers:
            if w.alive():
                w.signal(signal.SIGCONT)  # a stopped process would not die of SIGKILL here
            w.kill()
        client.close()


@pytest.fixture
def scene(pg_url: str, tmp_path: Path) -> Iterator[Scene]:
    with _scene(pg_url, tmp_path) as s:
        yield s


@pytest.fixture
def any_scene(db_url: str, tmp_path: Path) -> Iterator[Scene]:
    """The same, on SQLite (one file shared by the worker processes) and on PostgreSQL."""
    with _scene(db_url, tmp_path) as s:
        yield s


def lease_lost_logged(worker: WorkerProcess) -> bool:
    return re.search(r"lease lost|no longer leased", worker.log_text()) is not None


# -- 1. a paused worker ------------------------------------------------------------------------
def test_a_paused_worker_cannot_commit_its_stale_result(scene: Scene) -> None:
    a = scene.worker("a", concurrency=1)
    handle = scene.client.start(app.long_flow.options(run_id="paused"), 4.0)
    wait_until(lambda: scene.attempts("paused", "slow_effect"), 15, "A to start the long step")
    a.signal(signal.SIGSTOP)
    stopped = time.time()
    try:
        b = scene.worker("b", concurrency=1)
        result = handle.result(timeout=40)  # B takes the run over once A's lease ran out
        before = scene.client.events("paused")
    finally:
        a.signal(signal.SIGCONT)
    wait_until(lambda: lease_lost_logged(a), 20, "A to notice that it lost the lease")
    # A's step (asleep while A was stopped) is overdue: let A do whatever it still can.
    time.sleep(1.0)

    assert a.alive(), "the paused worker died after SIGCONT"
    assert scene.client.events("paused") == before, "the stale worker changed the ledger"
    slow = scene.attempts("paused", "slow_effect")
    # B recovers the run as a suspect (its worker vanished) and runs it alone in a child.
    assert [x.by({a.pid, b.pid}) for x in slow] == [a.pid, b.pid], slow
    assert slow[1].started > stopped + 1.0, "B took the run before A's lease ran out"
    completed = scene.completed("paused")
    assert sorted(completed) == [1, 2]
    assert all(len(v) == 1 for v in completed.values()), completed
    (recorded,) = completed[1]
    assert recorded["result"] == result["slow"]
    assert result["slow"]["pid"] == slow[1].pid
    assert result["quick"]["pid"] == slow[1].pid
    # The effect was applied once, by B; A's late execution (if it got that far) was refused.
    (effect,) = [e for e in ledger.effects(scene.ledger_path) if e.key == "paused:1"]
    assert effect.token == slow[1].token
    assert slow[0].applied in (None, 0), slow[0]
    run = scene.client.get_run("paused")
    assert run.status is RunStatus.COMPLETED
    assert run.recoveries == 1


# -- 2. the LISTEN connection terminated ---------------------------------------------------------
def _listener_backends(scene: Scene, pid: int) -> set[int]:
    import psycopg

    ports = sorted(local_ports(pid))
    if not ports:
        return set()
    with psycopg.connect(scene.url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE query LIKE 'LISTEN%%' "
            "AND client_port = ANY(%s)",
            (ports,),
        ).fetchall()
    return {r[0] for r in rows}


def _pickup_latency(scene: Scene, run_id: str, n: int) -> float:
    started = time.time()
    scene.client.start(app.quick_flow.options(run_id=run_id), n)
    wait_until(lambda: scene.attempts(run_id), 15, f"a worker to pick up {run_id}")
    return scene.attempts(run_id)[0].started - started


def test_work_is_picked_up_promptly_after_the_listen_connection_is_killed(scene: Scene) -> None:
    import psycopg

    # Polling every 30 s: only a notification can explain a pick-up within seconds.
    w = scene.worker("w", SPOKEHUB_POLL_INTERVAL="30", SPOKEHUB_LEASE_SECONDS="30")
    wait_until(lambda: _listener_backends(scene, w.pid), 10, "the worker to LISTEN")
    time.sleep(0.5)  # let the worker go idle on its 30 s poll
    first = _listener_backends(scene, w.pid)
    assert len(first) == 1, first
    before = _pickup_latency(scene, "probe-before", 1)
    assert before < 2.0, f"a new run waited {before:.2f}s with a live listener"

    time.sleep(0.5)
    with psycopg.connect(scene.url, autocommit=True) as conn:
        row = conn.execute("SELECT pg_terminate_backend(%s)", (next(iter(first)),)).fetchone()
    assert row is not None
    assert row[0], "the LISTEN backend was not terminated"
    after = _pickup_latency(scene, "probe-after", 2)
    assert after < 3.0, f"after the LISTEN connection died, a new run waited {after:.2f}s"
    wait_until(
        lambda: bool(_listener_backends(scene, w.pid) - first), 10, "the listener to reconnect"
    )
    assert re.search(r"LISTEN connection .* lost", w.log_text()), "no reconnect was logged"
    assert scene.client.handle("probe-after").result(timeout=10) == [20]
    print(f"pick-up latency: {before:.3f}s before, {after:.3f}s after the kill")


# -- 3. SIGTERM drains -------------------------------------------------------------------------
def _check_drained(scene: Scene, a: WorkerProcess, run_id: str, termed: float) -> None:
    """A got SIGTERM during the slow step of ``run_id`` and exited: check, then finish it."""
    exited = time.time()
    slow = scene.attempts(run_id, "slow_effect")
    assert len(slow) == 1, slow
    assert slow[0].pid == a.pid, slow
    assert slow[0].outcome == "ok", f"the in-flight step was cut instead of drained: {slow}"
    assert slow[0].ended is not None
    assert termed < slow[0].ended < exited
    assert scene.completed(run_id)[1][0]["result"]["token"] == slow[0].token  # type: ignore[index]
    run = scene.client.get_run(run_id)
    assert run.status is RunStatus.WAITING, run
    assert run.lease_owner is None, run

    b = scene.worker("b")
    result = scene.client.handle(run_id).result(timeout=20)
    assert result["slow"]["token"] == slow[0].token
    assert result["quick"]["pid"] == b.pid
    assert len(scene.attempts(run_id, "slow_effect")) == 1, "the drained step ran again"
    assert [x.pid for x in scene.attempts(run_id, "quick_effect")] == [b.pid]
    completed = scene.completed(run_id)
    assert sorted(completed) == [1, 2]
    assert all(len(v) == 1 for v in completed.values())
    assert scene.client.get_run(run_id).recoveries == 0, "a drained run counted as a recovery"


def test_a_worker_given_sigterm_mid_step_drains_and_hands_the_run_over(scene: Scene) -> None:
    a = scene.worker("a", SPOKEHUB_DRAIN_TIMEOUT="10")
    scene.client.start(app.long_flow.options(run_id="drain"), 2.0)
    wait_until(lambda: scene.attempts("drain", "slow_effect"), 15, "A to start the slow step")
    termed = time.time()
    a.signal(signal.SIGTERM)
    assert a.wait(timeout=20) == 0
    assert time.time() - termed < 10 + 5, "the worker overran its drain timeout"
    _check_drained(scene, a, "drain", termed)


def test_the_worker_command_drains_on_sigterm(scene: Scene) -> None:
    """``spokehub worker`` is what deployments send SIGTERM to: it must drain as well."""
    cmd = [
        sys.executable,
        "-m",
        "spokehub.cli",
        "--db",
        scene.url,
        "worker",
        "--app",
        "tests.pg_chaos_app",
        "--concurrency",
        "2",
    ]
    log = scene.tmp / "cli.log"
    a = WorkerProcess(
        scene.url,
        scene.ledger_path,
        log,
        command=cmd,
        settings={**FAST, "SPOKEHUB_DRAIN_TIMEOUT": "10", "PYTHONPATH": str(HERE.parent)},
    )
    scene.workers.append(a)
    wait_until(lambda: "queues" in log.read_text(), 30, "the worker command to start")
    scene.client.start(app.long_flow.options(run_id="cli-drain"), 2.0)
    wait_until(lambda: scene.attempts("cli-drain", "slow_effect"), 15, "the slow step to start")
    termed = time.time()
    a.signal(signal.SIGTERM)
    assert a.wait(timeout=20) == 0, a.log_text()
    _check_drained(scene, a, "cli-drain", termed)


# -- 4. poison isolation -----------------------------------------------------------------------
MAX_RECOVERIES = 3
# Per phase. Over 150 runs, p99 is not the slowest run: the poison's first crash is in a
# shared worker, and the one healthy run beside it pays for its recovery, as any run does
# whose worker dies (nobody can know the poison before it strikes).
HEALTHY = 150
START_EVERY = 0.05  # seconds between starts: about half of what the workers can do


class Fleet:
    """Worker processes that a supervisor restarts when they die (as systemd would)."""

    def __init__(self, scene: Scene, size: int, concurrency: int) -> None:
        self.scene = scene
        self.concurrency = concurrency
        self.settings = {"SPOKEHUB_MAX_RECOVERIES": str(MAX_RECOVERIES)}
        self.slots = [self._spawn(i) for i in range(size)]
        self.deaths = 0

    def _spawn(self, i: int) -> WorkerProcess:
        n = len(self.scene.workers)
        return self.scene.worker(f"w{i}-{n}", concurrency=self.concurrency, **self.settings)

    def restart_dead(self) -> None:
        for i, w in enumerate(self.slots):
            if not w.alive():
                w.wait(5)
                self.deaths += 1
                self.slots[i] = self._spawn(i)

    def pids(self) -> set[int]:
        return {w.pid for w in self.scene.workers}


def _p99(values: list[float]) -> float:
    ordered = sorted(values)
    rank = 0.99 * (len(ordered) - 1)
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def _healthy_latencies(scene: Scene, fleet: Fleet, tag: str, poison: bool) -> list[float]:
    """Start HEALTHY runs at a steady pace (and the poison run among the first ones); return
    each healthy run's latency from start to finish, as the database recorded it."""
    handles = []
    for i in range(HEALTHY):
        if poison and i == 3:
            scene.client.start(app.poison_flow.options(run_id="poison"))
        handles.append(scene.client.start(app.quick_flow.options(run_id=f"{tag}-{i}"), i, 2))
        fleet.restart_dead()
        time.sleep(START_EVERY)
    ids = [h.id for h in handles] + (["poison"] if poison else [])
    deadline = time.monotonic() + 90
    while not all(scene.client.get_run(i).status.finished for i in ids):
        assert time.monotonic() < deadline, "the runs did not finish within 90 s"
        fleet.restart_dead()
        time.sleep(0.05)
    latencies = []
    for h in handles:
        run = h.get()
        assert run.status is RunStatus.COMPLETED, run  # never dead-lettered by another run
        assert run.finished_at is not None
        latencies.append(run.finished_at - run.created_at)
    return latencies


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_a_poison_run_is_dead_lettered_and_healthy_runs_keep_their_latency(
    any_scene: Scene,
) -> None:
    """Workers shared by several runs (concurrency 2): the poison run's step kills the process
    that runs it. Its first death is a shared worker's; after that it is a suspect and runs
    alone in a child process, where each death is a strike; at MAX_RECOVERIES strikes it is
    dead-lettered. Healthy runs are never charged, and their p99 latency stays within twice
    the baseline measured in the same test without the poison, before and after (the shared
    machine's load drifts: the higher of the two is the baseline)."""
    scene = any_scene
    fleet = Fleet(scene, size=3, concurrency=2)
    before = _healthy_latencies(scene, fleet, "before", poison=False)
    assert fleet.deaths == 0
    with_poison = _healthy_latencies(scene, fleet, "healthy", poison=True)
    deaths = fleet.deaths
    after = _healthy_latencies(scene, fleet, "after", poison=False)
    baseline = max((before, after), key=_p99)

    run = scene.client.get_run("poison")
    assert run.status is RunStatus.FAILED, run
    assert run.error is not None
    assert run.error["type"] == "DeadLettered", run.error
    assert f"alone {MAX_RECOVERIES} times" in run.error["message"]
    events = scene.client.events("poison")
    assert events[-1].kind is EventKind.RUN_FINISHED
    assert events[-1].data["error"] == run.error
    executions = scene.attempts("poison")
    assert len(executions) == MAX_RECOVERIES + 1, executions  # the shared one, then alone
    workers = fleet.pids()
    first, *isolated = executions
    assert first.pid in workers  # it killed a shared worker once...
    assert all(x.pid not in workers and x.ppid in workers for x in isolated), executions
    assert deaths == fleet.deaths == 1  # ...and only child processes after that
    charged = [r for r in scene.client.list_runs(limit=1000) if r.id != "poison" and r.error]
    assert not charged, charged
    p99_base, p99_poison = _p99(baseline), _p99(with_poison)
    print(
        f"poison isolation: healthy p99 {p99_poison:.3f}s with the poison run, "
        f"{p99_base:.3f}s baseline (before {_p99(before):.3f}s, after {_p99(after):.3f}s; "
        f"ratio {p99_poison / p99_base:.2f}); "
        f"{len(executions)} poison executions, {fleet.deaths} worker death(s); slowest "
        f"{[round(x, 2) for x in sorted(with_poison)[-5:]]} vs "
        f"{[round(x, 2) for x in sorted(baseline)[-5:]]}"
    )
    assert p99_poison <= 2 * p99_base, (p99_poison, p99_base)


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_a_healthy_run_survives_more_outside_kills_than_the_dead_letter_limit(
    any_scene: Scene,
) -> None:
    """SIGKILL the worker that holds a healthy run, in the middle of its step, more times than
    MAX_RECOVERIES: outside kills are never charged to the run, which completes."""
    scene = any_scene
    fleet = Fleet(scene, size=2, concurrency=2)
    handle = scene.client.start(app.long_flow.options(run_id="bystander"), 1.5)
    kills = MAX_RECOVERIES + 2
    for k in range(kills):
        wait_until(lambda k=k: len(scene.attempts("bystander")) > k, 30, f"execution {k + 1}")
        holder = scene.client.get_run("bystander").lease_owner
        assert holder is not None
        pid = int(holder.split(":")[1])
        (victim,) = [w for w in fleet.slots if w.pid == pid]
        victim.kill()  # the worker process (an isolation child dies with it)
        fleet.restart_dead()
    deadline = time.monotonic() + 60
    while not scene.client.get_run("bystander").status.finished:
        assert time.monotonic() < deadline, "the run did not finish within 60 s"
        fleet.restart_dead()
        time.sleep(0.05)
    run = scene.client.get_run("bystander")
    assert run.status is RunStatus.COMPLETED, run
    assert run.recoveries == kills
    assert handle.result()["slow"]["v"] == 1
    slow = scene.attempts("bystander", "slow_effect")
    assert len(slow) == kills + 1, slow
    assert all(x.ended is None for x in slow[:-1]), "a kill did not land inside the step"


# -- 5. a skewed clock -------------------------------------------------------------------------
class SkewedClock:
    """The local clock, ``offset`` seconds off."""

    def __init__(self, offset: float) -> None:
        self.offset = offset

    def now(self) -> float:
        return time.time() + self.offset


async def _sleep_across_workers(url: str, ledger_path: Path, run_id: str, clock: Clock) -> float:
    """A skewed worker runs ``sleepy_flow`` to its 3 s sleep; a correct one finishes it.

    Returns the real time between the end of the step before the sleep and the start of the
    step after it.
    """
    skewed = Client(settings=Settings(database_url=url, poll_interval=0.05), clock=clock)
    correct = Client(settings=Settings(database_url=url, poll_interval=0.05))
    try:
        handle = await correct.start_async(app.sleepy_flow.options(run_id=run_id), 3.0)
        # inline_wait=0: the skewed worker commits the timer and unloads the run at once.
        await Worker(skewed, inline_wait=0).run(until_idle=True)
        assert (await handle.get_async()).status is RunStatus.WAITING
        worker = Worker(correct)
        task = asyncio.create_task(worker.run())
        try:
            assert await handle.result_async(timeout=30) == [1, 2]
        finally:
            worker.stop()
            await task
    finally:
        await skewed.close_async()
        await correct.close_async()
    (before,) = [a for a in ledger.attempts(ledger_path) if a.run == run_id and a.seq == 1]
    (after,) = [a for a in ledger.attempts(ledger_path) if a.run == run_id and a.seq == 3]
    assert before.ended is not None
    return after.started - before.ended


def test_a_worker_with_a_skewed_clock_fires_nothing_early(
    scene: Scene, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ledger.LEDGER_ENV, str(scene.ledger_path))
    behind = SkewedClock(-120.0)
    slept = asyncio.run(
        _sleep_across_workers(scene.url, scene.ledger_path, "db-clock", DatabaseClock(behind))
    )
    assert slept >= 3.0 - 0.05, f"a 3 s sleep ended after {slept:.3f}s of real time"
    # The control: the same skew read as it is sets a due time 117 s in the past, which the
    # correct worker finds due at once. This is what DatabaseClock prevents.
    early = asyncio.run(_sleep_across_workers(scene.url, scene.ledger_path, "raw-clock", behind))
    assert early < 3.0 - 1.0, f"the skewed clock did not fire early ({early:.3f}s)"
    print(f"3 s sleep: {slept:.3f}s with DatabaseClock, {early:.3f}s with the raw skewed clock")


# -- 6. the server kills the store's connection in the middle of a group commit ----------------
def test_a_connection_killed_during_a_group_commit_fails_that_batch_not_the_store(
    pg_url: str,
) -> None:
    """What a server restart does to a worker that is committing several runs at once.

    The store's one database thread commits queued operations together, each in a
    savepoint. Here the server terminates the connection while the second batch runs: its
    operations must fail (``StoreError``), and the next operation must reconnect. A store
    whose database thread died instead would leave every later call waiting forever: a
    worker that is alive but heartbeats and commits nothing.
    """
    from spokehub import StoreError
    from spokehub.store.base import Tx

    def hold(tx: Tx) -> str:  # keeps the thread busy while the next batch queues up
        tx.execute("SELECT pg_sleep(0.3)")
        return "held"

    def killed(tx: Tx) -> str:
        tx.execute("SELECT pg_terminate_backend(pg_backend_pid())")
        return "not reached"

    def fine(tx: Tx) -> int:
        return int(tx.execute("SELECT 1").fetchone()[0])

    async def scenario() -> list[object]:
        client = Client(settings=Settings(database_url=pg_url))
        await client.ensure_schema()
        store = client.store
        try:
            first = asyncio.ensure_future(store.transact(hold))
            await asyncio.sleep(0.1)
            batch = asyncio.gather(
                store.transact(killed), store.transact(fine), return_exceptions=True
            )
            outcomes: list[object] = list(await asyncio.wait_for(batch, 10))
            outcomes.append(await first)
            for _ in range(2):  # the first may still meet the broken connection
                with contextlib.suppress(StoreError):
                    outcomes.append(await asyncio.wait_for(store.transact(fine), 10))
                    break
            return outcomes
        finally:
            await client.close_async()

    outcomes = asyncio.run(scenario())
    assert isinstance(outcomes[0], StoreError), outcomes
    assert outcomes[2:] == ["held", 1], outcomes
