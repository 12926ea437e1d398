"""Shared fixtures: a real SQLite file per test, and a fake clock."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from spokehub import Client, Settings
from spokehub.testing import FakeClock


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'spokehub.db'}"


@pytest.fixture
def client(db_url: str, clock: FakeClock) -> Iterator[Client]:
    c = Client(settings=Settings(database_url=db_url, poll_interval=0.05), clock=clock)
    yield c
    c.close()
