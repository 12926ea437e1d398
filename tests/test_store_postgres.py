"""The PostgreSQL backend: the shared contract, plus what only PostgreSQL has."""

from __future__ import annotations

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
