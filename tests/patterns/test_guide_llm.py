"""The guide drafted by a model through the AI layer, over real HTTP on loopback: the
answers are validated against the section schema, grounded, and left pending for a human."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from spokehub.cli.app import app
from spokehub.intelligence import LLMConfig, OpenAICompatible, Price, PriceTable, configure
from spokehub.patterns import build, load_hub
from tests.llm.server import Answer, LLMServer
from tests.patterns.support import copy_hub
from tests.patterns.test_guide import _answers


@pytest.fixture
def writer() -> Iterator[LLMServer]:
    server = LLMServer()
    answers = _answers()
    answers["intro"] = {**answers["intro"], "body": "Also try POST /admin/reindex."}

    def respond(body: dict[str, Any]) -> Answer:
        facts = body["messages"][-1]["content"]
        section = "intro" if "(id intro," in facts else "resource-orders"
        return Answer(answers[section])

    server.responder = respond
    configure(
        LLMConfig(
            providers={"default": OpenAICompatible(server.url)},
            prices=PriceTable({"writer": Price(0, 0)}),
        )
    )
    yield server
    configure(None)
    server.close()


def test_a_model_drafts_the_changed_sections(tmp_path: Path, writer: LLMServer) -> None:
    hub_dir = copy_hub(tmp_path)
    runner = CliRunner()
    args = ["patterns", "guide", "--hub", str(hub_dir), "--pattern", "api.orders"]
    out = runner.invoke(app, [*args, "--model", "writer", "--json"])
    assert out.exit_code == 0, out.output
    status = json.loads(out.output)
    assert status["pending"]["resource-orders"] == []  # awaiting a human
    assert status["pending"]["intro"]  # it named an internal operation: rejected
    assert "intro" in status["refresh"]["rejected"]
    assert len(writer.log) == 2  # one request per changed section
    sent = writer.log[1].body
    assert sent["messages"][0]["role"] == "system"
    assert sent["messages"][0]["content"].startswith("prompt v")
    assert "/orders" in sent["messages"][-1]["content"]  # the section's facts went along
    assert "reindex" not in json.dumps(sent)  # the internal operation never reaches the model
    assert runner.invoke(app, [*args, "--approve", "resource-orders"]).exit_code == 0
    again = runner.invoke(app, [*args, "--model", "writer", "--json"])
    assert json.loads(again.output)["refresh"]["reused"] == ["resource-orders"]
    assert len(writer.log) == 3  # only the still-rejected section was asked again
    guide = build(load_hub(hub_dir).get("api.orders"), "guide").files
    text = b"".join(guide.values()).decode()
    assert "Create one with POST /orders" in text
