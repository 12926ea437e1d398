from __future__ import annotations

from collections.abc import Iterator

import pytest

from spokehub.intelligence import configure
from tests.llm.server import LLMServer


@pytest.fixture
def llm_server() -> Iterator[LLMServer]:
    server = LLMServer()
    yield server
    server.close()


@pytest.fixture(autouse=True)
def _fresh_llm_config() -> Iterator[None]:
    configure(None)
    yield
    configure(None)
