"""Breaker transitions reach Prometheus."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from spokehub.integrations import BreakerPolicy, HttpConnector, HttpStatusError, InProcessHostState
from spokehub.integrations.metrics import ConnectorMetrics
from spokehub.testing import FakeClock
from tests.integrations.conftest import aio
from tests.integrations.scripted_server import Answer, ScriptedServer


@aio
async def test_breaker_transitions_are_metrics(server: ScriptedServer, clock: FakeClock) -> None:
    registry = CollectorRegistry()
    conn = HttpConnector(
        allow=("127.0.0.1",),
        state=InProcessHostState(),
        clock=clock.now,
        breaker=BreakerPolicy(failure_threshold=1, failure_rate=None),
    )
    ConnectorMetrics(registry).attach(conn)
    server.answer(Answer(500))
    with pytest.raises(HttpStatusError):
        await conn.get(server.url("/"))
    text = generate_latest(registry).decode()
    host = f"127.0.0.1:{server.port}"
    assert f'spokehub_http_breaker_state{{host="{host}"}} 2.0' in text
    assert f'spokehub_http_breaker_transitions_total{{host="{host}",state="open"}} 1.0' in text
    conn.close()
