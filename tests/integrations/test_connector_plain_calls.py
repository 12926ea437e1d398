"""``send_sync`` (one guarded attempt from plain code) and ``derive`` (other settings, the same
breakers), against a real loopback server that logs what reached it."""

from __future__ import annotations

import pytest

from spokehub.integrations import (
    BreakerPolicy,
    CircuitOpen,
    EgressDenied,
    HttpConnector,
    HttpStatusError,
    InProcessHostState,
)
from tests.integrations.scripted_server import Answer, ScriptedServer


def test_send_sync_sends_bytes_and_params_as_given(server: ScriptedServer) -> None:
    conn = HttpConnector(allow=("127.0.0.1",), state=InProcessHostState())
    body = b'{"caf\xc3\xa9": 1}'
    answer = conn.send_sync(
        "POST", server.url("/x"), content=body, params={"a": "1"}, headers={"X-K": "v"}
    )
    assert answer.status == 200
    assert answer.body == {"ok": True}
    sent = server.requests[-1]
    assert (sent.path, sent.body, sent.headers["x-k"]) == ("/x?a=1", body, "v")
    conn.close()


def test_a_derived_connector_shares_breakers_and_listeners(server: ScriptedServer) -> None:
    parent = HttpConnector(
        state=InProcessHostState(), breaker=BreakerPolicy(failure_threshold=2, open_for=60)
    )
    entered: list[str] = []
    parent.on_transition(lambda host, state: entered.append(state))
    child = parent.derive(allow=("127.0.0.1",))
    with pytest.raises(EgressDenied):  # the parent's own guard is unchanged
        parent.send_sync("GET", server.url())
    server.default = Answer(status=503, body=b"down")
    for _ in range(2):
        with pytest.raises(HttpStatusError):
            child.send_sync("GET", server.url())
    with pytest.raises(CircuitOpen):
        child.send_sync("GET", server.url())
    assert len(server.requests) == 2
    assert [h.breaker.state for h in parent.hosts()] == ["open"]
    assert entered == ["open"]
    child.close()
    assert [h.breaker.state for h in parent.hosts()] == ["open"]  # closing it keeps the state
