"""The SQLite backend: one file, WAL, ``synchronous=FULL``, group commit on one thread."""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

from spokehub.config import Settings
from spokehub.errors import SchemaError, StoreError, StoreUnavailable
from spokehub.store.executor import Executor
from spokehub.store.relational import RelationalStore


class _SqliteDialect:
    def begin(self, conn: sqlite3.Connection) -> None:
        conn.execute("BEGIN IMMEDIATE")

    def commit(self, conn: sqlite3.Connection) -> None:
        conn.execute("COMMIT")

    def rollback(self, conn: sqlite3.Connection) -> None:
        conn.execute("ROLLBACK")

    def savepoint(self, conn: sqlite3.Connection) -> None:
        conn.execute("SAVEPOINT op")

    def release(self, conn: sqlite3.Connection) -> None:
        conn.execute("RELEASE op")

    def rollback_to(self, conn: sqlite3.Connection) -> None:
        conn.execute("ROLLBACK TO op")

    def changes(self, conn: sqlite3.Connection) -> int:
        return conn.total_changes

    def translate(self, exc: Exception) -> Exception:
        if isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc):
            return StoreUnavailable(
                "the SQLite database stayed locked by another process past busy_timeout_ms; "
                "raise SPOKEHUB_BUSY_TIMEOUT_MS or use PostgreSQL for many writers"
            )
        if isinstance(exc, sqlite3.Error):
            return StoreError(f"SQLite error: {exc}")
        return exc


def parse_sqlite_url(url: str) -> str:
    """``sqlite:///rel.db``, ``sqlite:////abs.db``, ``sqlite:///:memory:`` or a plain path."""
    if url.startswith("sqlite://"):
        rest = url[len("sqlite://") :]
        if not rest.startswith("/"):
            raise SchemaError(f"bad SQLite URL {url!r}; write sqlite:///relative.db or a path")
        return rest[1:] or ":memory:"
    return url


class SqliteStore(RelationalStore):
    """A Store on one SQLite file. Create it with ``open_store``."""

    dialect = "sqlite"
    integrity_errors = (sqlite3.IntegrityError,)

    def __init__(self, settings: Settings) -> None:
        self.url = settings.database_url
        self.path = parse_sqlite_url(settings.database_url)
        self._settings = settings
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._x: Executor[sqlite3.Connection] = Executor(
            self._connect, _SqliteDialect(), name="spokehub-sqlite"
        )
        self.stats = self._x.stats

    def _connect(self) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open SQLite database {self.path!r}: {exc}") from None
        pragmas = (
            f"PRAGMA busy_timeout = {int(self._settings.busy_timeout_ms)}",
            "PRAGMA auto_vacuum = INCREMENTAL",  # takes effect on a new file only
            "PRAGMA journal_mode = WAL",
            f"PRAGMA synchronous = {self._settings.sqlite_synchronous.upper()}",
            "PRAGMA journal_size_limit = 67108864",
            "PRAGMA foreign_keys = OFF",
        )
        try:
            for pragma in pragmas:
                conn.execute(pragma)
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise StoreError(
                f"{self.path!r} is not a usable SQLite database ({exc}); point "
                "SPOKEHUB_DATABASE_URL or --db at a spokehub database or a new path"
            ) from None
        return conn

    async def close(self) -> None:
        self._x.close()

    async def db_time(self) -> float:
        return time.time()  # the file is on this machine: its clock is the one to use

    def subscribe(self, callback: Callable[[str], None]) -> Callable[[], None]:
        # SQLite has no notifications between processes: other processes' workers poll, and
        # workers in this process are woken by the Client directly.
        return lambda: None

    # -- hooks ------------------------------------------------------------------------------
    def _size(self, conn: sqlite3.Connection) -> int:
        if self.path == ":memory:":
            return 0
        return sum(os.path.getsize(p) for p in (self.path, self.path + "-wal") if os.path.exists(p))

    def _compact(self, conn: sqlite3.Connection) -> None:
        """Return freed pages to the operating system and shrink the WAL file."""
        (mode,) = conn.execute("PRAGMA auto_vacuum").fetchone()
        if mode == 2:
            conn.execute("PRAGMA incremental_vacuum").fetchall()
        else:
            conn.execute("VACUUM")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()

    def _schema_version(self, conn: sqlite3.Connection) -> int:
        exists = conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'"
        ).fetchone()
        if not exists:
            return 0
        row = conn.execute("SELECT MAX(version) FROM schema_migrations").fetchone()
        return int(row[0] or 0)

    def _tables(self, conn: sqlite3.Connection) -> list[str]:
        rows = conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        ).fetchall()
        return [r[0] for r in rows]

    def _begin_migration(self, conn: sqlite3.Connection) -> None:
        conn.execute("BEGIN IMMEDIATE")  # the write lock keeps other processes out meanwhile
