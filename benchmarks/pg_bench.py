"""Measure spokehub on PostgreSQL against the raw commit rate of the same server, in one run.

Usage:
    .venv/bin/python benchmarks/pg_bench.py [--quick] [--json out.json] [--url URL]

``--url`` names a server and a database to connect to first (default:
``$SPOKEHUB_TEST_POSTGRES_URL``, else ``postgresql://postgres@127.0.0.1:5432/test``). The
benchmark creates a database of its own there (``spokehub_bench_<random>``, so that
``pg_stat_database`` counts nothing but the benchmark's transactions) and drops it at the end.

Sections:
    raw          one small INSERT per transaction, 1 and 8 client processes (before and after)
    sequential   ten-step runs one after another via ``client.run_async``, in a child process
    workers      200 ten-step runs enqueued at once, executed by 1, 2 and 4 ``spokehub worker``
                 processes that were started (and idle) before the runs were enqueued
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import platform
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import psycopg
from bench import code_version, cpu_reference, load_average
from pg_raw import RawRate, measure_raw, proc_cpu, quantile
from pg_workflows import STEPS_PER_RUN, ten_steps
from rich.console import Console
from rich.table import Table

import spokehub as sh
from spokehub import Client, Settings

HERE = Path(__file__).resolve().parent
WORKER = HERE / "pg_worker.py"
DEFAULT_URL = os.environ.get(
    "SPOKEHUB_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
RAW_CLIENTS = (1, 8)
TARGET_CPU_MS = 0.6
TARGET_RATIO = 0.6


# -- the server and the benchmark's own database -----------------------------------------------
def with_database(url: str, dbname: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + dbname))


def with_schema(url: str, schema: str) -> str:
    sep = "&" if "?" in url else "?"
    return f"{url}{sep}options={quote(f'-csearch_path={schema}')}"


class BenchDatabase:
    """A database created for one benchmark run; the admin connection stays outside it.

    ``pg_stat_database.xact_commit`` of this database then counts the benchmark's transactions
    only, and the admin connection that reads it adds none.
    """

    def __init__(self, url: str) -> None:
        self.server_url = url
        self.admin = psycopg.connect(url, autocommit=True)
        self.name = f"spokehub_bench_{secrets.token_hex(4)}"
        self.admin.execute(f"CREATE DATABASE {self.name}")
        self.url = with_database(url, self.name)

    def _live(self) -> psycopg.Connection[Any]:
        """The admin connection, reconnected (for up to 30 s) if the server restarted."""
        deadline = time.monotonic() + 30
        while self.admin.closed or self.admin.broken:
            try:
                self.admin = psycopg.connect(self.server_url, autocommit=True)
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
        return self.admin

    def new_schema(self, prefix: str) -> str:
        """A fresh schema's URL (dropped with the database)."""
        schema = f"{prefix}_{secrets.token_hex(3)}"
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(f"CREATE SCHEMA {schema}")
        return with_schema(self.url, schema)

    def settled_xacts(self, timeout: float = 15.0) -> int:
        """Committed transactions so far, once every connection to the database has closed.

        A backend reports its counters lazily (at most once a second) and for good when it
        exits, so the count is read after all have exited and the figure stops moving.
        """
        deadline = time.monotonic() + timeout
        last = -1
        while time.monotonic() < deadline:
            (alive,) = self._one(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = %s", self.name
            )
            (now,) = self._one(
                "SELECT xact_commit FROM pg_stat_database WHERE datname = %s", self.name
            )
            if alive == 0 and now == last:
                return int(now)
            last = now
            time.sleep(0.1)
        raise RuntimeError(f"connections to {self.name} did not close within {timeout:.0f} s")

    def backend_pids(self) -> list[int]:
        sql = "SELECT pid FROM pg_stat_activity WHERE datname = %s"
        rows = self.execute(sql, self.name).fetchall()
        return [int(r[0]) for r in rows]

    def settings(self) -> dict[str, str]:
        names = ("server_version", "fsync", "synchronous_commit", "wal_sync_method",
                 "commit_delay", "shared_buffers", "max_connections")  # fmt: skip
        return {n: str(self._one(f"SHOW {n}")[0]) for n in names}

    def _one(self, sql: str, *params: Any) -> tuple[Any, ...]:
        row = self.execute(sql, *params).fetchone()
        assert row is not None
        return tuple(row)

    def execute(self, sql: str, *params: Any) -> psycopg.Cursor[Any]:
        """On the admin connection; once more on a new one if the server restarted meanwhile."""
        try:
            return self._live().execute(sql, params or None)
        except psycopg.OperationalError:
            self.admin.close()
            return self._live().execute(sql, params or None)

    def drop(self) -> None:
        try:
            self.execute(f"DROP DATABASE IF EXISTS {self.name} WITH (FORCE)")
        finally:
            self.admin.close()


