"""examples/catalog_agent.py runs as documented: memory, a price anomaly, a plan that waits for
a merchandiser, then the CMS changed once per call."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from spokehub import Client, EventKind
from spokehub.intelligence.memory import SessionMemory
from spokehub.runtime.client import _sync
from spokehub.testing import run_until_idle
from tests.test_examples import load

catalog_agent = load("catalog_agent")


@pytest.fixture(autouse=True)
def _offline_planner() -> None:
    catalog_agent.setup_llm()  # other tests configure planners of their own


def test_catalog_agent_waits_for_the_price_change_then_acts(
    client: Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SPOKEHUB_EXAMPLE_EFFECTS", str(tmp_path))
    handle = client.start(catalog_agent.catalog_agent, "acme")
    run_until_idle(client)
    assert handle.status().value == "waiting"
    asked = [e for e in handle.events() if e.kind is EventKind.APPROVAL_REQUESTED]
    subject = asked[0].data["subject"]
    assert "set_price" in subject["why"]
    assert [c["tool"] for c in subject["calls"]] == ["fix_copy", "flag_price", "set_price"]
    assert not (tmp_path / "cms").exists()  # nothing changed before the approval
    client.approve(handle.id, name="agent-plan", by="merch")
    run_until_idle(client)
    out = handle.result(timeout=10)
    assert out["anomalies"] == ["J-103"]
    assert out["changes"] == ["fix_copy(J-100)", "flag_price(J-103)", "set_price(J-103)"]
    assert out["rules_used"][0].startswith("Product titles use Title Case")
    files = sorted(p.name.split("-")[0] for p in (tmp_path / "cms").iterdir())
    assert files == ["fix_copy", "flag_price", "set_price"]
    title = next(json.loads(p.read_text()) for p in (tmp_path / "cms").glob("fix_copy-*"))
    assert title["request"]["title"] == "Rain Jacket Waterproof"
    saved = _sync(SessionMemory(client).get("acme", "last_catalog_review"))
    assert saved is not None
    assert saved.value == out
