"""Measure spokehub's durable core against the raw SQLite commit rate of the same disk.

Usage:
    .venv/bin/python benchmarks/bench.py [--quick] [--json out.json] [--dir /some/tmp]

Every figure comes from one run on one machine. A disk's fsync rate swings a lot from minute
to minute, so the raw SQLite commit rate (one insert per transaction, WAL, the same
``synchronous`` level spokehub uses, in the same directory) is measured before and after the
spokehub sections, and spokehub's throughput is printed as a ratio to it.

Sections:
    raw          raw SQLite durable commits/s (before and after)
    sequential   N ten-step runs one after another via ``client.run_async``
    concurrent   100 ten-step runs started at once, drained by one Worker(concurrency=200)
    cold start   ``import spokehub`` and a one-step run, each in a fresh process
    waiting      10,000 runs parked on a signal (worker RSS), then signalled and drained
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import resource
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from rich.console import Console
from rich.table import Table

import spokehub as sh
from spokehub import Client, RunHandle, Settings, Worker

T = TypeVar("T")
X = TypeVar("X")

STEPS_PER_RUN = 10
CONCURRENCY = 200
# Starts and signals are sent in chunks of concurrent calls: each chunk shares a few group
# commits instead of paying one fsync per call, and a chunk bounds the futures held at once.
CHUNK = 500


# -- the workflows under test ----------------------------------------------------------------
# Steps do (almost) nothing, so every figure is the engine's own cost: ledger, commits, replay.
@sh.step(name="bench.add_one")
async def add_one(x: int) -> int:
    return x + 1


@sh.workflow(name="bench.ten_steps")
async def ten_steps(x: int) -> int:
    for _ in range(STEPS_PER_RUN):
        x = await add_one(x)
    return x


@sh.workflow(name="bench.wait_then_step")
async def wait_then_step() -> int:
    got: int = await sh.wait_for_signal("go")
    return await add_one(got)


# -- results ---------------------------------------------------------------------------------
@dataclass
class Machine:
    date: str
    host: str
    cpu: str
    cores: int
    usable_cores: int
    python: str
    sqlite: str
    spokehub: str
    code: str
    platform: str
    directory: str
    synchronous: str
    load_before: tuple[float, float, float]


@dataclass
class Raw:
    commits_per_s: float
    commits: int
    seconds: float


@dataclass
class Throughput:
    """One batch of ten-step runs: commits, CPU and wall time, per step."""

    runs: int
    steps: int
    commits: int
    start_commits: int
    wall_s: float
    cpu_s: float
    db_thread_cpu_s: float | None

    @property
    def commits_per_step(self) -> float:
        return self.commits / self.steps

    @property
    def commits_per_run(self) -> float:
        return self.commits / self.runs

    @property
    def cpu_ms_per_step(self) -> float:
        return 1000 * self.cpu_s / self.steps

    @property
    def steps_per_s(self) -> float:
        return self.steps / self.wall_s

    def to_dict(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "commits_per_step": self.commits_per_step,
            "commits_per_run": self.commits_per_run,
            "cpu_ms_per_step": self.cpu_ms_per_step,
            "steps_per_s": self.steps_per_s,
        }


@dataclass
class Timed:
    """A fresh process: its wall time, and the CPU it used (less sensitive to machine load)."""

    wall_s: float
    cpu_s: float


@dataclass
class ColdStart:
    python: list[Timed]  # `python -c pass`: the interpreter's own start, which no code removes
    imports: list[Timed]
    one_step_runs: list[Timed]
    import_as_shell: Timed  # with this shell's environment, bytecode cache or not

    @staticmethod
    def median(samples: list[Timed], cpu: bool = False) -> float:
        return statistics.median(t.cpu_s if cpu else t.wall_s for t in samples)

    @property
    def import_median_s(self) -> float:
        return self.median(self.imports)

    @property
    def one_step_median_s(self) -> float:
        return self.median(self.one_step_runs)


@dataclass
class Waiting:
    runs: int
    rss_baseline_mb: float
    rss_waiting_mb: float
    rss_peak_mb: float
    waiting: int
    completed: int
    statuses: dict[str, int]
    results_ok: bool
    start_s: float
    park_s: float
    signal_s: float
    drain_s: float
    commits: int


# -- helpers ---------------------------------------------------------------------------------
def settings_for(path: Path) -> Settings:
    # Explicit settings, not the environment: the benchmark always measures the defaults
    # (synchronous=FULL), whatever SPOKEHUB_* variables the shell happens to carry.
    return Settings(database_url=f"sqlite:///{path}")


def db_thread_cpu() -> float | None:
    """CPU seconds used so far by the store's database thread (Linux only)."""
    for thread in threading.enumerate():
        if thread.name == "spokehub-sqlite" and thread.native_id is not None:
            try:
                fields = Path(f"/proc/self/task/{thread.native_id}/stat").read_text()
            except OSError:
                return None
            # utime and stime are fields 14 and 15; the command name before them may hold spaces.
            utime, stime = fields.rsplit(")", 1)[1].split()[11:13]
            return (int(utime) + int(stime)) / os.sysconf("SC_CLK_TCK")
    return None


