"""Adapters, analysis and gates call HTTP through the integrations connector: real loopback
servers that log what reached the wire (requests, connections)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
from collections.abc import Iterator

import pytest

from spokehub.distribution.adapters.http_cms import HttpCmsAdapter
from spokehub.distribution.adapters.outbound import connector_for
from spokehub.distribution.adapters.webhook import WebhookAdapter
from spokehub.distribution.analysis import measure
from spokehub.distribution.errors import AdapterError, PreconditionFailed
from spokehub.distribution.model import Action, ApplyContext, Op, Scope, digest
from spokehub.distribution.steps import RolloutRequest, webhook_gate
from spokehub.integrations import CircuitOpen, EgressDenied, InProcessHostState
from spokehub.integrations import http as process_connector
from tests.integrations.scripted_server import Answer, ScriptedServer

LOOPBACK = {"egressAllow": ["127.0.0.1"]}
CTX = ApplyContext(release="r1", owner="spokehub/d", summary="1 to create", distribution="d")
ENTRY = Answer(
    body=json.dumps({"data": {"a": 1}, "meta": {"managedBy": "spokehub/d"}}).encode(),
    headers={"Content-Type": "application/json", "ETag": '"v1"'},
)


@pytest.fixture(autouse=True)
def fresh_breakers(monkeypatch: pytest.MonkeyPatch) -> None:
    """Breakers of this test only (the process connector's state is what targets share)."""
    monkeypatch.setattr(process_connector, "state", InProcessHostState())


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    with ScriptedServer() as s:
        yield s


def create(key: str, data: bytes) -> Op:
    return Op(Action.CREATE, key, None, digest(data), data=data)


def test_an_open_breaker_fails_fast_without_reaching_the_cms(server: ScriptedServer) -> None:
    server.default = Answer(status=503, body=b"busy")
    cms = HttpCmsAdapter({"baseUrl": server.url("/api"), **LOOPBACK})
    threshold = process_connector.config.breaker.failure_threshold
    for _ in range(threshold):
        with pytest.raises(AdapterError, match="HTTP 503"):
            cms.read(["token/a"])
    assert len(server.requests) == threshold
    for _ in range(3):
        with pytest.raises(AdapterError, match="circuit breaker") as err:
            cms.read(["token/a"])
        assert isinstance(err.value.__cause__, CircuitOpen)
    health = cms.health([])
    assert health.status.value == "Degraded"
    assert "circuit breaker" in health.reason
    assert len(server.requests) == threshold  # nothing after the breaker opened
    states = {h.host: h.breaker.state for h in process_connector.hosts()}
    assert states[f"127.0.0.1:{server.port}"] == "open"


def test_egress_to_loopback_needs_egress_allow(server: ScriptedServer) -> None:
    cms = HttpCmsAdapter({"baseUrl": server.url("/api")})
    with pytest.raises(AdapterError, match=r"egressAllow: \['127.0.0.1'\]") as err:
        cms.read(["token/a"])
    assert isinstance(err.value.__cause__, EgressDenied)
    assert "loopback" in str(err.value)
    hook = WebhookAdapter({"url": server.url("/hook")}, credentials="s")
    with pytest.raises(AdapterError, match="egressAllow"):
        hook.apply(create("events/x", b"{}"), idempotency_key="k", expect=None, ctx=CTX)
    assert server.connections == 0
    assert server.requests == []


def test_cms_writes_carry_idempotency_key_and_preconditions(server: ScriptedServer) -> None:
    cms = HttpCmsAdapter({"baseUrl": server.url("/api"), **LOOPBACK}, credentials="tok")
    op = create("token/a", b'{"a":1}')
    server.answer(Answer(status=404, body=b"{}"), Answer(status=201, body=b"{}"))
    assert cms.apply(op, idempotency_key="key-1", expect=op.precondition(), ctx=CTX).changed
    get, put = server.requests
    assert (get.method, put.method) == ("GET", "PUT")
    assert put.path == "/api/entries/token/a?space=default"
    assert put.headers["idempotency-key"] == "key-1"
    assert put.headers["if-none-match"] == "*"
    assert put.headers["authorization"] == "Bearer tok"
    assert json.loads(put.body)["meta"] == {"managedBy": "spokehub/d", "release": "r1"}
    # An update sends the ETag it read; the CMS refusing it is a PreconditionFailed.
    upd = Op(Action.UPDATE, "token/a", digest(b'{"a":1}'), digest(b'{"a":2}'), data=b'{"a":2}')
    server.answer(ENTRY, Answer(status=412, body=b"{}"))
    with pytest.raises(PreconditionFailed):
        cms.apply(upd, idempotency_key="key-2", expect=upd.precondition(), ctx=CTX)
    assert server.requests[-1].headers["if-match"] == '"v1"'
    assert server.requests[-1].headers["idempotency-key"] == "key-2"


def test_garbage_from_the_cms_is_an_error_or_degraded_never_a_crash(
    server: ScriptedServer,
) -> None:
    cms = HttpCmsAdapter({"baseUrl": server.url("/api"), **LOOPBACK})
    server.default = Answer(body=b"<html>hello</html>", headers={"Content-Type": "text/html"})
    with pytest.raises(AdapterError, match="non-JSON"):
        cms.read(["token/a"])
    with pytest.raises(AdapterError, match="non-JSON"):
        cms.discover(Scope())
    health = cms.health([])
    assert health.status.value == "Degraded"
    assert "non-JSON" in health.reason
    server.default = Answer(body=b'{"items": [1, 2]}')
    with pytest.raises(AdapterError, match="not a list"):
        cms.discover(Scope())
    server.default = Answer(body=b"[1]")
    assert cms.health([]).status.value == "Degraded"
    too_big = HttpCmsAdapter({"baseUrl": server.url("/api"), **LOOPBACK})
    server.default = Answer(body=b"{}", length=process_connector.config.max_response_bytes + 1)
    with pytest.raises(AdapterError, match="larger than the cap"):
        too_big.read(["token/a"])


def test_webhook_signs_with_a_stable_id_through_the_connector(server: ScriptedServer) -> None:
    secret = "whsec_" + base64.b64encode(b"secret-bytes").decode()
    hook = WebhookAdapter({"url": server.url("/hook"), **LOOPBACK}, credentials=secret)
    body = b'{"type": "release.promoted", "caf\xc3\xa9": 1}'
    op = create("events/x", body)
    hook.apply(op, idempotency_key="abc", expect=None, ctx=CTX)
    hook.apply(op, idempotency_key="abc", expect=None, ctx=CTX)  # a retry
    first, second = server.requests
    assert first.body == body  # sent byte for byte, as signed
    assert first.headers["webhook-id"] == second.headers["webhook-id"] == "msg_abc"
    assert first.headers["idempotency-key"] == "abc"
    signed = f"msg_abc.{first.headers['webhook-timestamp']}.".encode() + body
    mac = hmac.new(b"secret-bytes", signed, hashlib.sha256).digest()
    assert first.headers["webhook-signature"] == "v1," + base64.b64encode(mac).decode()
    server.answer(Answer(status=500, body=b"oops"))
    with pytest.raises(AdapterError, match="HTTP 500"):
        hook.apply(op, idempotency_key="abc", expect=None, ctx=CTX)


def test_analysis_measures_through_the_target_settings(server: ScriptedServer) -> None:
    metric = {
        "name": "m",
        "provider": {"http": {"url": "{{target.config.baseUrl}}/health", "jsonPath": "$.ok"}},
        "successCondition": "result == true",
    }
    target = {"name": "t", "labels": {}, "config": {"baseUrl": server.url("/api"), **LOOPBACK}}
    assert measure(metric, target, {}).phase == "Successful"
    assert server.requests[-1].path == "/api/health"
    refused = measure(metric, {**target, "config": {"baseUrl": server.url("/api")}}, {})
    assert refused.phase == "Error"
    assert "egressAllow" in refused.message
    server.answer(Answer(status=500, body=b"{}"))
    broken = measure(metric, target, {})
    assert broken.phase == "Error"
    assert "HTTP 500" in broken.message
    server.answer(Answer(body=b"not json", headers={"Content-Type": "text/plain"}))
    assert measure(metric, target, {}).phase == "Error"


def test_the_webhook_gate_posts_through_the_process_connector(
    server: ScriptedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    req = RolloutRequest(hub="h", distribution="d", release="r1", db="sqlite:///x.db")
    wave = {"name": "broad", "gateUrl": server.url("/gate")}
    refused = asyncio.run(webhook_gate(req, wave))
    assert not refused["approved"]
    assert "gateEgressAllow" in refused["reason"]
    assert server.requests == []
    allowed = {**wave, "gateEgressAllow": ["127.0.0.1"]}
    assert asyncio.run(webhook_gate(req, allowed)) == {"approved": True, "reason": "HTTP 200"}
    monkeypatch.setattr(
        process_connector, "config", process_connector.config.__class__(allow=("127.0.0.1",))
    )
    assert asyncio.run(webhook_gate(req, wave)) == {"approved": True, "reason": "HTTP 200"}
    assert json.loads(server.requests[-1].body) == {
        "distribution": "d",
        "release": "r1",
        "wave": "broad",
    }
    server.answer(Answer(status=403, body=b"no"))
    denied = asyncio.run(webhook_gate(req, wave))
    assert not denied["approved"]
    assert "403" in denied["reason"]


def test_targets_with_the_same_settings_share_one_connector() -> None:
    a = connector_for({"egressAllow": ["10.0.0.0/8"], "timeout": 3})
    assert connector_for({"egressAllow": "10.0.0.0/8", "timeout": 3.0}) is a
    assert connector_for({"egressAllow": ["10.0.0.0/8"]}) is not a
    assert a.config.allow == ("10.0.0.0/8",)
    assert a.config.timeouts.total == 3.0
