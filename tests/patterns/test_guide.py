"""The LLM-assisted guide: skeleton, grounding, section digests, lock file, offline builds."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from spokehub.cli.app import app
from spokehub.patterns import PatternError, build, load_hub
from spokehub.patterns.guide import (
    GuideLock,
    ScriptedGenerator,
    check_section,
    refresh_guide,
    skeleton,
)
from tests.patterns.support import copy_hub

SPEC = "api/orders.openapi.yaml"


def _answers() -> dict[str, dict[str, Any]]:
    return {
        "intro": {
            "title": "Getting started",
            "body": "Call GET /orders to list orders.",
            "codeSamples": [{"language": "bash", "code": "curl -s https://api.example.com/orders"}],
            "references": [{"method": "GET", "path": "/orders"}],
        },
        "resource-orders": {
            "title": "Orders",
            "body": "Create one with POST /orders, read it with GET /orders/o-1.",
            "codeSamples": [
                {"language": "python", "code": "import httpx\nhttpx.get('/orders')"},
                {"language": "json", "code": '{"items": ["a"]}'},
            ],
            "references": [
                {"method": "POST", "path": "/orders"},
                {"method": "GET", "path": "/orders/{id}"},
            ],
        },
    }


def test_skeleton_leaves_out_internal_operations() -> None:
    spec = (
        load_hub(Path(__file__).parent.parent / "fixtures" / "patterns" / "hub")
        .get("api.orders")
        .document()
        .value
    )
    sections = skeleton(spec)
    assert [s.id for s in sections] == ["intro", "resource-orders"]
    assert "reindex" not in json.dumps([s.facts for s in sections])


def test_grounding_rejects_invented_and_internal_things() -> None:
    spec = (
        load_hub(Path(__file__).parent.parent / "fixtures" / "patterns" / "hub")
        .get("api.orders")
        .document()
        .value
    )
    assert check_section(_answers()["resource-orders"], spec) == []
    bad = {
        "title": "x",
        "body": "Use POST /admin/reindex or reindexOrders, or DELETE /orders",
        "codeSamples": [
            {"language": "python", "code": "def ("},
            {"language": "json", "code": "{nope"},
        ],
        "references": [{"method": "GET", "path": "/nowhere"}],
    }
    problems = check_section(bad, spec)
    assert "reference GET /nowhere is not a public operation" in problems
    assert "mentions POST /admin/reindex, which is not a public operation" in problems
    assert "mentions DELETE /orders, which is not a public operation" in problems
    assert "mentions 'reindexOrders', which is x-internal" in problems
    assert sum("does not parse" in p for p in problems) == 2
    assert check_section({"title": "x"}, spec)[0].startswith("schema:")


def test_refresh_approve_and_offline_rebuild(tmp_path: Path) -> None:
    hub_dir = copy_hub(tmp_path)
    hub = load_hub(hub_dir)
    spec = hub.get("api.orders").document().value
    lock = GuideLock()
    gen = ScriptedGenerator(_answers())
    report = refresh_guide("api.orders", spec, lock, gen)
    assert report.pending == ["intro", "resource-orders"]
    assert gen.calls == report.pending
    first = build(hub.get("api.orders"), "guide").files["getting-started.md"].decode()
    assert "sections awaiting review: intro, resource-orders" in first
    for sid in ("intro", "resource-orders"):
        lock.approve("api.orders", sid, "ana")
    lock.save(hub_dir / "llm.lock.json")
    done = build(load_hub(hub_dir).get("api.orders"), "guide").files["getting-started.md"]
    assert b"awaiting review" not in done
    assert b"curl -s https://api.example.com/orders" in done
    assert build(load_hub(hub_dir).get("api.orders"), "guide").files["getting-started.md"] == done
    # a new operation changes only the orders section: intro is reused, orders is pending
    data = yaml.safe_load((hub_dir / SPEC).read_text())
    data["paths"]["/orders/{id}"]["delete"] = {"operationId": "cancelOrder", "responses": {}}
    (hub_dir / SPEC).write_text(yaml.safe_dump(data))
    spec2 = load_hub(hub_dir).get("api.orders").document().value
    gen2 = ScriptedGenerator(_answers())
    report2 = refresh_guide("api.orders", spec2, lock, gen2)
    assert report2.reused == ["intro"]
    assert gen2.calls == ["resource-orders"]
    lock.save(hub_dir / "llm.lock.json")
    rebuilt = build(load_hub(hub_dir).get("api.orders"), "guide").files["getting-started.md"]
    assert b"sections awaiting review: resource-orders" in rebuilt
    with pytest.raises(PatternError, match="no pending section"):
        lock.approve("api.orders", "intro", "ana")


def test_rejected_section_cannot_be_approved(tmp_path: Path) -> None:
    hub_dir = copy_hub(tmp_path)
    answers = _answers()
    answers["intro"] = {**answers["intro"], "body": "Try POST /admin/reindex"}
    (tmp_path / "answers.json").write_text(json.dumps(answers))
    runner = CliRunner()
    out = runner.invoke(
        app,
        [
            "patterns",
            "guide",
            "--hub",
            str(hub_dir),
            "--pattern",
            "api.orders",
            "--scripted",
            str(tmp_path / "answers.json"),
            "--json",
        ],
    )
    assert out.exit_code == 0, out.output
    status = json.loads(out.output)
    assert status["pending"]["resource-orders"] == []
    assert status["refresh"]["rejected"]["intro"]
    refused = runner.invoke(
        app,
        [
            "patterns",
            "guide",
            "--hub",
            str(hub_dir),
            "--pattern",
            "api.orders",
            "--approve",
            "intro",
        ],
    )
    assert refused.exit_code == 2
    assert "failed its grounding checks" in refused.output
    ok = runner.invoke(
        app,
        [
            "patterns",
            "guide",
            "--hub",
            str(hub_dir),
            "--pattern",
            "api.orders",
            "--approve",
            "resource-orders",
        ],
    )
    assert ok.exit_code == 0
    assert "accepted: resource-orders" in ok.output
    (hub_dir / "llm.lock.json").write_text("{broken")
    with pytest.raises(PatternError, match="not valid JSON"):
        GuideLock.load(hub_dir / "llm.lock.json")