def proc_status_mb(field: str) -> float:
    """A memory figure of this process from /proc/self/status (VmRSS, VmHWM), in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"{field} is not in /proc/self/status")


async def in_chunks(call: Callable[[X], Awaitable[T]], items: Sequence[X]) -> list[T]:
    """``call`` each item, CHUNK calls at a time, so concurrent calls share group commits."""
    out: list[T] = []
    for begin in range(0, len(items), CHUNK):
        out += await asyncio.gather(*(call(item) for item in items[begin : begin + CHUNK]))
    return out


def load_average() -> tuple[float, float, float]:
    # Other processes on the machine steal CPU from every figure; the report shows how busy it was.
    return os.getloadavg() if hasattr(os, "getloadavg") else (0.0, 0.0, 0.0)


def code_version() -> str:
    """The commit measured, and whether src/ had uncommitted changes (others work in this tree)."""
    repo = Path(__file__).resolve().parents[1]
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=repo, capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no", "--", "src"],
            cwd=repo,
            capture_output=True,
            text=True,
        ).stdout.strip()
    except OSError:
        return "unknown"
    return f"{head or 'unknown'}{' + uncommitted changes in src/' if dirty else ''}"


def machine_facts(directory: Path) -> Machine:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return Machine(
        date=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        host=platform.node(),
        cpu=cpu,
        cores=os.cpu_count() or 0,
        usable_cores=len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 0,
        python=platform.python_version(),
        sqlite=sqlite3.sqlite_version,
        spokehub=sh.__version__,
        code=code_version(),
        platform=platform.platform(),
        directory=str(directory),
        synchronous=Settings().sqlite_synchronous.upper(),
        load_before=load_average(),
    )


# -- 1. raw SQLite ---------------------------------------------------------------------------
def cpu_reference(repeats: int = 5) -> float:
    """CPU ms of a fixed pure-Python workload (JSON, dicts, calls), best of ``repeats``.

    This virtual machine's CPU speed drifts by a third from one quarter hour to the next. The
    same workload timed in the same run tells how fast the CPU was, so CPU per step can also be
    read in these drift-free units.
    """
    payload = {"run": "r1", "seq": 3, "data": {"name": "step", "result": list(range(20))}}
    best = float("inf")
    for _ in range(repeats):
        began = time.process_time()
        for i in range(2_000):
            text = json.dumps({**payload, "i": i}, separators=(",", ":"))
            back = json.loads(text)
            back["data"]["result"].sort(reverse=True)
        best = min(best, time.process_time() - began)
    return best * 1000


def measure_raw(directory: Path, seconds: float, synchronous: str) -> Raw:
    """One small insert per transaction on a fresh WAL file: the disk's durable commit rate."""
    path = directory / f"raw-{time.monotonic_ns()}.db"
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute(f"PRAGMA synchronous = {synchronous}")
        conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, at REAL NOT NULL, v TEXT)")
        commits = 0
        begin = time.perf_counter()
        while (elapsed := time.perf_counter() - begin) < seconds:
            # BEGIN IMMEDIATE like spokehub's writer, so the raw figure pays the same locking.
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("INSERT INTO t (at, v) VALUES (?, 'x')", (elapsed,))
            conn.execute("COMMIT")
            commits += 1
        seconds_taken = time.perf_counter() - begin
    finally:
        conn.close()
    return Raw(commits / seconds_taken, commits, seconds_taken)


