"""The PostgreSQL backend (extra ``spokehub[postgres]``): many workers on many machines.

The SQL is the one ``relational.py`` shares with SQLite; what PostgreSQL adds:

* claims lock the rows they pick with ``FOR UPDATE SKIP LOCKED``, so concurrent workers
  never wait for each other nor take the same run, and a queue with limits is claimed under
  a transaction-scoped advisory lock so its counts hold until the claim commits;
* every write that makes work ready sends ``NOTIFY spokehub_work`` (delivered at commit); idle
  workers ``LISTEN`` on a connection of their own that reconnects by itself, and still poll
  as a fallback;
* the connection reconnects after a server restart: the operation that met the broken
  connection fails with ``StoreUnavailable`` (its outcome is unknown, as for any lost commit),
  the next one reconnects, never in the middle of a transaction;
* at connect, a server whose ``fsync`` or ``synchronous_commit`` is off is refused unless
  the user asked for it (``Settings.unsafe_durability``): spokehub's guarantees rest on a
  commit being durable.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import select
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from spokehub.config import Settings
from spokehub.errors import ConfigurationError, StoreError, StoreUnavailable
from spokehub.store.executor import Executor
from spokehub.store.relational import RelationalStore

try:
    import psycopg
except ImportError:  # pragma: no cover - exercised only without the extra
    psycopg = None  # type: ignore[assignment]

log = logging.getLogger("spokehub.postgres")

CHANNEL = "spokehub_work"
# Keys of pg_advisory_xact_lock: one for migrations, and one space for queue claims.
_MIGRATION_LOCK = 0x5B0E_4B0B
_QUEUE_LOCK_SPACE = 0x5B0E


@functools.lru_cache(maxsize=2048)
def _translate(sql: str) -> str:
    """``?`` placeholders to psycopg's ``%s`` (a literal ``%`` doubles)."""
    return sql.replace("%", "%%").replace("?", "%s")


def _describe(url: str) -> str:
    """The URL without its password, for messages."""
    try:
        info = psycopg.conninfo.conninfo_to_dict(url)
    except Exception:
        return "the PostgreSQL server"
    host = info.get("host") or "localhost"
    return f"PostgreSQL at {host}:{info.get('port') or 5432}/{info.get('dbname') or ''}"


class PgConnection:
    """A psycopg connection that speaks ``?`` placeholders and reconnects when broken.

    It counts the rows written through it, which the executor uses to tell a commit that
    wrote something (and cost a WAL flush) from one that did not.
    """

    def __init__(self, connect: Callable[[], psycopg.Connection[Any]]) -> None:
        self._connect = connect
        self.raw: psycopg.Connection[Any] = connect()
        self.written = 0
        self.in_transaction = False

    def _live(self) -> psycopg.Connection[Any]:
        if self.raw.closed or self.raw.broken:
            if self.in_transaction:
                # Reconnecting here would run the rest of the transaction's statements one
                # by one in autocommit on the new connection: fail it instead.
                raise psycopg.OperationalError("the connection was lost inside a transaction")
            with contextlib.suppress(Exception):
                self.raw.close()
            self.raw = self._connect()
        return self.raw

    def execute(self, sql: str, params: Sequence[Any] = ()) -> psycopg.Cursor[Any]:
        if sql in ("COMMIT", "ROLLBACK"):
            self.in_transaction = False
        cur = self._live().execute(_translate(sql), params or None)
        if sql == "BEGIN":
            self.in_transaction = True
        if cur.rowcount > 0 and sql.lstrip()[:6].upper() != "SELECT":
            self.written += cur.rowcount
        return cur

    def rollback(self) -> None:
        self.in_transaction = False
        if not (self.raw.closed or self.raw.broken):  # else the server dropped it already
            self.raw.execute("ROLLBACK")

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        with self._live().cursor() as cur:
            cur.executemany(_translate(sql), rows)
        self.written += len(rows)

    def close(self) -> None:
        self.raw.close()


class _PgDialect:
    def begin(self, conn: PgConnection) -> None:
        conn.execute("BEGIN")

    def commit(self, conn: PgConnection) -> None:
        conn.execute("COMMIT")

    def rollback(self, conn: PgConnection) -> None:
        conn.rollback()

    def savepoint(self, conn: PgConnection) -> None:
        conn.execute("SAVEPOINT op")

    def release(self, conn: PgConnection) -> None:
        conn.execute("RELEASE SAVEPOINT op")

    def rollback_to(self, conn: PgConnection) -> None:
        conn.execute("ROLLBACK TO SAVEPOINT op")

    def changes(self, conn: PgConnection) -> int:
        return conn.written

    def translate(self, exc: Exception) -> Exception:
        if isinstance(exc, psycopg.OperationalError):
            return StoreUnavailable(
                f"PostgreSQL connection failed ({str(exc).strip()}); the operation may or may "
                "not have committed. spokehub reconnects on the next operation"
            )
        if isinstance(exc, psycopg.Error):
            return StoreError(f"PostgreSQL error: {str(exc).strip()}")
        return exc


