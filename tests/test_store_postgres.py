"""The PostgreSQL backend: the shared contract, plus what only PostgreSQL has."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from spokehub import Settings, StoreError
from spokehub.store import open_store
from spokehub.store.base import Store
from tests.store_contract import QueueLimitsContract, StoreContract, run


@pytest.fixture
def store(pg_url: str) -> Iterator[Store]:
    s = open_store(Settings(database_url=pg_url))
    run(s.migrate())
    yield s
    run(s.close())


class TestPostgresContract(StoreContract, QueueLimitsContract):
    pass


def test_unreachable_database_is_a_clear_error() -> None:
    url = "postgresql://postgres:secret@127.0.0.1:1/nope"
    with pytest.raises(
        StoreError, match=r"cannot connect to PostgreSQL at 127\.0\.0\.1:1/nope"
    ) as e:
        open_store(Settings(database_url=url))
    assert "secret" not in str(e.value)  # the password never shows in a message


def test_concurrent_migrators_apply_each_migration_once(pg_url: str) -> None:
    """Workers starting together on a fresh database all migrate; the advisory lock makes
    one of them apply the migrations and the others find them applied."""
    from spokehub.store import schema

    async def migrate_all() -> list[list[str]]:
        stores = [open_store(Settings(database_url=pg_url)) for _ in range(4)]
        try:
            return list(await asyncio.gather(*(s.migrate() for s in stores)))
        finally:
            for s in stores:
                await s.close()

    results = asyncio.run(migrate_all())
    known = [f"{m.version:04d}_{m.name}" for m in schema.load("postgresql")]
    assert sorted(results, key=len) == [[], [], [], known]
