"""The run page draws an agent's plans: each call with its status, reasons escaped."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from spokehub import Client, Settings, workflow
from spokehub.intelligence import ChatRequest, LLMConfig, Price, PriceTable, configure
from spokehub.intelligence import agent as agents
from spokehub.intelligence.plan_view import agent_view, plan_svg
from spokehub.intelligence.tools import tool
from spokehub.testing import Reply, ScriptedProvider
from tests.browser.live_server import Served, post_login, thread_server


@tool
async def dash_lookup(sku: str) -> str:
    """Look a product up."""
    return f"<b>{sku}</b>"


@tool
async def dash_break(sku: str) -> str:
    """Always fails."""
    raise RuntimeError("the CMS is down")


def _planner(request: ChatRequest) -> Reply:
    state = json.loads(request.messages[-1]["content"])
    if not state["state"]["completed_calls"]:
        hostile = "<script>x</script>"
        return Reply({"calls": [
            {"id": "c1", "tool": "dash_lookup", "args": {"sku": "J-1"}, "reason": hostile},
            {"id": "c2", "tool": "dash_break", "args": {"sku": {"$from": "c1"}}, "reason": "try"},
        ]})  # fmt: skip
    return Reply({"calls": [{"id": "c3", "tool": "dash_lookup", "args": {"sku": "J-2"},
                             "reason": "fallback"}]})  # fmt: skip


@workflow
async def dash_agent(goal: str) -> int:
    result = await agents.run(goal, tools=[dash_lookup, dash_break], approve_plan="never")
    return len(result.calls)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    configure(
        LLMConfig(
            providers={"default": ScriptedProvider(default=_planner)},
            prices=PriceTable({"plan": Price(0, 0)}),
            default_model="plan",
        )
    )
    db = tmp_path_factory.mktemp("dash-agent") / "d.db"
    with thread_server(f"sqlite:///{db}") as server:
        yield server
    configure(None)


def test_run_page_draws_the_plans(served: Served, tmp_path: Path) -> None:
    with Client(settings=Settings(database_url=served.db_url, poll_interval=0.02)) as client:
        handle = client.start(dash_agent, "look things up")
        assert handle.result(timeout=20) == 2  # c1, then c3 after the re-plan
        view = agent_view(client.events(handle.id))
    assert view.intent == "look things up"
    assert view.outcome == "finished"
    statuses: list[list[Any]] = [[(c.id, c.status) for c in p.calls] for p in view.plans]
    assert statuses == [[("c1", "completed"), ("c2", "failed")], [("c3", "completed")]]
    assert view.plans[0].calls[1].depends_on == ["c1"]
    assert "the CMS is down" in view.rejections[0]
    svg = plan_svg(view.plans[0])
    assert svg.count('data-status="completed"') == 1
    assert 'data-status="failed"' in svg
    assert "<path" in svg  # the arrow from c1 to c2
    with httpx.Client(base_url=served.url, timeout=10) as http:
        assert post_login(http, served.tokens["viewer"], "/ui").status_code == 303
        page = http.get(f"/ui/runs/{handle.id}")
    assert page.status_code == 200
    assert 'class="plan-graph"' in page.text
    assert "Plan 2" in page.text
    assert "<script>x</script>" not in page.text
    assert "&lt;script&gt;x&lt;/script&gt;" in page.text


def test_run_page_marks_anomalies(served: Served) -> None:
    import asyncio

    from spokehub.intelligence.watch import AnomalyWatch

    with Client(settings=Settings(database_url=served.db_url, poll_interval=0.02)) as client:
        handle = client.start(dash_agent, "look things up again")
        handle.result(timeout=20)

        async def flag() -> None:
            watch = AnomalyWatch(client)
            for i in range(30):
                watch.observe("latency", "dash_agent", "dash_lookup", 1.0 + i % 3 / 100, at=i)
            watch.observe("latency", "dash_agent", "dash_lookup", 9.5, at=31.0, run_id=handle.id)
            await watch.flush()

        asyncio.run(flag())
    with httpx.Client(base_url=served.url, timeout=10) as http:
        assert post_login(http, served.tokens["viewer"], "/ui").status_code == 303
        page = http.get(f"/ui/runs/{handle.id}")
    assert page.status_code == 200
    assert '<tr class="anomaly">' in page.text
    assert "9.5" in page.text
