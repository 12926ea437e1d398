"""Shared fixtures: a real database per test (a SQLite file, and a PostgreSQL schema), a clock.

``db_url`` is parametrised over both backends, so every test that takes it (or ``client``)
runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from spokehub import Client, Settings
from spokehub.testing import FakeClock
from tests.pg import fresh_schema


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'spokehub.db'}"
        return
    with fresh_schema() as url:
        yield url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'spokehub.db'}"


@pytest.fixture
def pg_url() -> Iterator[str]:
    with fresh_schema() as url:
        yield url


@pytest.fixture
def client(db_url: str, clock: FakeClock) -> Iterator[Client]:
    c = Client(settings=Settings(database_url=db_url, poll_interval=0.05), clock=clock)
    yield c
    c.close()