# -- 2. and 3. throughput --------------------------------------------------------------------
async def sequential(directory: Path, runs: int) -> Throughput:
    """``runs`` ten-step runs, one after another, each started and executed in-process."""
    client = Client(settings=settings_for(directory / "sequential.db"))
    try:
        await client.ensure_schema()
        for i in range(2):  # warm-up: lazy imports and first-call caches stay out of the figures
            await client.run_async(ten_steps, -1 - i)
        stats = client.store.stats
        commits0, db0 = stats.commits, db_thread_cpu()
        wall0, cpu0 = time.perf_counter(), time.process_time()
        for i in range(runs):
            result = await client.run_async(ten_steps, i)
            if result != i + STEPS_PER_RUN:
                raise AssertionError(f"run {i} returned {result}, not {i + STEPS_PER_RUN}")
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
        db1 = db_thread_cpu()
        return Throughput(
            runs=runs,
            steps=runs * STEPS_PER_RUN,
            commits=stats.commits - commits0,
            start_commits=0,  # starts are interleaved with execution here; all are in `commits`
            wall_s=wall,
            cpu_s=cpu,
            db_thread_cpu_s=None if db0 is None or db1 is None else db1 - db0,
        )
    finally:
        await client.close_async()


def concurrent_rounds(directory: Path, runs: int, rounds: int) -> list[Throughput]:
    """Several rounds on fresh files: one round lasts a fraction of a second, so it is noisy."""
    return [asyncio.run(concurrent(directory / f"concurrent-{i}.db", runs)) for i in range(rounds)]


