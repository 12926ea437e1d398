"""Re-sealing stored payloads with the current encryption key (``spokehub db rotate-keys``).

Every payload column is walked in batches: each payload not sealed with the current key
(sealed with an older key, or stored before encryption was turned on) is opened and sealed
again, one batch per transaction. An update only applies if the row still holds the value
read, so a concurrent writer is never overwritten; running it again finishes what an
interrupted run left. Blob ids stay as they were: references to them do not change.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from spokehub.errors import ConfigurationError
from spokehub.store.crypto import PayloadCipher
from spokehub.store.relational import Conn, RelationalStore

__all__ = ["COLUMNS", "Progress", "rotate_keys"]

# (table, key columns, payload column)
COLUMNS: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("blobs", ("hash",), "data"),
    ("runs", ("id",), "input"),
    ("runs", ("id",), "result"),
    ("events", ("run_id", "position"), "data"),
    ("inbox", ("id",), "payload"),
    ("approval_votes", ("run_id", "seq", "actor"), "comment"),
    ("webhook_subscriptions", ("id",), "secret"),  # signing secrets (integrations)
)
BATCH = 500

Progress = Callable[[str, int, int], None]  # (table.column, done, total)


def _stale(column: str) -> str:
    return f"{column} IS NOT NULL AND {column} NOT LIKE ?"


def _count(conn: Conn, table: str, column: str, prefix: str) -> int:
    row = conn.execute(f"SELECT COUNT(*) FROM {table} WHERE {_stale(column)}", (prefix + "%",))
    return int(row.fetchone()[0])


def _reseal(
    conn: Conn,
    cipher: PayloadCipher,
    table: str,
    keys: tuple[str, ...],
    column: str,
    limit: int,
) -> int:
    prefix = cipher.current_prefix()
    rows: list[Any] = conn.execute(
        f"SELECT {', '.join(keys)}, {column} FROM {table} WHERE {_stale(column)} LIMIT ?",
        (prefix + "%", limit),
    ).fetchall()
    match = " AND ".join(f"{k} = ?" for k in keys)
    for row in rows:
        old = row[-1]
        conn.execute(
            f"UPDATE {table} SET {column} = ? WHERE {match} AND {column} = ?",
            (cipher.seal(cipher.open(old)), *row[:-1], old),
        )
    return len(rows)


async def rotate_keys(
    store: RelationalStore, *, batch: int = BATCH, progress: Progress | None = None
) -> dict[str, int]:
    """Seal every payload with the current key; returns the payloads re-sealed per column."""
    cipher = store._cipher
    if cipher is None:
        raise ConfigurationError(
            "set SPOKEHUB_ENCRYPTION_KEYS (new key first, then the old ones) to rotate keys"
        )
    if batch < 1:
        raise ValueError(f"the batch size must be at least 1, got {batch}")
    await store.migrate()
    prefix = cipher.current_prefix()
    done: dict[str, int] = {}
    for table, keys, column in COLUMNS:
        what = f"{table}.{column}"
        total = await store._x.run("read", _count, table, column, prefix)
        count = 0
        if progress is not None:
            progress(what, 0, total)
        while count < total:
            n = await store._x.run("write", _reseal, cipher, table, keys, column, batch)
            if n == 0:
                break
            count += n
            if progress is not None:
                progress(what, min(count, total), total)
        done[what] = count
    return done
