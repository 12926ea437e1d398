"""Copy a whole spokehub database to another one (SQLite → PostgreSQL, or back).

Both sides are migrated to the same schema first; the target must hold no runs, so a copy
never mixes two histories. Tables are copied in chunks, each chunk in one transaction on
the target, with their rows exactly as stored (ids, epochs, blobs, inbox ids), so runs
resume on the target where they stopped on the source. Stop the workers on the source
first: a run that moves on during the copy is copied half-way.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from spokehub.errors import ConfigurationError
from spokehub.store.relational import Conn, RelationalStore

# In dependency order (blobs before what refers to them); tables added by later features
# (API tokens, webhook deliveries, ...) are found in the schema and copied after these.
CORE_TABLES = ("blobs", "runs", "events", "inbox")
SKIPPED = ("schema_migrations", "workers")  # bookkeeping of the target / live processes
CHUNK = 2_000

Progress = Callable[[str, int, int], None]  # (table, rows copied so far, rows in the table)


@dataclass(slots=True)
class CopyStats:
    rows: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.rows.values())


async def copy_database(
    source: RelationalStore, target: RelationalStore, progress: Progress | None = None
) -> CopyStats:
    await source.migrate()
    await target.migrate()
    present = await target._x.run("read", _count_runs)
    if present:
        raise ConfigurationError(
            f"the target database already holds {present} run(s); copy into an empty database "
            "(a new PostgreSQL database or schema, or a new SQLite file)"
        )
    tables = await source._x.run("read", source._tables)
    target_tables = set(await target._x.run("read", target._tables))
    order = [t for t in CORE_TABLES if t in tables]
    order += sorted(t for t in tables if t not in CORE_TABLES and t not in SKIPPED)
    stats = CopyStats()
    for table in order:
        if table not in target_tables:
            raise ConfigurationError(
                f"table {table!r} exists in the source but not in the target; both must be "
                "at the same spokehub version"
            )
        total = await source._x.run("read", _count, table)
        columns = await source._x.run("read", _columns, table)
        done = 0
        if progress is not None:
            progress(table, 0, total)
        while True:
            rows = await source._x.run("read", _chunk, table, columns, done, CHUNK)
            if not rows:
                break
            await target._x.run("write", target._copy_rows, table, columns, rows)
            done += len(rows)
            if progress is not None:
                progress(table, done, total)
        stats.rows[table] = done
    await target._x.run("write", target._after_copy)
    return stats


def _count_runs(conn: Conn) -> int:
    return int(conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0])


def _count(conn: Conn, table: str) -> int:
    return int(conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])


def _columns(conn: Conn, table: str) -> list[str]:
    return [d[0] for d in conn.execute(f"SELECT * FROM {table} LIMIT 0").description]


def _chunk(
    conn: Conn, table: str, columns: Sequence[str], offset: int, limit: int
) -> Sequence[Any]:
    # Ordered by every column: a total order on both engines, so chunks neither overlap nor
    # miss rows (a table's key is among its columns, so the sort ends there in practice).
    order = ", ".join(str(i) for i in range(1, len(columns) + 1))
    return conn.execute(  # type: ignore[no-any-return]
        f"SELECT {', '.join(columns)} FROM {table} ORDER BY {order} LIMIT ? OFFSET ?",
        (limit, offset),
    ).fetchall()