def _require_psycopg() -> None:
    if psycopg is None:
        raise ConfigurationError(
            "PostgreSQL support needs psycopg: pip install 'spokehub[postgres]'"
        )


def check_durability(raw: psycopg.Connection[Any], url: str) -> None:
    """Refuse a server that acknowledges commits it may lose on a crash."""
    for setting in ("fsync", "synchronous_commit"):
        row = raw.execute(f"SHOW {setting}").fetchone()
        value = str(row[0]) if row else ""
        if value == "off":
            raise ConfigurationError(
                f"{_describe(url)} runs with {setting}=off: a crash of the server can lose "
                "committed steps, so a recorded step could run again. Turn it on "
                f"(ALTER SYSTEM SET {setting} = on; SELECT pg_reload_conf()), or, for a "
                "throwaway database only, set SPOKEHUB_UNSAFE_DURABILITY=1 (--unsafe-durability)"
            )


class PostgresStore(RelationalStore):
    """A Store on a PostgreSQL database. Create it with ``open_store``."""

    dialect = "postgresql"
    lock_rows = " FOR UPDATE SKIP LOCKED"
    integrity_errors = (psycopg.IntegrityError,) if psycopg is not None else ()

    def __init__(self, settings: Settings) -> None:
        _require_psycopg()
        self.url = settings.database_url
        self._settings = settings
        self._listener: _Listener | None = None
        self._listener_lock = threading.Lock()
        # Each operation of a batch runs in a savepoint, a subtransaction; past 64 in one
        # transaction PostgreSQL's per-backend subtransaction cache overflows and every
        # other session's snapshots get slower. So batches stay at 64.
        self._x: Executor[PgConnection] = Executor(
            self._open, _PgDialect(), name="spokehub-postgres", max_batch=64
        )
        self.stats = self._x.stats

    def _raw_connect(self) -> psycopg.Connection[Any]:
        url = self.url.replace("postgres://", "postgresql://", 1)
        try:
            raw = psycopg.connect(url, autocommit=True, connect_timeout=10)
        except psycopg.Error as exc:
            raise StoreUnavailable(
                f"cannot connect to {_describe(url)}: {str(exc).strip()}; check "
                "SPOKEHUB_DATABASE_URL / --db and that the server is running"
            ) from None
        if not self._settings.unsafe_durability:
            try:
                check_durability(raw, url)
            except BaseException:
                raw.close()
                raise
        return raw

    def _open(self) -> PgConnection:
        return PgConnection(self._raw_connect)

    async def close(self) -> None:
        with self._listener_lock:
            listener, self._listener = self._listener, None
        if listener is not None:
            listener.stop()
        self._x.close()

    async def db_time(self) -> float:
        return await self._x.run("read", _db_time)

    def subscribe(self, callback: Callable[[str], None]) -> Callable[[], None]:
        """Call ``callback(queue)`` (on a listener thread) when a queue gets work."""
        with self._listener_lock:
            if self._listener is None:
                self._listener = _Listener(self._raw_connect, self.url)
            listener = self._listener
        return listener.add(callback)

    # -- hooks ------------------------------------------------------------------------------
    def _size(self, conn: PgConnection) -> int:
        row = conn.execute(
            "SELECT COALESCE(SUM(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE c.relkind = 'r' AND n.nspname = current_schema() "
            "AND c.relname IN ('runs', 'events', 'inbox', 'blobs')"
        ).fetchone()
        return int(row[0]) if row else 0

    def _compact(self, conn: PgConnection) -> None:
        # Plain VACUUM (no lock on readers or writers) makes the freed space reusable;
        # VACUUM FULL would give it back to the OS but locks the tables: that is the
        # operator's call, not an automatic one.
        for table in ("runs", "events", "inbox", "blobs"):
            conn.execute(f"VACUUM (ANALYZE) {table}")

    def _schema_version(self, conn: PgConnection) -> int:
        row = conn.execute("SELECT to_regclass('schema_migrations')").fetchone()
        if row is None or row[0] is None:
            return 0
        row = conn.execute("SELECT MAX(version) FROM schema_migrations").fetchone()
        return int(row[0] or 0) if row else 0

    def _begin_migration(self, conn: PgConnection) -> None:
        conn.execute("BEGIN")
        # Fail rather than queue behind a long transaction holding a table (the ALTERs
        # need a brief exclusive lock); `spokehub db upgrade` can simply be run again.
        conn.execute("SET LOCAL lock_timeout = '10s'")
        conn.execute("SELECT pg_advisory_xact_lock(?)", (_MIGRATION_LOCK,))

    def _tables(self, conn: PgConnection) -> list[str]:
        rows = conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
        ).fetchall()
        return [r[0] for r in rows]

    def _copy_rows(
        self, conn: PgConnection, table: str, columns: Sequence[str], rows: Sequence[Any]
    ) -> None:
        # Identity columns keep the source's ids (inbox ids are referenced from the ledger).
        marks = ",".join("?" * len(columns))
        conn.executemany(
            f"INSERT INTO {table} ({', '.join(columns)}) OVERRIDING SYSTEM VALUE VALUES ({marks})",
            [tuple(r) for r in rows],
        )

    def _after_copy(self, conn: PgConnection) -> None:
        identities = conn.execute(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_schema = current_schema() AND is_identity = 'YES'"
        ).fetchall()
        for table, column in identities:
            conn.execute(
                f"SELECT setval(pg_get_serial_sequence(?, ?), "
                f"COALESCE((SELECT MAX({column}) FROM {table}), 0) + 1, false)",
                (table, column),
            )

    def _lock_run(self, conn: PgConnection, run_id: str) -> None:
        conn.execute("SELECT 1 FROM runs WHERE id = ? FOR UPDATE", (run_id,))

    def _lock_queue(self, conn: PgConnection, queue: str) -> None:
        conn.execute("SELECT pg_advisory_xact_lock(?, hashtext(?))", (_QUEUE_LOCK_SPACE, queue))

    def _notify(self, conn: PgConnection, queue: str) -> None:
        conn.execute("SELECT pg_notify(?, ?)", (CHANNEL, queue))


