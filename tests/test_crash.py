"""Real crashes: worker processes SIGKILLed at random moments, restarted, and audited.

The workflows live in ``crash_app.py``; ``crash_worker.py`` is the worker process. Every step
execution writes ``start``/``end`` lines to an effects file (see ``crash_app``), so the tests
can compare what really executed with what the ledger recorded. Set ``CRASH_SEED`` to replay
one random kill schedule.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import pytest

from spokehub import Client, EventKind, RunStatus, Settings
from tests import crash_app
from tests.crash_ledger import check_ledger

HERE = Path(__file__).resolve().parent


# -- processes --------------------------------------------------------------------------------
class WorkerProcess:
    """``crash_worker.py`` in a subprocess; the constructor returns once it is ready."""

    def __init__(
        self,
        db_url: str,
        effects: Path,
        log: Path,
        *,
        lease: float = 2.0,
        concurrency: int = 10,
        inline_wait: float = 0.1,
    ) -> None:
        env = {**os.environ, crash_app.EFFECTS_ENV: str(effects)}
        self._log: IO[bytes] = open(log, "ab")  # noqa: SIM115 - closed in kill()
        args = [str(HERE / "crash_worker.py"), db_url, str(lease), str(concurrency)]
        self.proc = subprocess.Popen(
            [sys.executable, *args, str(inline_wait)],
            stdout=subprocess.PIPE,
            stderr=self._log,
            env=env,
            text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line.startswith("ready"):
            self.kill()
            raise AssertionError(f"worker did not start ({line!r}); see {log}")
        self.pid = self.proc.pid

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()  # reap it: a zombie still looks alive to os.kill(pid, 0)
        assert self.proc.stdout is not None
        self.proc.stdout.close()
        self._log.close()


def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up after {timeout}s waiting for {what}")
        time.sleep(0.05)


def unfinished(client: Client) -> list[str]:
    return [r.id for r in client.list_runs(limit=10_000) if not r.status.finished]


@contextlib.contextmanager
def sqlite(path: Path) -> Iterator[sqlite3.Connection]:
    with contextlib.closing(sqlite3.connect(path)) as conn:
        yield conn


def integrity(path: Path) -> str:
    with sqlite(path) as conn:
        return str(conn.execute("PRAGMA integrity_check").fetchone()[0])


def make_client(db_url: str) -> Client:
    return Client(settings=Settings(database_url=db_url, poll_interval=0.05))


# -- effects versus ledger ---------------------------------------------------------------------
@dataclass
class EffectStats:
    executions: int = 0  # step executions that started
    keys: int = 0  # distinct (run, seq) executed
    cut: int = 0  # executions that started and never returned nor raised: killed mid-step
    unrecorded: int = 0  # returned, but the worker died before the ledger recorded them


def audit_effects(client: Client, run_ids: list[str], effects: Path) -> EffectStats:
    """Check every step execution against the ledgers of ``run_ids``.

    * each execution belongs to a step call the ledger knows, under the same name, and its
      idempotency key is ``run:seq``;
    * for each recorded step (``step_completed``) the execution whose result was recorded
      (its token) is the last execution of that call, and no execution of the call started
      after the ledger recorded it: a recorded step never executed again;
    * every ledger is well-formed (``check_ledger``).
    """
    records = crash_app.read_effects(str(effects))
    starts: dict[tuple[str, int], list[dict[str, Any]]] = defaultdict(list)
    returned: set[str] = set()
    for rec in records:
        if rec["kind"] == "start":
            assert rec["key"] == f"{rec['run']}:{rec['seq']}", rec
            starts[(rec["run"], rec["seq"])].append(rec)
        elif rec["kind"] in ("end", "fail"):
            returned.add(rec["token"])
    recorded_tokens: set[str] = set()
    for run_id in run_ids:
        events = client.events(run_id)
        check_ledger(events)
        names = {e.seq: e.data["name"] for e in events if e.kind is EventKind.STEP_STARTED}
        for (rid, seq), execs in starts.items():
            if rid == run_id:
                assert seq in names, f"{rid}: step #{seq} executed but the ledger has no such step"
                assert all(x["step"].startswith(names[seq]) for x in execs), (names[seq], execs)
        for e in events:
            if e.kind not in (EventKind.STEP_COMPLETED, EventKind.STEP_FAILED):
                continue
            execs = starts[(run_id, e.seq)]
            assert execs, f"{run_id}: step #{e.seq} was recorded but never executed"
            late = [x for x in execs if x["t"] > e.at]
            assert not late, f"{run_id}: step #{e.seq} executed again after it was recorded: {late}"
            if e.kind is EventKind.STEP_COMPLETED:
                token = e.data["result"]["token"]
                recorded_tokens.add(token)
                assert execs[-1]["token"] == token, (
                    f"{run_id}: step #{e.seq} executed again after the recorded execution: {execs}"
                )
    all_starts = [x for execs in starts.values() for x in execs]
    return EffectStats(
        executions=len(all_starts),
        keys=len(starts),
        cut=sum(x["token"] not in returned for x in all_starts),
        unrecorded=sum(
            x["token"] in returned and x["token"] not in recorded_tokens
            for x in all_starts
            if x["step"] not in ("flaky", "explode")  # these raise on purpose
        ),
    )


# -- 1. SIGKILL loop ---------------------------------------------------------------------------
RUNS = 90
KILLS = 25
CONCURRENCY = 4


@pytest.mark.slow
def test_sigkill_at_random_moments_loses_no_run_and_reruns_no_recorded_step(
    tmp_path: Path,
) -> None:
    seed = int(os.environ.get("CRASH_SEED", time.time_ns() % 2**32))
    rng = random.Random(seed)
    print(f"CRASH_SEED={seed}")
    db_path = tmp_path / "spokehub.db"
    db_url = f"sqlite:///{db_path}"
    effects = tmp_path / "effects.jsonl"
    effects.touch()
    log = tmp_path / "workers.log"
    failing = {n for n in range(RUNS) if n % 8 == 5}  # these end in a saga
    client = make_client(db_url)
    try:
        run_ids = []
        for n in range(RUNS):
            wf = crash_app.crash_flow.options(run_id=f"crash-{n}")
            run_ids.append(client.start(wf, n, fail=n in failing).id)

        kills = 0
        for _ in range(KILLS):
            worker = WorkerProcess(db_url, effects, log, concurrency=CONCURRENCY)
            # At times long enough for the runs killed workers left behind (suspects, which run
            # alone in child processes that take a moment to start) to be cut in turn.
            time.sleep(rng.uniform(0.0, 0.3) if kills % 2 else rng.uniform(0.4, 1.0))
            worker.kill()
            kills += 1
            if not unfinished(client):
                break
        worker = WorkerProcess(db_url, effects, log)
        try:
            wait_until(lambda: not unfinished(client), 45, "a last worker to finish every run")
        finally:
            worker.kill()

        assert integrity(db_path) == "ok"
        compensations = defaultdict(list)
        for rec in crash_app.read_effects(str(effects)):
            if rec["kind"] == "compensate":
                compensations[rec["run"]].append(rec)
        recoveries = 0
        for n, run_id in enumerate(run_ids):
            run = client.get_run(run_id)
            recoveries += run.recoveries
            events = client.events(run_id)
            if n not in failing:
                assert run.status is RunStatus.COMPLETED, (run_id, run.error)
                assert run.result == crash_app.expected_crash_flow(n), run_id
                assert not compensations[run_id], f"{run_id} completed but was compensated"
                continue
            assert run.status is RunStatus.FAILED, (run_id, run.status)
            assert run.error is not None
            assert (run.error["type"], run.error.get("cause_type")) == ("StepFailed", "ValueError")
            ran = [e for e in events if e.kind is EventKind.COMPENSATION_RAN]
            assert [(e.seq, e.data["ok"]) for e in ran] == [(1, True)], ran
            undo = compensations[run_id]
            assert undo, f"{run_id}: the ledger says compensated, but release never executed"
            assert all(u["key"] == f"{run_id}:1:compensate" and u["n"] == n for u in undo)
            assert all(u["reserved"] == n * 1000 for u in undo)
            late = [u for u in undo if u["t"] > ran[0].at]
            assert not late, f"{run_id}: the compensation executed again after it was recorded"

        stats = audit_effects(client, run_ids, effects)
        print(f"kills={kills} recoveries={recoveries} {stats}")
        assert stats.keys == RUNS * crash_app.CRASH_FLOW_STEPS + len(failing)
        assert kills >= 5, "the runs finished before the workers were killed enough"
        # Not vacuous: kills landed inside steps, and runs were taken over from dead workers.
        assert stats.cut > 0, "no kill landed inside a step"
        assert recoveries > 0, "no run was ever recovered from a dead worker"
    finally:
        client.close()


# -- 2. timers and signals across restarts ------------------------------------------------------
SIGNAL_RUNS = 16
TIMERS = {0: 0.2, 1: 0.2, 2: 3.0, 3: 1.5}  # by n % 4: groups A, B, C, D


def _signal_state(client: Client, run_id: str, n: int) -> bool:
    """True when run ``n`` is where the kill should find it."""
    run = client.get_run(run_id)
    waiting = run.waiting_on or {}
    group = n % 4
    if group == 0:  # A: "go" was sent before it ran; waits for the two items
        return run.status is RunStatus.WAITING and len(waiting.get("signal", [])) == 2
    if group == 1:  # B: waits for "go"
        return run.status is RunStatus.WAITING and [
            w["name"] for w in waiting.get("signal", [])
        ] == ["go"]
    if group == 2:  # C: its 3 s timer is longer than inline_wait: unloaded, waiting
        return run.status is RunStatus.WAITING and "timer" in waiting
    # D: its 1.5 s timer is shorter than inline_wait, so the worker holds the run in memory
    kinds = [e.kind for e in client.events(run_id)]
    return EventKind.STEP_COMPLETED in kinds


def test_timers_and_signals_are_delivered_once_across_worker_kills(tmp_path: Path) -> None:
    seed = int(os.environ.get("CRASH_SEED", time.time_ns() % 2**32))
    rng = random.Random(seed)
    print(f"CRASH_SEED={seed}")
    db_path = tmp_path / "spokehub.db"
    db_url = f"sqlite:///{db_path}"
    effects = tmp_path / "effects.jsonl"
    effects.touch()
    log = tmp_path / "workers.log"
    client = make_client(db_url)
    try:
        ids = {}
        for n in range(SIGNAL_RUNS):
            wf = crash_app.signal_flow.options(run_id=f"sig-{n}")
            ids[n] = client.start(wf, n, TIMERS[n % 4]).id
            if n % 4 == 0:  # sent before any worker ran it: kept until the run waits for it
                client.send_signal(ids[n], "go", f"go-{n}")

        # A worker that is killed while runs wait on timers (unloaded, and held in memory)
        # and on signals.
        worker = WorkerProcess(db_url, effects, log, inline_wait=2.0)
        try:
            wait_until(
                lambda: all(_signal_state(client, ids[n], n) for n in ids),
                20,
                "every run to reach its wait",
            )
        finally:
            worker.kill()
        frozen = {n: client.get_run(ids[n]) for n in ids}
        held = [n for n in ids if n % 4 == 3 and frozen[n].status is RunStatus.RUNNING]
        assert held, "no run was held in memory on a timer when the worker died"
        assert all(frozen[n].lease_owner.split(":")[1] == str(worker.pid) for n in held)  # type: ignore[union-attr]
        assert all(frozen[n].status is RunStatus.WAITING for n in ids if n % 4 != 3)

        # Signals sent while no worker runs; group A also gets a spare item nobody waits for.
        for n, run_id in ids.items():
            if n % 4 != 0:
                client.send_signal(run_id, "go", f"go-{n}")
            client.send_signal(run_id, "item", n * 10 + 1)
            client.send_signal(run_id, "item", n * 10 + 2)
            if n % 4 == 0:
                client.send_signal(run_id, "item", n * 10 + 3)

        for _ in range(3):  # a few more deaths while timers fire and signals are consumed
            worker = WorkerProcess(db_url, effects, log)
            time.sleep(rng.uniform(0.0, 0.3))
            worker.kill()
        worker = WorkerProcess(db_url, effects, log)
        try:
            wait_until(lambda: not unfinished(client), 30, "every run to finish")
        finally:
            worker.kill()

        assert integrity(db_path) == "ok"
        with sqlite(db_path) as conn:
            inbox = conn.execute(
                "SELECT id, run_id, name, payload, consumed_at FROM inbox ORDER BY id"
            ).fetchall()
        for n, run_id in ids.items():
            run = client.get_run(run_id)
            assert run.status is RunStatus.COMPLETED, (run_id, run.error)
            assert run.result == {
                "marks": [f"{n}:before", f"{n}:after"],
                "go": f"go-{n}",
                "items": [n * 10 + 1, n * 10 + 2],
            }
            events = client.events(run_id)
            timer_set = [e for e in events if e.kind is EventKind.TIMER_SET]
            fired = [e for e in events if e.kind is EventKind.TIMER_FIRED]
            assert len(timer_set) == len(fired) == 1
            assert fired[0].at >= timer_set[0].data["due"]
            assert timer_set[0].data["due"] == pytest.approx(timer_set[0].at + TIMERS[n % 4])
            # Each inbox item is consumed exactly once, by the one signal_received naming it.
            mine = [row for row in inbox if row[1] == run_id]
            received = [e for e in events if e.kind is EventKind.SIGNAL_RECEIVED]
            consumed = [row for row in mine if row[4] is not None]
            assert sorted(e.data["inbox_id"] for e in received) == [row[0] for row in consumed]
            assert len(received) == 3
            for e in received:
                row = next(r for r in mine if r[0] == e.data["inbox_id"])
                assert (row[2], json.loads(row[3])) == (e.data["name"], e.data["payload"])
            spare = [row for row in mine if row[4] is None]
            assert [json.loads(row[3]) for row in spare] == ([n * 10 + 3] if n % 4 == 0 else [])
        stats = audit_effects(client, list(ids.values()), effects)
        print(f"recoveries={sum(client.get_run(i).recoveries for i in ids.values())} {stats}")
    finally:
        client.close()


# -- 3. idempotent start under concurrent callers ------------------------------------------------
CALLERS = 8
ROUNDS = 6


def test_concurrent_starts_of_one_run_id_create_exactly_one_run(tmp_path: Path) -> None:
    db_path = tmp_path / "fresh.db"  # does not exist yet: the callers also race to migrate it
    db_url = f"sqlite:///{db_path}"
    with contextlib.ExitStack() as stack:
        procs = [
            stack.enter_context(
                subprocess.Popen(
                    [sys.executable, str(HERE / "crash_starter.py"), db_url],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    text=True,
                )
            )
            for _ in range(CALLERS)
        ]
        for p in procs:
            assert p.stdout is not None
            assert p.stdout.readline().startswith("ready")
        rng = random.Random(1)
        outcomes = []
        for r in range(ROUNDS):
            run_id = f"order-{r}"
            # Most callers repeat one input; two send another: they must get RunIdConflict.
            inputs = [7] * (CALLERS - 2) + [8] * 2
            rng.shuffle(inputs)
            for p, x in zip(procs, inputs, strict=True):
                assert p.stdin is not None
                p.stdin.write(f"{run_id} {x}\n")
            for p in procs:  # released together
                assert p.stdin is not None
                p.stdin.flush()
            answers = [json.loads(p.stdout.readline()) for p in procs]  # type: ignore[union-attr]
            outcomes.append((run_id, inputs, answers))
        for p in procs:
            assert p.stdin is not None
            p.stdin.close()
        for p in procs:
            assert p.wait(timeout=30) == 0

    client = make_client(db_url)
    try:
        with sqlite(db_path) as conn:
            rows = conn.execute("SELECT id, COUNT(*) FROM runs GROUP BY id").fetchall()
        assert sorted(rows) == [(f"order-{r}", 1) for r in range(ROUNDS)]
        for run_id, inputs, answers in outcomes:
            stored = client.get_run(run_id).input["x"]
            assert stored in (7, 8)
            for x, answer in zip(inputs, answers, strict=True):
                if x == stored:
                    assert answer == {"id": run_id}, answer
                else:
                    assert answer["error"] == "RunIdConflict", answer
            events = client.events(run_id)
            assert [e.kind for e in events] == [EventKind.RUN_STARTED]
        assert integrity(db_path) == "ok"
    finally:
        client.close()
