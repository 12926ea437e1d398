"""Contracts: validation at the edges (through the connector) and ``contracts diff``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel
from typer.testing import CliRunner

from spokehub import Client, EventKind, RunFailed, workflow
from spokehub.cli.app import app
from spokehub.integrations import (
    Contract,
    ContractError,
    ContractRegistry,
    ContractViolation,
    HttpConnector,
    InProcessHostState,
    contract,
    load_contract_file,
)
from spokehub.integrations.compat import diff_contracts, diff_schemas, is_breaking
from spokehub.testing import FakeClock, run_until_idle
from tests.integrations.scripted_server import Answer, ScriptedServer

registry = ContractRegistry()


class Line(BaseModel):
    sku: str
    quantity: int


class OrderIn(BaseModel):
    customer: str
    lines: list[Line]


ORDERS = contract(
    "orders.create",
    2,
    request=OrderIn,
    response={
        "type": "object",
        "required": ["id", "status"],
        "properties": {
            "id": {"type": "integer"},
            "status": {"enum": ["accepted", "queued"]},
        },
    },
    registry=registry,
)
conn = HttpConnector(allow=("127.0.0.1",), state=InProcessHostState(), contracts=registry)


@workflow(name="itest.contract_order")
async def place(url: str, order: dict[str, Any]) -> int:
    answer = await conn.post(url, json=order, contract="orders.create@2")
    return int(answer.body["id"])


@pytest.fixture
def client(tmp_path: Path, clock: FakeClock) -> Iterator[Client]:
    c = Client(f"sqlite:///{tmp_path}/c.db", clock=clock)
    yield c
    c.close()
    conn.close()


GOOD = {"customer": "ada", "lines": [{"sku": "a-1", "quantity": 2}]}


def test_a_valid_exchange_passes_both_checks(client: Client, server: ScriptedServer) -> None:
    server.answer(Answer(201, b'{"id": 42, "status": "accepted"}'))
    handle = client.start(place, server.url("/orders"), GOOD)
    run_until_idle(client)
    assert handle.result() == 42


def test_a_response_violation_fails_at_once_with_path_and_version(
    client: Client, server: ScriptedServer
) -> None:
    server.answer(Answer(201, b'{"id": 42, "status": "lost"}'))
    handle = client.start(place, server.url("/orders"), GOOD)
    run_until_idle(client)
    with pytest.raises(RunFailed, match="ContractViolation"):
        handle.result()
    assert len(server.requests) == 1  # not retried
    (failed,) = [e.data for e in handle.events() if e.kind is EventKind.STEP_FAILED]
    assert failed["attempts"] == 1
    details = failed["error"]["details"]
    assert details["contract"] == "orders.create@2"
    assert details["path"] == "$.status"
    assert details["direction"] == "response"


def test_a_request_violation_sends_nothing(client: Client, server: ScriptedServer) -> None:
    bad = {"customer": "ada", "lines": [{"sku": "a-1", "quantity": "two"}]}
    handle = client.start(place, server.url("/orders"), bad)
    run_until_idle(client)
    with pytest.raises(RunFailed, match=r"orders.create@2 at \$.lines\[0\].quantity"):
        handle.result()
    assert server.requests == []


def test_a_response_that_is_not_json_violates(client: Client, server: ScriptedServer) -> None:
    server.answer(Answer(200, b"<html>oops</html>", headers={"Content-Type": "text/html"}))
    handle = client.start(place, server.url("/orders"), GOOD)
    run_until_idle(client)
    with pytest.raises(RunFailed, match="the body is not JSON"):
        handle.result()


def test_declaration_errors_are_clear() -> None:
    local = ContractRegistry()
    with pytest.raises(ContractError, match="positive integer"):
        contract("x", 0, registry=local)
    with pytest.raises(ContractError, match="NAME@VERSION"):
        contract("bad name", 1, registry=local)
    with pytest.raises(ContractError, match="invalid JSON Schema"):
        contract("x", 1, request={"type": "no-such-type"}, registry=local)
    with pytest.raises(ContractError, match="pydantic model class or a JSON Schema"):
        contract("x", 1, request=42, registry=local)  # type: ignore[arg-type]
    contract("x", 1, request={"type": "object"}, registry=local)
    with pytest.raises(ContractError, match="new version"):
        contract("x", 1, request={"type": "array"}, registry=local)
    with pytest.raises(ContractError, match="no contract 'x@9'"):
        local.get("x@9")
    assert local.refs() == ["x@1"]


OBJ: dict[str, Any] = {
    "type": "object",
    "required": ["id"],
    "properties": {
        "id": {"type": "integer"},
        "name": {"type": "string", "maxLength": 50},
        "kind": {"enum": ["a", "b"]},
        "tags": {"type": "array", "items": {"type": "string"}},
    },
}


def _with(**changes: Any) -> dict[str, Any]:
    schema = json.loads(json.dumps(OBJ))
    for path, value in changes.items():
        target = schema
        *parents, last = path.split("__")
        for p in parents:
            target = target[p]
        if value is None:
            del target[last]
        else:
            target[last] = value
    return schema


TABLE = [
    ("no change", OBJ, [], False),
    ("field removed", _with(properties__name=None), ["field removed"], True),
    (
        "new required field",
        _with(properties__email={"type": "string"}, required=["id", "email"]),
        ["new required field"],
        True,
    ),
    ("optional field added", _with(properties__email={"type": "string"}), ["field added"], False),
    ("field became required", _with(required=["id", "name"]), ["field became required"], True),
    ("field became optional", _with(required=[]), ["field became optional"], False),
    ("type narrowed", _with(properties__id={"type": "string"}), ["type narrowed"], True),
    (
        "type widened",
        _with(properties__id={"type": ["integer", "null"]}),
        ["type widened"],
        False,
    ),
    ("integer to number", _with(properties__id={"type": "number"}), ["type widened"], False),
    ("enum value removed", _with(properties__kind={"enum": ["a"]}), ["enum value removed"], True),
    (
        "enum value added",
        _with(properties__kind={"enum": ["a", "b", "c"]}),
        ["enum value added"],
        False,
    ),
    (
        "limit tightened",
        _with(properties__name={"type": "string", "maxLength": 10}),
        ["limit tightened"],
        True,
    ),
    (
        "limit loosened",
        _with(properties__name={"type": "string", "maxLength": 100}),
        ["limit loosened"],
        False,
    ),
    (
        "nested item type narrowed",
        _with(properties__tags={"type": "array", "items": {"type": "integer"}}),
        ["type narrowed"],
        True,
    ),
    (
        "unknown fields refused",
        _with(additionalProperties=False),
        ["additional properties refused"],
        True,
    ),
    (
        "pattern added",
        _with(properties__name={"type": "string", "maxLength": 50, "pattern": "^[a-z]+$"}),
        ["pattern changed"],
        True,
    ),
]


@pytest.mark.parametrize(("label", "new", "kinds", "breaking"), TABLE, ids=[t[0] for t in TABLE])
def test_diff_table(label: str, new: dict[str, Any], kinds: list[str], breaking: bool) -> None:
    changes = diff_schemas(OBJ, new)
    assert [c.kind for c in changes] == kinds
    assert is_breaking(changes) is breaking


def test_diff_follows_refs_of_pydantic_models() -> None:
    class LineV2(BaseModel):
        sku: str

    class OrderV2(BaseModel):
        customer: str
        lines: list[LineV2]

    old = Contract("orders.create", 2, request=OrderIn)
    new = Contract("orders.create", 3, request=OrderV2)
    changes = diff_contracts(old, new)
    assert [(c.path, c.kind) for c in changes] == [("request:$.lines[].quantity", "field removed")]


def _write(path: Path, data: Any) -> str:
    path.write_text(json.dumps(data))
    return str(path)


def test_cli_diff_exit_codes(tmp_path: Path) -> None:
    runner = CliRunner()
    old = _write(tmp_path / "old.json", {"name": "o", "version": 1, "request": OBJ})
    same = _write(tmp_path / "same.json", {"name": "o", "version": 2, "request": OBJ})
    narrower = _write(
        tmp_path / "new.json",
        {"name": "o", "version": 2, "request": _with(properties__kind={"enum": ["a"]})},
    )
    assert runner.invoke(app, ["contracts", "diff", old, same]).exit_code == 0
    result = runner.invoke(app, ["contracts", "diff", old, narrower, "--json"])
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["breaking"] is True
    assert report["changes"][0]["path"] == "request:$.kind"
    text = runner.invoke(app, ["contracts", "diff", old, narrower], env={"COLUMNS": "200"})
    assert "BREAKING" in text.stdout
    (tmp_path / "broken.json").write_text("{not json")
    bad = runner.invoke(app, ["contracts", "diff", old, str(tmp_path / "broken.json")])
    assert bad.exit_code == 2
    assert "not JSON" in bad.stderr
    missing = runner.invoke(app, ["contracts", "diff", old, str(tmp_path / "nope.json")])
    assert missing.exit_code == 2


def test_a_bare_schema_file_is_a_contract(tmp_path: Path) -> None:
    loaded = load_contract_file(_write(tmp_path / "thing.json", OBJ))
    assert (loaded.ref, loaded.schema("request")) == ("thing@1", OBJ)
    with pytest.raises(ContractViolation):
        loaded.validate("request", {"id": "x"})
    with pytest.raises(ContractError, match="JSON object"):
        load_contract_file(_write(tmp_path / "list.json", [1]))
