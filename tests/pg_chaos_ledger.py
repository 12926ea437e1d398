"""The external system of the PostgreSQL failure tests: a SQLite file outside PostgreSQL.

Steps of ``pg_chaos_app`` write here, from every worker process, so the tests can compare
what really executed with what spokehub recorded. Being a separate SQLite file, it survives
worker kills and PostgreSQL restarts alike.

* ``attempts``: one row per step execution (token, idempotency key, run, seq, attempt, pid,
  step name, start and end times, outcome). A SIGKILL can cut an execution after its start
  row: its ``ended`` stays NULL.
* ``effects``: the applied external effect, keyed by the step's idempotency key and written
  with ``INSERT OR IGNORE``, as an idempotent API would: a second execution under the same
  key is recognised (``attempts.applied = 0``) and changes nothing.

Each write is its own transaction with ``synchronous=FULL``, so what a killed process wrote
before it died is there.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from pathlib import Path

LEDGER_ENV = "PG_CHAOS_LEDGER"

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS attempts (token TEXT PRIMARY KEY, key TEXT NOT NULL, "
    "run TEXT NOT NULL, seq INTEGER NOT NULL, attempt INTEGER NOT NULL, pid INTEGER NOT NULL, "
    "step TEXT NOT NULL, started REAL NOT NULL, ended REAL, outcome TEXT, applied INTEGER, "
    "ppid INTEGER)",
    "CREATE TABLE IF NOT EXISTS effects (key TEXT PRIMARY KEY, token TEXT NOT NULL, "
    "pid INTEGER NOT NULL, at REAL NOT NULL)",
)

_local = threading.local()


def create(path: Path) -> None:
    """Create an empty ledger at ``path`` (in WAL mode, so writers rarely wait on readers)."""
    with contextlib.closing(sqlite3.connect(path)) as conn:
        conn.execute("PRAGMA journal_mode=WAL")
        for statement in _SCHEMA:
            conn.execute(statement)
        conn.commit()


def _conn() -> sqlite3.Connection:
    path = os.environ[LEDGER_ENV]
    conn: sqlite3.Connection | None = getattr(_local, "conn", None)
    if conn is None or getattr(_local, "path", None) != path:
        conn = sqlite3.connect(path, timeout=30, isolation_level=None)
        conn.execute("PRAGMA synchronous=FULL")
        _local.conn, _local.path = conn, path
    return conn


def attempt_started(*, token: str, key: str, run: str, seq: int, attempt: int, step: str) -> None:
    _conn().execute(
        "INSERT INTO attempts (token, key, run, seq, attempt, pid, step, started, ppid) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (token, key, run, seq, attempt, os.getpid(), step, time.time(), os.getppid()),
    )


def apply_effect(*, key: str, token: str) -> bool:
    """Apply the effect under ``key`` once; False when an earlier execution applied it."""
    conn = _conn()
    cur = conn.execute(
        "INSERT OR IGNORE INTO effects (key, token, pid, at) VALUES (?, ?, ?, ?)",
        (key, token, os.getpid(), time.time()),
    )
    applied = cur.rowcount == 1
    conn.execute("UPDATE attempts SET applied = ? WHERE token = ?", (int(applied), token))
    return applied


def attempt_ended(*, token: str, outcome: str) -> None:
    _conn().execute(
        "UPDATE attempts SET ended = ?, outcome = ? WHERE token = ?", (time.time(), outcome, token)
    )


# -- reading it back (the tests) -----------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Attempt:
    token: str
    key: str
    run: str
    seq: int
    attempt: int
    pid: int
    step: str
    started: float
    ended: float | None
    outcome: str | None
    applied: int | None
    ppid: int | None = None  # a worker's pid when a child process ran the run alone

    def by(self, workers: Collection[int]) -> int:
        """The worker process behind this execution: itself, or its isolation child's parent."""
        return self.pid if self.pid in workers or self.ppid is None else self.ppid


@dataclass(frozen=True, slots=True)
class Effect:
    key: str
    token: str
    pid: int
    at: float


@contextlib.contextmanager
def _reader(path: Path) -> Iterator[sqlite3.Connection]:
    with contextlib.closing(sqlite3.connect(path, timeout=30)) as conn:
        yield conn


def attempts(path: Path) -> list[Attempt]:
    with _reader(path) as conn:
        rows = conn.execute(
            "SELECT token, key, run, seq, attempt, pid, step, started, ended, outcome, applied, "
            "ppid FROM attempts ORDER BY started"
        ).fetchall()
    return [Attempt(*row) for row in rows]


def effects(path: Path) -> list[Effect]:
    with _reader(path) as conn:
        rows = conn.execute("SELECT key, token, pid, at FROM effects ORDER BY at").fetchall()
    return [Effect(*row) for row in rows]
