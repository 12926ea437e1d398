"""Chaos on PostgreSQL: worker processes SIGKILLed and restarted, the server crash-restarted.

Several hundred runs of ``pg_chaos_app.chaos_flow`` (five steps: sequential, a parallel pair,
async and sync, transient failures that are retried, a durable sleep in a quarter of them)
are executed by three worker processes while the test

* SIGKILLs a random worker every one to three seconds and starts a new one in its place;
* crash-restarts PostgreSQL (``pg_ctl -m immediate``) once mid-run, and once right after a
  SIGKILL, while the dead worker's runs wait to be recovered by the others. The server is a
  throwaway cluster of the test's own (``tests/pg_cluster.py``: ``initdb`` in a temporary
  directory, a free port), never the machine's PostgreSQL.

Then it audits spokehub's ledger against the external ledger the steps write
(``pg_chaos_ledger``): every run completed with the right result; each step's effect was
applied exactly once under its idempotency key; no recorded step executed again; no two
workers executed steps of one run at the same time; and kills really cut steps in the
middle. Set ``PG_CHAOS_SEED`` to replay a schedule; ``PG_CHAOS_RUNS`` changes the size.
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from spokehub import Client, EventKind, RunStatus, Settings
from tests import pg_chaos_app as app
from tests import pg_chaos_ledger as ledger
from tests.crash_ledger import check_ledger
from tests.pg_chaos_support import WorkerProcess, wait_until
from tests.pg_cluster import ThrowawayCluster, throwaway_cluster

RUNS = int(os.environ.get("PG_CHAOS_RUNS", "360"))
WORKERS = 3
CONCURRENCY = 2
LEASE = 2.0
DEADLINE = 170.0  # seconds for every run to finish
SETTINGS = {
    "SPOKEHUB_LEASE_SECONDS": str(LEASE),
    "SPOKEHUB_POLL_INTERVAL": "0.2",
    "SPOKEHUB_INLINE_WAIT": "0.1",
    # Workers are killed from outside far more often than this allows, and no run may be
    # charged for it (poison isolation): a single strike would dead-letter a run and fail
    # the audit.
    "SPOKEHUB_MAX_RECOVERIES": "1",
}


@contextlib.contextmanager
def pg(url: str) -> Iterator[Any]:
    import psycopg

    with psycopg.connect(url, autocommit=True, connect_timeout=5) as conn:
        yield conn


@dataclass
class Chaos:
    cluster: ThrowawayCluster
    tmp: Path
    rng: random.Random
    seed: int
    workers: list[WorkerProcess] = field(default_factory=list)
    kills: list[tuple[int, float]] = field(default_factory=list)  # (pid, when)
    outages: list[tuple[float, float]] = field(default_factory=list)  # (stopped, ready)
    spawned: int = 0
    pending_at_sweep_restart: int = 0

    @property
    def url(self) -> str:
        return self.cluster.url

    @property
    def ledger_path(self) -> Path:
        return self.tmp / "ledger.db"

    def spawn(self) -> WorkerProcess:
        self.spawned += 1
        return WorkerProcess(
            self.url,
            self.ledger_path,
            self.tmp / f"worker-{self.spawned}.log",
            concurrency=CONCURRENCY,
            settings={**SETTINGS, app.SEED_ENV: str(self.seed)},
        )

    def finished(self) -> int:
        with pg(self.url) as conn:
            (n,) = conn.execute(
                "SELECT COUNT(*) FROM runs WHERE status IN ('completed', 'failed', 'cancelled')"
            ).fetchone()
        return int(n)

    def kill(self, i: int) -> WorkerProcess:
        """SIGKILL worker ``i`` (which must not have died by itself); return it, dead."""
        victim = self.workers[i]
        assert victim.alive(), f"worker {victim.pid} died by itself:\n{victim.log_text()[-3000:]}"
        self.kills.append((victim.pid, victim.kill()))
        return victim

    def replace(self, i: int) -> None:
        self.workers[i] = self.spawn()

    def restart_postgres(self, down_for: float = 1.0) -> None:
        try:
            stopped = self.cluster.stop("immediate")
            time.sleep(down_for)
        finally:
            ready = self.cluster.ensure_started()
        self.outages.append((stopped, ready))
        self.check_workers_recovered()

    def check_workers_recovered(self) -> None:
        """Every live worker heartbeats again after the restart: none died, none hangs."""
        ready = self.outages[-1][1]

        def all_back() -> bool:
            with pg(self.url) as conn:
                seen = dict(conn.execute("SELECT owner, heartbeat_at FROM workers").fetchall())
            return all(seen.get(w.owner, 0) > ready for w in live)

        killed = {pid for pid, _ in self.kills}
        live = [w for w in self.workers if w.pid not in killed]
        for w in live:
            assert w.alive(), (
                f"worker {w.pid} died of the restart (exit code {w.proc.returncode}):\n"
                f"{w.log_text()[-3000:]}"
            )
        wait_until(all_back, 20, "every worker to heartbeat after the PostgreSQL restart")

    def kill_then_restart_postgres(self) -> None:
        """SIGKILL a worker that holds runs and crash-restart the server at once, while the
        other workers are about to recover its runs (its lease has not run out yet)."""
        for _ in range(20):
            i = self.rng.randrange(len(self.workers))
            owner = self.workers[i].owner
            with pg(self.url) as conn:
                (held,) = conn.execute(
                    "SELECT COUNT(*) FROM runs WHERE status = 'running' AND lease_owner = %s",
                    (owner,),
                ).fetchone()
            if not held:
                time.sleep(0.2)
                continue
            self.kill(i)
            time.sleep(self.rng.uniform(0.05, 0.3))
            with pg(self.url) as conn:
                (pending,) = conn.execute(
                    "SELECT COUNT(*) FROM runs WHERE status = 'running' AND lease_owner = %s",
                    (owner,),
                ).fetchone()
            if not pending:  # recovered before the server went down: try again
                self.replace(i)
                continue
            self.pending_at_sweep_restart = int(pending)
            self.restart_postgres()
            self.replace(i)
            return
        raise AssertionError("found no moment to restart the server during a recovery")


# -- the audit ----------------------------------------------------------------------------------
@dataclass
class Audit:
    steps: int = 0  # recorded steps (step_completed)
    executions: int = 0  # step executions that started
    cut: int = 0  # executions cut by a kill (started, never ended, in a killed process)
    deduplicated: int = 0  # executions whose effect the idempotency key refused
    transient: int = 0  # executions that failed on purpose
    overlaps: list[str] = field(default_factory=list)


def audit(client: Client, chaos: Chaos, run_ids: list[str]) -> Audit:
    attempts = ledger.attempts(chaos.ledger_path)
    effects = {e.key: e for e in ledger.effects(chaos.ledger_path)}
    killed = dict(chaos.kills)
    by_key: dict[str, list[ledger.Attempt]] = defaultdict(list)
    by_run: dict[str, list[ledger.Attempt]] = defaultdict(list)
    for a in attempts:
        assert a.key == f"{a.run}:{a.seq}", a  # the idempotency key is the same every time
        by_key[a.key].append(a)
        by_run[a.run].append(a)
    result = Audit(executions=len(attempts))
    recorded: set[str] = set()
    for run_id in run_ids:
        events = client.events(run_id)
        check_ledger(events)
        for e in events:
            if e.kind is EventKind.STEP_FAILED:
                raise AssertionError(f"{run_id}: step #{e.seq} failed for good: {e.data}")
            if e.kind is not EventKind.STEP_COMPLETED:
                continue
            key = f"{run_id}:{e.seq}"
            recorded.add(key)
            execs = by_key[key]
            assert execs, f"{key} was recorded but never executed"
            # A recorded step never executes again: the recorded execution is the last one,
            # and none started after the commit.
            assert execs[-1].token == e.data["result"]["token"], (key, execs)
            late = [x for x in execs if x.started > e.at + 0.005]
            assert not late, f"{key} executed again after it was recorded: {late}"
            # Its effect was applied exactly once (the effects table has one row per key, and
            # it names one of the step's executions); every other execution that reached the
            # effect was recognised by the key. The applying execution may have been killed
            # between applying the effect and noting so (applied NULL): the row says who.
            (applier,) = [x for x in execs if x.token == effects[key].token]
            assert applier.applied in (1, None), (key, execs)
            others = [x for x in execs if x is not applier]
            assert all(x.applied != 1 for x in others), (key, execs)
        result.overlaps += _overlaps(run_id, by_run[run_id], killed)
    assert set(effects) == recorded, "an effect was applied for a step that was never recorded"
    assert set(by_key) == recorded, "a step executed that the ledger does not know"
    result.steps = len(recorded)
    # A run isolated in a child process dies with its worker (the parent-death signal).
    result.cut = sum(1 for a in attempts if a.ended is None and a.by(killed) in killed)
    result.deduplicated = sum(1 for a in attempts if a.applied == 0)
    result.transient = sum(1 for a in attempts if a.outcome == "fail")
    unexplained = [a for a in attempts if a.ended is None and a.by(killed) not in killed]
    assert not unexplained, f"executions cut short in processes nobody killed: {unexplained}"
    return result


def _overlaps(run_id: str, execs: list[ledger.Attempt], killed: dict[int, float]) -> list[str]:
    """Executions of one run by two processes at the same time (a cut one ends at its kill)."""
    spans = [(x.started, x.ended or killed.get(x.by(killed), float("inf")), x) for x in execs]
    found = []
    for i, (start_a, end_a, a) in enumerate(spans):
        for start_b, end_b, b in spans[i + 1 :]:
            if a.pid != b.pid and start_a < end_b and start_b < end_a:
                found.append(f"{run_id}: #{a.seq} in {a.pid} and #{b.seq} in {b.pid}")
    return found


# -- the test -----------------------------------------------------------------------------------
@pytest.fixture
def cluster() -> Iterator[ThrowawayCluster]:
    """A PostgreSQL of the test's own: this test crash-restarts it."""
    with throwaway_cluster() as c:
        yield c


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_chaos_kills_and_server_restarts_lose_nothing_and_repeat_no_effect(
    cluster: ThrowawayCluster, tmp_path: Path
) -> None:
    seed = int(os.environ.get("PG_CHAOS_SEED", time.time_ns() % 2**32))
    print(f"PG_CHAOS_SEED={seed}")
    pg_url = cluster.url
    chaos = Chaos(cluster, tmp_path, random.Random(seed), seed)
    ledger.create(chaos.ledger_path)
    with Client(settings=Settings(database_url=pg_url)) as starter:
        run_ids = [
            starter.start(app.chaos_flow.options(run_id=f"chaos-{n}"), n).id for n in range(RUNS)
        ]
    began = time.monotonic()
    try:
        chaos.workers = [chaos.spawn() for _ in range(WORKERS)]
        _unleash(chaos, began)
        for w in chaos.workers:
            assert w.alive(), f"worker {w.pid} died by itself:\n{w.log_text()[-3000:]}"
    finally:
        for w in chaos.workers:
            chaos.kills.append((w.pid, w.kill()))
        cluster.ensure_started()
    elapsed = time.monotonic() - began
    kills = len(chaos.kills) - len(chaos.workers)  # not counting the last ones, at the end
    # A new client: one opened before the server restarts fails its first operation
    # (StoreError; it reconnects on the next one).
    client = Client(settings=Settings(database_url=pg_url))
    try:
        for n, run_id in enumerate(run_ids):
            run = client.get_run(run_id)
            assert run.status is RunStatus.COMPLETED, (run_id, run.status, run.error)
            assert run.result == app.expected_chaos_flow(n), run_id
        recoveries = sum(r.recoveries for r in client.list_runs(limit=RUNS + 10))
        result = audit(client, chaos, run_ids)
    finally:
        client.close()
    logs = "".join(p.read_text(errors="replace") for p in tmp_path.glob("worker-*.log"))
    crashed = len(re.findall(r"driver crashed", logs))
    handed_back = len(re.findall(r"handing the run back", logs))
    print(
        f"runs={RUNS} steps={result.steps} seconds={elapsed:.1f} kills={kills} "
        f"server_restarts={len(chaos.outages)} executions={result.executions} "
        f"cut={result.cut} deduplicated={result.deduplicated} transient={result.transient} "
        f"recoveries={recoveries} handed_back_after_lost_commits={handed_back} "
        f"pending_recoveries_at_sweep_restart={chaos.pending_at_sweep_restart}"
    )
    # A commit lost to a server restart hands its run back; no driver dies of it.
    assert crashed == 0, "a run's driver crashed (see the worker logs)"
    assert not result.overlaps, "two workers executed one run at once:\n" + "\n".join(
        result.overlaps[:20]
    )
    assert result.steps == RUNS * app.CHAOS_STEPS
    # Not vacuous: workers were killed in the middle of steps, the server went down twice,
    # steps failed and were retried, runs were recovered from dead workers.
    assert kills >= 10, "the runs finished before the workers were killed enough"
    assert result.cut > 0, "no kill landed inside a step"
    assert len(chaos.outages) == 2
    assert chaos.pending_at_sweep_restart > 0
    assert result.transient > 0
    assert recoveries > 0


def _unleash(chaos: Chaos, began: float) -> None:
    """Kill and restart workers (and the server twice) until every run finished."""
    restarted_mid_run = restarted_in_sweep = False
    while (done := chaos.finished()) < RUNS:
        assert time.monotonic() - began < DEADLINE, f"only {done}/{RUNS} runs finished"
        time.sleep(chaos.rng.uniform(1.0, 3.0))
        if not restarted_mid_run and done >= RUNS * 0.25:
            restarted_mid_run = True
            chaos.restart_postgres()
        elif not restarted_in_sweep and done >= RUNS * 0.55:
            restarted_in_sweep = True
            chaos.kill_then_restart_postgres()
        else:
            i = chaos.rng.randrange(len(chaos.workers))
            chaos.kill(i)
            chaos.replace(i)
    assert restarted_mid_run, "every run finished before the server could be restarted"
    assert restarted_in_sweep, "every run finished before the restart during a recovery"
    assert chaos.cluster.running()
