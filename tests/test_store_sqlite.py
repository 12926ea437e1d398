"""The SQLite backend: the shared contract, plus what only SQLite has."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from spokehub import ConfigurationError, RunStatus, Settings, StoreError
from spokehub.errors import SchemaError
from spokehub.store import open_store
from spokehub.store.base import Finish, Flush, Store
from spokehub.store.sqlite import SqliteStore, parse_sqlite_url
from tests.store_contract import NOW, QueueLimitsContract, StoreContract, new_run, run


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = open_store(Settings(database_url=f"sqlite:///{tmp_path / 'db.sqlite'}"))
    run(s.migrate())
    yield s
    run(s.close())


class TestSqliteContract(StoreContract, QueueLimitsContract):
    pass


def test_pragmas_are_durable(store: SqliteStore) -> None:
    conn = sqlite3.connect(store.path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA auto_vacuum").fetchone()[0] == 2  # incremental
    conn.close()


def test_group_commit_shares_one_commit_between_concurrent_writers(store: SqliteStore) -> None:
    async def many() -> None:
        await asyncio.gather(
            *(store.start(new_run(f"r{i}", input_hash=str(i)), NOW) for i in range(200))
        )

    before = store.stats.commits
    run(many())
    commits = store.stats.commits - before
    assert len(run(store.list_runs(limit=500))) == 200
    assert commits < 100, f"{commits} commits for 200 concurrent starts"


def test_failing_operation_does_not_spoil_its_batch(store: SqliteStore) -> None:
    async def mixed() -> list[object]:
        await store.start(new_run("x", input_hash="a"), NOW)
        return await asyncio.gather(
            store.start(new_run("y", input_hash="y"), NOW),
            store.start(new_run("x", input_hash="other"), NOW),  # conflicts
            store.start(new_run("z", input_hash="z"), NOW),
            return_exceptions=True,
        )

    results = run(mixed())
    assert type(results[1]).__name__ == "RunIdConflict"
    assert {r.id for r in run(store.list_runs())} == {"x", "y", "z"}


def test_large_payloads_are_stored_once(store: SqliteStore) -> None:
    big = {"doc": "z" * 100_000}
    for i in range(3):
        run(store.start(new_run(f"b{i}", input=big, input_hash=str(i)), NOW))
    conn = sqlite3.connect(store.path)
    assert conn.execute("SELECT COUNT(*) FROM blobs").fetchone()[0] == 1
    assert conn.execute("SELECT COUNT(*) FROM runs WHERE input IS NULL").fetchone()[0] == 3
    conn.close()


def test_prune_returns_space_to_the_os(tmp_path: Path) -> None:
    s = open_store(Settings(database_url=str(tmp_path / "p.db")))
    run(s.migrate())
    for i in range(300):
        pad = {"pad": f"{i}" * 3000}
        run(s.start(new_run(f"r{i}", input=pad, input_hash=str(i), claim_by="w"), NOW))
        done = Finish(status=RunStatus.COMPLETED)
        run(
            s.flush(
                Flush(run_id=f"r{i}", owner="w", epoch=1, now=NOW, lease_until=NOW, finish=done)
            )
        )
    stats = run(s.prune(finished_before=NOW + 1))
    assert stats.runs == 300
    assert stats.bytes_after < stats.bytes_before / 2, stats
    conn = sqlite3.connect(tmp_path / "p.db")
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()
    run(s.close())


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "future.db"
    s = open_store(Settings(database_url=str(path)))
    run(s.migrate())
    conn = sqlite3.connect(path)
    conn.execute(
        "INSERT INTO schema_migrations (version, name, applied_at) VALUES (99, 'future', 0)"
    )
    conn.commit()
    conn.close()
    with pytest.raises(SchemaError, match="upgrade spokehub"):
        run(s.migrate())
    run(s.close())


def test_not_a_database_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("hello, I am not SQLite " * 100)
    with pytest.raises(StoreError, match="not a usable SQLite database"):
        open_store(Settings(database_url=str(path)))
    assert path.read_text().startswith("hello")  # nothing stored is lost


def test_urls() -> None:
    assert parse_sqlite_url("sqlite:///rel/x.db") == "rel/x.db"
    assert parse_sqlite_url("sqlite:////abs/x.db") == "/abs/x.db"
    assert parse_sqlite_url("plain.db") == "plain.db"
    with pytest.raises(ConfigurationError, match="scheme"):
        open_store(Settings(database_url="mysql://localhost/db"))
