"""Fixtures for the integrations tests: scripted loopback servers and a connector on a clock."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

import pytest

from spokehub.integrations import HttpConnector, InProcessHostState
from spokehub.testing import FakeClock
from tests.integrations.scripted_server import ScriptedServer


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    with ScriptedServer() as s:
        yield s


@pytest.fixture
def connector(clock: FakeClock) -> Iterator[HttpConnector]:
    conn = HttpConnector(allow=("127.0.0.1",), state=InProcessHostState(), clock=clock.now)
    yield conn
    conn.close()


def aio(fn: Callable[..., Coroutine[Any, Any, None]]) -> Callable[..., None]:
    """Run an async test body on a fresh event loop (the suite has no async plugin)."""

    @functools.wraps(fn)
    def run(*args: Any, **kwargs: Any) -> None:
        asyncio.run(fn(*args, **kwargs))

    return run
