"""Parts of ``pg_bench.py`` that need nothing of it: process CPU, quantiles, and the raw commit
rate of the server (one small INSERT per transaction from N client processes), which the
benchmark reports spokehub's figures against."""

from __future__ import annotations

import math
import multiprocessing as mp
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg


def proc_cpu(pid: int) -> float:
    """CPU seconds (user + system) a process has used so far, from /proc (0 if it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    # utime and stime are fields 14 and 15; the command name before them may hold spaces.
    utime, stime = fields.rsplit(")", 1)[1].split()[11:13]
    return (int(utime) + int(stime)) / os.sysconf("SC_CLK_TCK")


def quantile(values: Sequence[float], q: float) -> float:
    """The q-quantile (0..1) by linear interpolation between closest ranks."""
    ordered = sorted(values)
    pos = q * (len(ordered) - 1)
    low, high = math.floor(pos), math.ceil(pos)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


# -- 1. raw commit rate ------------------------------------------------------------------------
@dataclass
class RawRate:
    clients: int
    commits: int
    commits_per_s: float
    seconds: float


def _raw_client(url: str, seconds: float, ready: Any, go: Any, out: Any) -> None:
    """One client process: autocommit INSERTs (one per transaction) for ``seconds``."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SELECT 1")
        ready.put(os.getpid())
        go.wait()
        commits = 0
        begin = time.perf_counter()
        while time.perf_counter() - begin < seconds:
            conn.execute("INSERT INTO raw_commits (at, v) VALUES (%s, 'x')", (time.time(),))
            commits += 1
        out.put((commits, time.perf_counter() - begin))


def measure_raw(url: str, clients: int, seconds: float) -> RawRate:
    """Processes (not threads: no GIL between them), each with its own connection."""
    ctx = mp.get_context("spawn")
    ready, out, go = ctx.Queue(), ctx.Queue(), ctx.Event()
    procs = [
        ctx.Process(target=_raw_client, args=(url, seconds, ready, go, out)) for _ in range(clients)
    ]
    for p in procs:
        p.start()
    try:
        for _ in procs:
            ready.get(timeout=60)
        go.set()
        results = [out.get(timeout=seconds + 60) for _ in procs]
    finally:
        for p in procs:
            p.join(timeout=10)
    commits = sum(n for n, _ in results)
    return RawRate(
        clients=clients,
        commits=commits,
        commits_per_s=sum(n / s for n, s in results),
        seconds=max(s for _, s in results),
    )