def _db_time(conn: PgConnection) -> float:
    row = conn.execute("SELECT EXTRACT(EPOCH FROM clock_timestamp())::float8").fetchone()
    assert row is not None
    return float(row[0])


class _Listener:
    """One LISTEN connection per store, on its own thread; reconnects with backoff.

    After a reconnect every subscriber is called once, since notifications sent while the
    connection was down are lost; the workers' polling covers the rest.
    """

    def __init__(self, connect: Callable[[], psycopg.Connection[Any]], url: str) -> None:
        self._connect = connect
        self._url = url
        self._callbacks: list[Callable[[str], None]] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        # stop() writes a byte here: the thread waits on the socket *and* this pipe, so it
        # ends at once instead of waiting out a poll timeout (close took ~1 s before).
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_w, False)
        self.connects = 0  # how many times it (re)connected, for tests and logs
        self._conn: psycopg.Connection[Any] | None = None
        self._thread = threading.Thread(target=self._main, name="spokehub-listen", daemon=True)
        self._thread.start()

    def add(self, callback: Callable[[str], None]) -> Callable[[], None]:
        with self._lock:
            self._callbacks.append(callback)

        def remove() -> None:
            with self._lock, contextlib.suppress(ValueError):
                self._callbacks.remove(callback)

        return remove

    def stop(self) -> None:
        self._stopping.set()
        with contextlib.suppress(OSError):  # the pipe is full: the thread is woken already
            os.write(self._wake_w, b"x")
        self._thread.join(timeout=5)
        if not self._thread.is_alive():
            os.close(self._wake_r)
            os.close(self._wake_w)

    def _wait(self, conn: psycopg.Connection[Any]) -> None:
        """Hand over the notifications that arrive until the connection breaks or stop()."""
        for note in conn.notifies(timeout=0):  # any that came with the LISTEN's answer
            self._fire(note.payload)
        while not self._stopping.is_set():
            # The timeout only bounds how long a notification libpq buffered unseen could wait.
            ready, _, _ = select.select([conn.fileno(), self._wake_r], [], [], 5.0)
            if self._wake_r in ready:
                return
            for note in conn.notifies(timeout=0):  # raises once the connection is gone
                self._fire(note.payload)

    def _fire(self, queue: str) -> None:
        with self._lock:
            callbacks = list(self._callbacks)
        for callback in callbacks:
            try:
                callback(queue)
            except Exception:  # a subscriber's bug must not kill the listener
                log.exception("work notification callback failed")

    def _main(self) -> None:
        delay = 0.05
        while not self._stopping.is_set():
            try:
                conn = self._conn = self._connect()
                try:
                    conn.execute(f"LISTEN {CHANNEL}")
                    self.connects += 1
                    if self.connects > 1:
                        log.info("LISTEN connection to %s is back", _describe(self._url))
                        self._fire("*")  # whatever was sent meanwhile is lost: look now
                    delay = 0.05
                    self._wait(conn)
                finally:
                    self._conn = None
                    with contextlib.suppress(Exception):
                        conn.close()
            except Exception as exc:
                if self._stopping.is_set():
                    return
                log.warning(
                    "LISTEN connection to %s lost (%s); reconnecting in %.2fs",
                    _describe(self._url),
                    str(exc).strip() or type(exc).__name__,
                    delay,
                )
                time.sleep(delay)
                delay = min(delay * 2, 2.0)