class Observer:
    """The benchmark's own connection into a schema; counts its transactions to subtract them."""

    def __init__(self, url: str) -> None:
        self.conn = psycopg.connect(url, autocommit=True)
        self.xacts = 0

    def one(self, sql: str, *params: Any) -> tuple[Any, ...]:
        self.xacts += 1  # autocommit: every statement is a transaction of its own
        row = self.conn.execute(sql, params or None).fetchone()
        assert row is not None
        return tuple(row)

    def all(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        self.xacts += 1
        return [tuple(r) for r in self.conn.execute(sql, params or None).fetchall()]

    def close(self) -> None:
        self.conn.close()


# -- 1. raw commit rate ------------------------------------------------------------------------
def raw_rates(db: BenchDatabase, seconds: float) -> dict[int, RawRate]:
    url = db.new_schema("raw")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE raw_commits (id BIGSERIAL PRIMARY KEY, at DOUBLE PRECISION, v TEXT)"
        )
    return {n: measure_raw(url, n, seconds) for n in RAW_CLIENTS}


# -- 2. sequential runs (a child process: its CPU and its transactions are the run's alone) ---
@dataclass
class Sequential:
    runs: int
    steps: int
    wall_s: float
    cpu_s: float
    store_commits: int  # transactions that wrote, counted by the store's database thread
    store_operations: int
    store_batches: int
    store_direct: int
    pg_xacts: int  # pg_stat_database, measured child minus a warm-up-only child
    # Distinct xmin of the measured runs' ledger rows: an upper bound on the commits that wrote
    # ledger rows (an operation inside a savepoint gets a subtransaction id of its own).
    ledger_xacts: int

    @property
    def cpu_ms_per_step(self) -> float:
        return 1000 * self.cpu_s / self.steps

    @property
    def steps_per_s(self) -> float:
        return self.steps / self.wall_s

    def per_step(self, value: int) -> float:
        return value / self.steps


async def sequential_child(url: str, runs: int) -> dict[str, Any]:
    client = Client(settings=Settings(database_url=url))
    try:
        await client.ensure_schema()
        for i in range(2):  # warm-up: lazy imports and first-call caches stay out of the figures
            await client.run_async(ten_steps, -1 - i)
        stats = client.store.stats
        before = (stats.commits, stats.operations, stats.batches, stats.direct)
        since = client.clock.now()
        wall0, cpu0 = time.perf_counter(), time.process_time()
        for i in range(runs):
            result = await client.run_async(ten_steps, i)
            if result != i + STEPS_PER_RUN:
                raise AssertionError(f"run {i} returned {result}, not {i + STEPS_PER_RUN}")
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
        after = (stats.commits, stats.operations, stats.batches, stats.direct)
    finally:
        await client.close_async()
    commits, operations, batches, direct = (a - b for a, b in zip(after, before, strict=True))
    return {"since": since, "wall_s": wall, "cpu_s": cpu, "commits": commits,
            "operations": operations, "batches": batches, "direct": direct}  # fmt: skip