def median_round(rounds: list[Throughput]) -> Throughput:
    return sorted(rounds, key=lambda t: t.steps_per_s)[len(rounds) // 2]


async def concurrent(path: Path, runs: int) -> Throughput:
    """``runs`` ten-step runs started at once, then drained by one worker."""
    client = Client(settings=settings_for(path))
    try:
        await client.ensure_schema()
        stats = client.store.stats
        commits0, db0 = stats.commits, db_thread_cpu()
        wall0, cpu0 = time.perf_counter(), time.process_time()

        async def start(i: int) -> RunHandle[int]:
            return await client.start_async(ten_steps, i)

        handles = await in_chunks(start, range(runs))
        start_commits = stats.commits - commits0
        await Worker(client, concurrency=CONCURRENCY).run(until_idle=True)
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
        db1 = db_thread_cpu()
        results = await asyncio.gather(*(h.result_async(timeout=10) for h in handles))
        if results != [i + STEPS_PER_RUN for i in range(runs)]:
            raise AssertionError("a concurrent run returned a wrong result")
        return Throughput(
            runs=runs,
            steps=runs * STEPS_PER_RUN,
            commits=stats.commits - commits0,
            start_commits=start_commits,
            wall_s=wall,
            cpu_s=cpu,
            db_thread_cpu_s=None if db0 is None or db1 is None else db1 - db0,
        )
    finally:
        await client.close_async()


# -- 4. cold start ---------------------------------------------------------------------------
ONE_STEP_RUN = textwrap.dedent(
    """
    import os, tempfile
    import spokehub as sh

    @sh.step
    async def hello(name: str) -> str:
        return "hello " + name

    @sh.workflow
    async def greet(name: str) -> str:
        return await hello(name)

    with tempfile.TemporaryDirectory(dir=os.environ["BENCH_DIR"]) as d:
        with sh.Client("sqlite:///" + os.path.join(d, "cold.db")) as client:
            assert client.run(greet, "world") == "hello world"
    """
)


def time_process(code: str, env: dict[str, str], directory: Path) -> Timed:
    """Wall time of a fresh ``python -c code`` from fork to exit, and its CPU time."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    begin = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, env=env, cwd=directory)
    wall = time.perf_counter() - begin
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return Timed(wall, cpu)


def cached_env(directory: Path) -> dict[str, str]:
    """The environment of an installed package: bytecode cached (in the temp dir, not src/).

    A shell with PYTHONDONTWRITEBYTECODE=1 would otherwise compile spokehub from source in
    every process, which a pip-installed spokehub never does.
    """
    env = {**os.environ, "BENCH_DIR": str(directory), "PYTHONPYCACHEPREFIX": str(directory / "pyc")}
    for name in ("SPOKEHUB_DATABASE_URL", "PYTHONDONTWRITEBYTECODE"):
        env.pop(name, None)
    return env


def cold_start(directory: Path, repeats: int) -> ColdStart:
    env = cached_env(directory)
    time_process(ONE_STEP_RUN, env, directory)  # writes the bytecode cache, warms the page cache
    cold = ColdStart(
        python=[],
        imports=[],
        one_step_runs=[],
        import_as_shell=time_process(
            "import spokehub", {**os.environ, "BENCH_DIR": str(directory)}, directory
        ),
    )
    # Interleaved, so a burst of load from other processes hits all three series alike.
    for _ in range(repeats):
        cold.python.append(time_process("pass", env, directory))
        cold.imports.append(time_process("import spokehub", env, directory))
        cold.one_step_runs.append(time_process(ONE_STEP_RUN, env, directory))
    return cold


# -- 5. many waiting runs (runs in a child process, so its RSS is the worker's alone) --------
def count_statuses(path: Path) -> dict[str, int]:
    # A plain sqlite3 connection: the check does not trust the code it checks.
    with sqlite3.connect(path) as conn:
        rows = conn.execute("SELECT status, COUNT(*) FROM runs GROUP BY status").fetchall()
    return {status: count for status, count in rows}


def results_sum(path: Path) -> int:
    with sqlite3.connect(path) as conn:
        (total,) = conn.execute(
            "SELECT SUM(CAST(result AS INTEGER)) FROM runs WHERE status = 'completed'"
        ).fetchone()
    return int(total or 0)


async def waiting_child(directory: Path, runs: int) -> Waiting:
    path = directory / "waiting.db"
    client = Client(settings=settings_for(path))
    try:
        await client.ensure_schema()
        rss_baseline = proc_status_mb("VmRSS")
        commits0 = client.store.stats.commits
        t0 = time.perf_counter()

        async def start(_: int) -> RunHandle[int]:
            return await client.start_async(wait_then_step)

        async def signal(i: int) -> None:
            await client.send_signal_async(handles[i].id, "go", i)

        handles = await in_chunks(start, range(runs))
        t1 = time.perf_counter()
        # A wait without a deadline unloads at once: when this returns, every run is parked.
        await Worker(client, concurrency=CONCURRENCY).run(until_idle=True)
        t2 = time.perf_counter()
        rss_waiting = proc_status_mb("VmRSS")
        waiting = count_statuses(path).get("waiting", 0)
        await in_chunks(signal, range(runs))
        t3 = time.perf_counter()
        await Worker(client, concurrency=CONCURRENCY).run(until_idle=True)
        t4 = time.perf_counter()
        commits = client.store.stats.commits - commits0
    finally:
        await client.close_async()
    statuses = count_statuses(path)
    expected_sum = sum(range(runs)) + runs  # each run returns its signal payload + 1
    return Waiting(
        runs=runs,
        rss_baseline_mb=rss_baseline,
        rss_waiting_mb=rss_waiting,
        rss_peak_mb=proc_status_mb("VmHWM"),
        waiting=waiting,
        completed=statuses.get("completed", 0),
        statuses=statuses,
        results_ok=results_sum(path) == expected_sum,
        start_s=t1 - t0,
        park_s=t2 - t1,
        signal_s=t3 - t2,
        drain_s=t4 - t3,
        commits=commits,
    )


def waiting_runs(directory: Path, runs: int) -> Waiting:
    proc = subprocess.run(
        [sys.executable, __file__, "--child-waiting", str(runs), "--dir", str(directory)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"the waiting-runs child process failed:\n{proc.stderr[-4000:]}")
    return Waiting(**json.loads(proc.stdout.strip().splitlines()[-1]))


# -- the report ------------------------------------------------------------------------------
@dataclass
class Row:
    figure: str
    target: str
    measured: str
    ok: bool | None  # None: a figure without a target


def rows(
    raw: tuple[Raw, Raw], seq: Throughput, conc: Throughput, cold: ColdStart, wait: Waiting
) -> list[Row]:
    ref = statistics.mean(r.commits_per_s for r in raw)
    seq_bound = 1 + 2 / STEPS_PER_RUN  # <= 1 commit per step + <= 2 per run
    ms = 1000
    return [
        Row("raw SQLite commits/s (before)", "-", f"{raw[0].commits_per_s:,.0f}", None),
        Row("raw SQLite commits/s (after)", "-", f"{raw[1].commits_per_s:,.0f}", None),
        Row(
            "sequential: commits/step",
            f"<= 1/step + 2/run = {seq_bound:.2f}",
            f"{seq.commits_per_step:.2f} ({seq.commits_per_run:.1f}/run)",
            seq.commits_per_step <= seq_bound,
        ),
        Row(
            "sequential: CPU ms/step",
            "<= 0.60",
            f"{seq.cpu_ms_per_step:.3f}",
            seq.cpu_ms_per_step <= 0.6,
        ),
        Row("sequential: steps/s", "-", f"{seq.steps_per_s:,.0f}", None),
        Row("sequential: steps/s / raw commits/s", "-", f"{seq.steps_per_s / ref:.3f}", None),
        Row(
            "concurrent: commits/step",
            "<= 0.25",
            f"{conc.commits_per_step:.3f} ({conc.commits} commits)",
            conc.commits_per_step <= 0.25,
        ),
        Row(
            "concurrent: CPU ms/step",
            f"<= sequential ({seq.cpu_ms_per_step:.3f})",
            f"{conc.cpu_ms_per_step:.3f}",
            conc.cpu_ms_per_step <= seq.cpu_ms_per_step,
        ),
        Row("concurrent: wall s", "-", f"{conc.wall_s:.3f}", None),
        Row("concurrent: steps/s", "-", f"{conc.steps_per_s:,.0f}", None),
        Row("concurrent: steps/s / raw commits/s", "-", f"{conc.steps_per_s / ref:.3f}", None),
        Row(
            "cold: import spokehub (median)",
            "< 150 ms",
            f"{cold.import_median_s * ms:.0f} ms",
            cold.import_median_s < 0.150,
        ),
        Row(
            "cold: one-step run process (median)",
            "< 0.5 s",
            f"{cold.one_step_median_s:.3f} s",
            cold.one_step_median_s < 0.5,
        ),
        Row(
            f"waiting: worker RSS with {wait.runs:,} parked",
            "< 200 MB",
            f"{wait.rss_waiting_mb:.0f} MB",
            wait.rss_waiting_mb < 200,
        ),
        Row(
            f"waiting: completed after signals / {wait.runs:,}",
            f"= {wait.runs:,}",
            f"{wait.completed:,}" + ("" if wait.results_ok else " (WRONG RESULTS)"),
            wait.completed == wait.runs and wait.waiting == wait.runs and wait.results_ok,
        ),
    ]


def print_report(
    console: Console,
    raw: tuple[Raw, Raw],
    seq: Throughput,
    conc_rounds: list[Throughput],
    cold: ColdStart,
    wait: Waiting,
) -> list[Row]:
    conc = median_round(conc_rounds)
    table = Table(title="spokehub durable core", title_justify="left")
    for col in ("figure", "target", "measured", "result"):
        table.add_column(col, justify="right" if col == "measured" else "left")
    result = rows(raw, seq, conc, cold, wait)
    for row in result:
        verdict = "" if row.ok is None else ("[green]pass[/]" if row.ok else "[red]MISS[/]")
        table.add_row(row.figure, row.target, row.measured, verdict)
    console.print(table)
    print_details(console, seq, conc_rounds, cold, wait)
    return result


def print_details(
    console: Console, seq: Throughput, conc_rounds: list[Throughput], cold: ColdStart, wait: Waiting
) -> None:
    conc = median_round(conc_rounds)

    def db_share(t: Throughput) -> str:
        if t.db_thread_cpu_s is None:
            return "n/a"
        return f"{t.db_thread_cpu_s / t.cpu_s:.0%}"

    console.print("\n[bold]details[/]")
    for name, t in (("sequential", seq), ("concurrent", conc)):
        console.print(
            f"  {name}: {t.runs} runs x {STEPS_PER_RUN} steps, {t.commits} commits "
            f"({t.start_commits} while starting), wall {t.wall_s:.3f} s, CPU {t.cpu_s:.3f} s "
            f"(database thread {db_share(t)})"
        )
    if len(conc_rounds) > 1:
        console.print(
            f"  concurrent rounds (the median round is shown): "
            f"{', '.join(f'{t.steps_per_s:,.0f}' for t in conc_rounds)} steps/s; "
            f"{', '.join(f'{t.cpu_ms_per_step:.3f}' for t in conc_rounds)} CPU ms/step; "
            f"{', '.join(str(t.commits) for t in conc_rounds)} commits"
        )
    ms = 1000
    console.print(
        f"  cold, bytecode cached, median wall / CPU: python -c pass "
        f"{cold.median(cold.python) * ms:.0f} / {cold.median(cold.python, cpu=True) * ms:.0f} ms; "
        f"import spokehub {cold.median(cold.imports) * ms:.0f} / "
        f"{cold.median(cold.imports, cpu=True) * ms:.0f} ms "
        f"(fastest {min(t.wall_s for t in cold.imports) * ms:.0f} ms); one-step run "
        f"{cold.median(cold.one_step_runs) * ms:.0f} / "
        f"{cold.median(cold.one_step_runs, cpu=True) * ms:.0f} ms; "
        f"import as this shell runs it {cold.import_as_shell.wall_s * ms:.0f} ms"
    )
    console.print(
        f"  waiting: RSS {wait.rss_baseline_mb:.0f} MB before starting, "
        f"{wait.rss_waiting_mb:.0f} MB with all parked, peak {wait.rss_peak_mb:.0f} MB; "
        f"start {wait.start_s:.1f} s, park {wait.park_s:.1f} s, signal {wait.signal_s:.1f} s, "
        f"drain {wait.drain_s:.1f} s; {wait.commits:,} commits; "
        f"parked {wait.waiting:,}, final statuses {wait.statuses}"
    )


# -- main ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Sizes:
    raw_seconds: float
    sequential_runs: int
    concurrent_runs: int
    concurrent_rounds: int
    cold_repeats: int
    waiting_runs: int


FULL = Sizes(raw_seconds=3.0, sequential_runs=200, concurrent_runs=100, concurrent_rounds=5,
             cold_repeats=9, waiting_runs=10_000)  # fmt: skip
QUICK = Sizes(raw_seconds=0.5, sequential_runs=20, concurrent_runs=100, concurrent_rounds=1,
              cold_repeats=2, waiting_runs=500)  # fmt: skip


def run_all(directory: Path, sizes: Sizes, console: Console) -> dict[str, Any]:
    machine = machine_facts(directory)
    console.print(
        f"[bold]machine[/] {machine.cpu}, {machine.cores} cores ({machine.usable_cores} usable), "
        f"Python {machine.python}, SQLite {machine.sqlite}, spokehub {machine.spokehub} "
        f"at {machine.code}\n"
        f"[bold]run[/] {machine.date}, {machine.platform}, dir {machine.directory}, "
        f"WAL synchronous={machine.synchronous}"
    )
    sections: list[tuple[str, Callable[[], Any]]] = [
        ("cpu reference before", cpu_reference),
        ("raw before", lambda: measure_raw(directory, sizes.raw_seconds, machine.synchronous)),
        ("sequential", lambda: asyncio.run(sequential(directory, sizes.sequential_runs))),
        (
            "concurrent",
            lambda: concurrent_rounds(directory, sizes.concurrent_runs, sizes.concurrent_rounds),
        ),
        ("cold start", lambda: cold_start(directory, sizes.cold_repeats)),
        ("waiting", lambda: waiting_runs(directory, sizes.waiting_runs)),
        ("raw after", lambda: measure_raw(directory, sizes.raw_seconds, machine.synchronous)),
        ("cpu reference after", cpu_reference),
    ]
    out: dict[str, Any] = {}
    for name, section in sections:
        begin = time.perf_counter()
        out[name] = section()
        console.print(f"  {name} done in {time.perf_counter() - begin:.1f} s", style="dim")
    raw = (out["raw before"], out["raw after"])
    seq, cold, wait = out["sequential"], out["cold start"], out["waiting"]
    conc_rounds: list[Throughput] = out["concurrent"]
    conc = median_round(conc_rounds)
    table = print_report(console, raw, seq, conc_rounds, cold, wait)
    load_after = load_average()
    ref = (out["cpu reference before"] + out["cpu reference after"]) / 2
    console.print(
        f"CPU reference workload {out['cpu reference before']:.1f} ms before, "
        f"{out['cpu reference after']:.1f} ms after: sequential CPU per step = "
        f"{seq.cpu_ms_per_step / ref:.4f} reference units, concurrent "
        f"{conc.cpu_ms_per_step / ref:.4f} (drift-free; compare runs with these)"
    )
    console.print(
        f"load average before {machine.load_before[0]:.2f}, after {load_after[0]:.2f} "
        f"(on {machine.usable_cores} cores; other processes slow every figure)"
    )
    return {
        "machine": {**asdict(machine), "load_after": load_after},
        "raw": {"before": asdict(raw[0]), "after": asdict(raw[1])},
        "cpu_reference_ms": {
            "before": out["cpu reference before"],
            "after": out["cpu reference after"],
            "sequential_step_units": seq.cpu_ms_per_step / ref,
            "concurrent_step_units": conc.cpu_ms_per_step / ref,
        },
        "sequential": seq.to_dict(),
        "concurrent": conc.to_dict(),
        "concurrent_rounds": [t.to_dict() for t in conc_rounds],
        "cold_start": {
            **asdict(cold),
            "import_median_s": cold.import_median_s,
            "import_cpu_median_s": cold.median(cold.imports, cpu=True),
            "one_step_median_s": cold.one_step_median_s,
            "python_median_s": cold.median(cold.python),
        },
        "waiting": asdict(wait),
        "table": [asdict(r) for r in table],
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke test")
    parser.add_argument("--json", type=Path, help="also write all figures to this file")
    parser.add_argument(
        "--dir", type=Path, help="parent of the temporary database directory (default: system)"
    )
    parser.add_argument("--child-waiting", type=int, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child_waiting is not None:  # the waiting section, in its own process
        result = asyncio.run(waiting_child(args.dir, args.child_waiting))
        print(json.dumps(asdict(result)))
        return 0
    console = Console()
    if not console.is_terminal:  # a log file or a pipe: keep the table on one line per row
        console.width = max(console.width, 120)
    with tempfile.TemporaryDirectory(prefix="spokehub-bench-", dir=args.dir) as tmp:
        report = run_all(Path(tmp), QUICK if args.quick else FULL, console)
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
        console.print(f"figures written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