def run_child(url: str, runs: int) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, __file__, "--child-sequential", str(runs), "--url", url],
        capture_output=True,
        text=True,
        timeout=900,
        env=clean_env(),
    )
    if proc.returncode != 0:
        raise RuntimeError(f"the sequential child process failed:\n{proc.stderr[-4000:]}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def sequential(db: BenchDatabase, runs: int) -> Sequential:
    """Transactions of a child that only warms up, then of one that also runs ``runs``."""
    x0 = db.settled_xacts()
    run_child(db.new_schema("seq0"), 0)
    x1 = db.settled_xacts()
    url = db.new_schema("seq")
    x2 = db.settled_xacts()  # new_schema's own connection made one transaction
    child = run_child(url, runs)
    x3 = db.settled_xacts()
    observer = Observer(url)
    try:
        (ledger,) = observer.one(
            "SELECT count(DISTINCT e.xmin::text) FROM events e JOIN runs r ON r.id = e.run_id "
            "WHERE r.created_at >= %s",
            child["since"],
        )
    finally:
        observer.close()
    return Sequential(
        runs=runs,
        steps=runs * STEPS_PER_RUN,
        wall_s=child["wall_s"],
        cpu_s=child["cpu_s"],
        store_commits=child["commits"],
        store_operations=child["operations"],
        store_batches=child["batches"],
        store_direct=child["direct"],
        pg_xacts=(x3 - x2) - (x1 - x0),
        ledger_xacts=int(ledger),
    )


# -- 3. worker processes ------------------------------------------------------------------------
@dataclass
class Round:
    workers: int
    concurrency: int  # per worker
    runs: int
    steps: int
    enqueue_s: float  # wall time of the enqueueing gather
    window_s: float  # first created_at to last finished_at (database clock)
    exec_s: float  # first started_at to last finished_at
    latency_ms: dict[str, float]  # created_at -> started_at: p50, p90, p99, max
    probe_runs: int  # then enqueued one by one onto idle workers
    probe_latency_ms: dict[str, float]  # start_async called -> started_at seen (one clock)
    worker_cpu_s: float  # all worker processes, from enqueue to the last run's end
    backend_cpu_s: float  # the PostgreSQL backends of this database, same interval
    pg_xacts: int  # whole round: migrate, worker start and stop, enqueue, execution
    worker_stats: list[dict[str, Any]]  # per worker, its whole life: store commits, operations
    results_ok: bool

    @property
    def all_steps(self) -> int:
        return (self.runs + self.probe_runs) * STEPS_PER_RUN

    @property
    def store_commits(self) -> int:
        return sum(int(w["commits"]) for w in self.worker_stats)

    @property
    def activations(self) -> list[int]:
        return [int(w["activations"]) for w in self.worker_stats]

    @property
    def steps_per_s(self) -> float:
        return self.steps / self.window_s

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "steps_per_s": self.steps_per_s,
                "store_commits": self.store_commits}  # fmt: skip


def clean_env() -> dict[str, str]:
    # The benchmark measures the defaults, whatever SPOKEHUB_* variables the shell carries.
    return {k: v for k, v in os.environ.items() if not k.startswith("SPOKEHUB_")}


def start_workers(
    url: str, workers: int, concurrency: int, logs: Path
) -> list[subprocess.Popen[bytes]]:
    cmd = [sys.executable, str(WORKER), url, str(concurrency)]
    return [
        subprocess.Popen(
            cmd,
            stdout=(logs / f"worker-{i}.json").open("wb"),
            stderr=(logs / f"worker-{i}.log").open("wb"),
            env=clean_env(),
        )
        for i in range(workers)
    ]


def wait_for(check: Callable[[], bool], what: str, timeout: float, procs: Sequence[Any]) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if any(p.poll() is not None for p in procs):
            raise RuntimeError(f"a worker process exited while waiting for {what}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.02)


def stop_workers(procs: Sequence[subprocess.Popen[bytes]], logs: Path) -> list[dict[str, Any]]:
    """SIGTERM each worker; collect the counters each prints on its way out."""
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    out = []
    for i, p in enumerate(procs):
        try:
            p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
        lines = (logs / f"worker-{i}.json").read_text().strip().splitlines()
        if p.returncode != 0 or not lines:
            log = (logs / f"worker-{i}.log").read_text(errors="replace")
            raise RuntimeError(f"worker {i} exited with {p.returncode}:\n{log[-4000:]}")
        out.append(json.loads(lines[-1]))
    return out


def cpu_of(pids: Sequence[int]) -> dict[int, float]:
    return {pid: proc_cpu(pid) for pid in pids}


def cpu_delta(before: dict[int, float], after: dict[int, float]) -> float:
    return sum(after.get(pid, before[pid]) - cpu for pid, cpu in before.items())


async def enqueue(client: Client, runs: int) -> float:
    began = time.perf_counter()
    await asyncio.gather(*(client.start_async(ten_steps, i) for i in range(runs)))
    return time.perf_counter() - began


def enqueue_one_by_one(
    runner: asyncio.Runner, client: Client, observer: Observer, runs: int
) -> list[float]:
    """Lone starts onto idle workers, each timed on this process's clock alone (ms).

    From just before ``start_async`` until the observer sees the run's ``started_at`` set
    (polled every 0.5 ms, so that much is added at most). One clock: the stored timestamps
    come from each process's own synchronised clock, whose offsets differ by up to a
    fraction of a millisecond, as much as a lone start's latency.
    """
    out = []
    for i in range(runs):
        began = time.perf_counter()
        handle = runner.run(client.start_async(ten_steps, i))
        while observer.one("SELECT started_at FROM runs WHERE id = %s", handle.id)[0] is None:
            time.sleep(0.0005)
        out.append(1000 * (time.perf_counter() - began))
        time.sleep(0.02)  # let the run finish: the next start meets idle workers
    return out


def latency_ms(values: Sequence[float]) -> dict[str, float]:
    quantiles = (("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("max", 1.0))
    return {name: quantile(values, q) for name, q in quantiles}


def finished(observer: Observer, runs: int) -> Callable[[], bool]:
    sql = "SELECT count(*) FROM runs WHERE finished_at IS NOT NULL"
    return lambda: bool(observer.one(sql)[0] == runs)


def worker_round(db: BenchDatabase, workers: int, sizes: Sizes, concurrency: int) -> Round:
    """Start ``workers`` processes, wait until all are idle, enqueue ``runs`` at once, drain.

    Then, as a probe of the latency a lone start sees, enqueue runs one by one.
    """
    runs = sizes.runs
    x0 = db.settled_xacts()
    url = db.new_schema(f"w{workers}")
    with tempfile.TemporaryDirectory(prefix="pg-bench-") as tmp, asyncio.Runner() as runner:
        logs = Path(tmp)
        client = Client(settings=Settings(database_url=url))
        observer = Observer(url)
        procs: list[subprocess.Popen[bytes]] = []
        try:
            runner.run(client.ensure_schema())
            procs = start_workers(url, workers, concurrency, logs)
            wait_for(
                lambda: (
                    observer.one("SELECT count(*) FROM workers WHERE state = 'running'")[0]
                    == workers
                ),
                "the workers to report in",
                120,
                procs,
            )
            time.sleep(0.2)  # let each worker's first claim (which finds nothing) end
            pids = [p.pid for p in procs]
            cpu0, pg0 = cpu_of(pids), cpu_of(db.backend_pids())
            enqueue_s = runner.run(enqueue(client, runs))
            wait_for(finished(observer, runs), f"{runs} runs to finish", 600, procs)
            cpu1, pg1 = cpu_of(pids), cpu_of(list(pg0))
            rows = observer.all(
                "SELECT created_at, started_at, finished_at, status, result FROM runs"
            )
            probe = enqueue_one_by_one(runner, client, observer, sizes.probe)
            total = runs + sizes.probe
            wait_for(finished(observer, total), f"{total} runs to finish", 600, procs)
            (probe_ok,) = observer.one("SELECT count(*) FROM runs WHERE status = 'completed'")
        finally:
            worker_stats = stop_workers(procs, logs)
            runner.run(client.close_async())
            observer.close()
    pg_xacts = db.settled_xacts() - x0 - observer.xacts - 1  # 1: new_schema's connection
    created, started, ended = ([r[i] for r in rows] for i in range(3))
    expected = sum(range(runs)) + runs * STEPS_PER_RUN
    return Round(
        workers=workers,
        concurrency=concurrency,
        runs=runs,
        steps=runs * STEPS_PER_RUN,
        enqueue_s=enqueue_s,
        window_s=max(ended) - min(created),
        exec_s=max(ended) - min(started),
        latency_ms=latency_ms([1000 * (r[1] - r[0]) for r in rows]),
        probe_runs=len(probe),
        probe_latency_ms=latency_ms(probe),
        worker_cpu_s=cpu_delta(cpu0, cpu1),
        backend_cpu_s=cpu_delta(pg0, pg1),
        pg_xacts=pg_xacts,
        worker_stats=worker_stats,
        results_ok=all(r[3] == "completed" for r in rows)
        and sum(int(json.loads(r[4])) for r in rows) == expected
        and probe_ok == total,
    )


def worker_rounds(db: BenchDatabase, sizes: Sizes, console: Console) -> dict[int, list[Round]]:
    """Rounds interleaved (1, 2, 4, 1, 2, 4, ...) so that drift of the machine hits each alike."""
    out: dict[int, list[Round]] = {w: [] for w in sizes.workers}
    for i in range(sizes.rounds):
        for w in sizes.workers:
            concurrency = math.ceil(sizes.runs / w)
            try:
                r = worker_round(db, w, sizes, concurrency)
            except (RuntimeError, psycopg.OperationalError) as exc:
                # The server is shared: someone restarting it spoils a round, not the run.
                console.print(f"    round failed ({str(exc)[:200]}); repeating it", style="red")
                r = worker_round(db, w, sizes, concurrency)
            out[w].append(r)
            console.print(
                f"    round {i + 1}, {w} worker(s) x concurrency {concurrency}: "
                f"{r.steps_per_s:,.0f} steps/s, latency p50 {r.latency_ms['p50']:.0f} ms "
                f"p99 {r.latency_ms['p99']:.0f} ms, activations {r.activations}",
                style="dim",
            )
    return out


# -- the report ---------------------------------------------------------------------------------
@dataclass
class Row:
    figure: str
    target: str
    measured: str
    spread: str = ""
    ok: bool | None = None


def median_range(values: Sequence[float], fmt: str) -> tuple[str, str]:
    if len(values) == 1:
        return format(values[0], fmt), ""
    return format(statistics.median(values), fmt), (
        f"{format(min(values), fmt)} - {format(max(values), fmt)}"
    )


@dataclass
class Report:
    raw: dict[str, dict[int, RawRate]]
    seq: Sequential
    rounds: dict[int, list[Round]]
    rows: list[Row] = field(default_factory=list)

    def raw_mean(self, clients: int) -> float:
        return statistics.mean(self.raw[w][clients].commits_per_s for w in ("before", "after"))

    def build(self) -> list[Row]:
        r1, r8 = self.raw_mean(1), self.raw_mean(8)
        for n in RAW_CLIENTS:
            before, after = (self.raw[w][n].commits_per_s for w in ("before", "after"))
            self.rows.append(
                Row(
                    f"raw commits/s, {n} client(s) (before / after)",
                    "-",
                    f"{before:,.0f} / {after:,.0f}",
                )
            )
        self._sequential(r1)
        for w, rounds in self.rounds.items():
            self._workers(w, rounds, r8)
        return self.rows

    def _sequential(self, r1: float) -> None:
        s = self.seq
        bound = 1 + 2 / STEPS_PER_RUN
        add = self.rows.append
        add(
            Row(
                "sequential: store commits/step (writes)",
                f"<= {bound:.2f}",
                f"{s.per_step(s.store_commits):.2f}",
                ok=s.per_step(s.store_commits) <= bound,
            )
        )
        add(
            Row(
                "sequential: PostgreSQL transactions/step (all)",
                f"<= {bound:.2f}",
                f"{s.per_step(s.pg_xacts):.2f}",
                ok=s.per_step(s.pg_xacts) <= bound,
            )
        )
        add(
            Row(
                "sequential: ledger xmins/step (upper bound)",
                "-",
                f"{s.per_step(s.ledger_xacts):.2f}",
            )
        )
        add(
            Row(
                "sequential: CPU ms/step (whole process)",
                f"<= {TARGET_CPU_MS:.2f}",
                f"{s.cpu_ms_per_step:.3f}",
                ok=s.cpu_ms_per_step <= TARGET_CPU_MS,
            )
        )
        add(Row("sequential: steps/s (/ raw 1-client commits/s)", "-",
                f"{s.steps_per_s:,.0f} ({s.steps_per_s / r1:.2f})"))  # fmt: skip

    def _workers(self, w: int, rounds: list[Round], r8: float) -> None:
        add = self.rows.append
        name = f"{w} worker{'s' if w > 1 else ''}"
        rate, rate_spread = median_range([r.steps_per_s for r in rounds], ",.0f")
        ratios = [r.steps_per_s / r8 for r in rounds]
        ratio, ratio_spread = median_range(ratios, ".2f")
        target = f">= {TARGET_RATIO:.2f}" if w == 4 else "-"
        ok = statistics.median(ratios) >= TARGET_RATIO if w == 4 else None
        add(Row(f"{name}: steps/s", "-", rate, rate_spread))
        add(Row(f"{name}: steps/s / raw 8-client commits/s", target, ratio, ratio_spread, ok))
        if 1 in self.rounds and w != 1:
            one = statistics.median(r.steps_per_s for r in self.rounds[1])
            add(Row(f"{name}: speed-up over 1 worker", "-",
                    f"{statistics.median(r.steps_per_s for r in rounds) / one:.2f}x"))  # fmt: skip
        for q in ("p50", "p99"):
            v, sp = median_range([r.latency_ms[q] for r in rounds], ",.1f")
            add(Row(f"{name}: burst enqueue -> start latency {q}, ms", "-", v, sp))
        v, sp = median_range([1000 * r.worker_cpu_s / r.steps for r in rounds], ".3f")
        add(Row(f"{name}: worker CPU ms/step (all workers)", "-", v, sp))
        v, sp = median_range([1000 * r.backend_cpu_s / r.steps for r in rounds], ".3f")
        add(Row(f"{name}: PostgreSQL backend CPU ms/step", "-", v, sp))
        for q in ("p50", "p99"):
            v, sp = median_range([r.probe_latency_ms[q] for r in rounds], ",.1f")
            add(Row(f"{name}: lone start -> start latency {q}, ms", "-", v, sp))
        v, sp = median_range([r.store_commits / r.all_steps for r in rounds], ".3f")
        add(Row(f"{name}: store commits/step (workers' whole life)", "-", v, sp))
        v, sp = median_range([r.pg_xacts / r.all_steps for r in rounds], ".3f")
        add(Row(f"{name}: PostgreSQL transactions/step (whole round)", "-", v, sp))


def print_table(console: Console, rows: list[Row]) -> None:
    table = Table(title="spokehub on PostgreSQL", title_justify="left")
    for col in ("figure", "target", "measured (median)", "spread (min - max)", "result"):
        table.add_column(col, justify="right" if col.startswith(("measured", "spread")) else "left")
    for row in rows:
        verdict = "" if row.ok is None else ("[green]pass[/]" if row.ok else "[red]MISS[/]")
        table.add_row(row.figure, row.target, row.measured, row.spread, verdict)
    console.print(table)


# -- main ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Sizes:
    raw_seconds: float
    sequential_runs: int
    runs: int
    workers: tuple[int, ...]
    rounds: int
    probe: int  # runs enqueued one by one after each burst, for the latency of a lone start


FULL = Sizes(raw_seconds=3.0, sequential_runs=200, runs=200, workers=(1, 2, 4), rounds=3,
             probe=40)  # fmt: skip
QUICK = Sizes(raw_seconds=0.3, sequential_runs=5, runs=20, workers=(1, 4), rounds=1,
              probe=3)  # fmt: skip


def machine(db: BenchDatabase) -> dict[str, Any]:
    cpu = platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": cpu,
        "cores": os.cpu_count() or 0,
        "python": platform.python_version(),
        "psycopg": psycopg.__version__,
        "spokehub": sh.__version__,
        "code": code_version(),
        "postgres": db.settings(),
        "database": db.name,
        "load_before": load_average(),
    }


def timed(console: Console, name: str, fn: Callable[[], Any]) -> Any:
    began = time.perf_counter()
    out = fn()
    console.print(f"  {name} done in {time.perf_counter() - began:.1f} s", style="dim")
    return out


def run_all(db: BenchDatabase, sizes: Sizes, console: Console) -> dict[str, Any]:
    facts = machine(db)
    pg = facts["postgres"]
    console.print(
        f"[bold]machine[/] {facts['cpu']}, {facts['cores']} cores shared by the benchmark, its "
        f"worker processes and PostgreSQL; Python {facts['python']}, psycopg {facts['psycopg']}, "
        f"spokehub {facts['spokehub']} at {facts['code']}\n"
        f"[bold]server[/] PostgreSQL {pg['server_version']}, fsync={pg['fsync']}, "
        f"synchronous_commit={pg['synchronous_commit']}, wal_sync_method={pg['wal_sync_method']}, "
        f"commit_delay={pg['commit_delay']}; database {db.name} (dropped at the end)"
    )
    ref0 = cpu_reference()
    raw0 = timed(console, "raw before", lambda: raw_rates(db, sizes.raw_seconds))
    seq = timed(console, "sequential", lambda: sequential(db, sizes.sequential_runs))
    rounds = timed(console, "workers", lambda: worker_rounds(db, sizes, console))
    raw1 = timed(console, "raw after", lambda: raw_rates(db, sizes.raw_seconds))
    ref1 = cpu_reference()
    report = Report({"before": raw0, "after": raw1}, seq, rounds)
    rows = report.build()
    print_table(console, rows)
    load_after = load_average()
    ref = (ref0 + ref1) / 2
    console.print(
        f"sequential: {seq.runs} runs, {seq.store_commits} store commits, "
        f"{seq.pg_xacts} PostgreSQL transactions, {seq.store_operations} store operations "
        f"({seq.store_direct} run directly on the caller's thread)\n"
        f"CPU reference workload {ref0:.1f} ms before, {ref1:.1f} ms after: sequential CPU per "
        f"step = {seq.cpu_ms_per_step / ref:.4f} reference units (drift-free)\n"
        f"load average before {facts['load_before'][0]:.2f}, after {load_after[0]:.2f} on "
        f"{facts['cores']} cores"
    )
    return {
        "machine": {**facts, "load_after": load_after},
        "sizes": asdict(sizes),
        "cpu_reference_ms": {"before": ref0, "after": ref1},
        "raw": {
            w: {str(n): asdict(r) for n, r in raw.items()}
            for w, raw in (("before", raw0), ("after", raw1))
        },
        "sequential": {
            **asdict(seq),
            "cpu_ms_per_step": seq.cpu_ms_per_step,
            "steps_per_s": seq.steps_per_s,
            "cpu_reference_units": seq.cpu_ms_per_step / ref,
        },
        "workers": {str(w): [r.to_dict() for r in rs] for w, rs in rounds.items()},
        "table": [asdict(r) for r in rows],
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke test")
    parser.add_argument("--json", type=Path, help="where to write all figures "
                        "(default: benchmarks/out/pg-<time>.json)")  # fmt: skip
    parser.add_argument("--url", default=DEFAULT_URL, help="server and database to connect to")
    parser.add_argument("--child-sequential", type=int, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child_sequential is not None:  # the sequential section, in its own process
        print(json.dumps(asyncio.run(sequential_child(args.url, args.child_sequential))))
        return 0
    console = Console()
    if not console.is_terminal:  # a log file or a pipe: keep the table on one line per row
        console.width = max(console.width, 130)
    db = BenchDatabase(args.url)
    try:
        report = run_all(db, QUICK if args.quick else FULL, console)
    finally:
        db.drop()
    path = args.json or HERE / "out" / f"pg-{datetime.now(UTC):%Y%m%d-%H%M%S}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n")
    console.print(f"figures written to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
