"""LLM cost and calibration where users look: `runs show`, `spokehub ai`, the API, the
dashboard pages and /metrics."""

from __future__ import annotations

import json
from typing import Any

from typer.testing import CliRunner

from spokehub import Client, workflow
from spokehub.cli.app import app
from spokehub.intelligence import LLMConfig, Price, PriceTable, Usage, configure, decide, llm
from spokehub.testing import Reply, ScriptedProvider, run_until_idle
from tests.server.conftest import LiveServer, live  # noqa: F401 - the live server fixture

PRICES = PriceTable({"m1": Price(2.0, 4.0)})


@workflow
async def api_llm_post(topic: str) -> str:
    done = await llm.complete(f"Write about {topic}", model="m1")
    return done.text


@workflow
async def api_llm_decide(text: str) -> str:
    d = await decide("Spam?", labels=["spam", "ham"], context=text, model="m1", samples=2)
    return d.label


def scripted(*replies: Reply) -> ScriptedProvider:
    provider = ScriptedProvider(replies)
    configure(LLMConfig(providers={"default": provider}, prices=PRICES))
    return provider


def test_runs_show_and_ai_costs_print_the_cost(sqlite_url: str) -> None:
    scripted(Reply("a post", usage=Usage(1000, 250)))
    with Client(sqlite_url) as client:
        handle = client.start(api_llm_post, "durability")
        run_until_idle(client)
        assert handle.result() == "a post"
    runner = CliRunner()
    shown = runner.invoke(app, ["--db", sqlite_url, "runs", "show", handle.id])
    assert shown.exit_code == 0, shown.output
    assert "LLM cost" in shown.output
    assert "$0.003000 in 1 call(s), 1000 prompt + 250 completion tokens" in shown.output
    as_json = json.loads(
        runner.invoke(app, ["--db", sqlite_url, "runs", "show", handle.id, "--json"]).output
    )
    assert as_json["llm"]["cost"] == 0.003
    assert as_json["llm"]["steps"][0]["model"] == "m1"
    costs = json.loads(runner.invoke(app, ["--db", sqlite_url, "ai", "costs", "--json"]).output)
    assert costs["total"]["cost"] == 0.003
    assert costs["by_workflow"][0]["key"] == "api_llm_post"
    text = runner.invoke(app, ["--db", sqlite_url, "ai", "costs"])
    assert "$0.003000 in 1 call(s)" in text.output


def test_ai_calibration_command(sqlite_url: str) -> None:
    scripted(
        Reply({"label": "spam", "rationale": "r"}),
        Reply({"label": "ham", "rationale": "r"}),  # two samples disagree: confidence 0.5
    )
    with Client(sqlite_url) as client:
        handle = client.start(api_llm_decide, "hello")
        run_until_idle(client)
        client.approve(handle.id, comment="spam")
        run_until_idle(client)
        assert handle.result() == "spam"
    runner = CliRunner()
    out = runner.invoke(
        app, ["--db", sqlite_url, "ai", "calibration", "api_llm_decide", "--target", "0.9"]
    )
    assert out.exit_code == 0, out.output
    assert "1 decisions, accuracy 1.000" in out.output
    assert "suggested threshold for precision 0.9: 0.5" in out.output
    data = json.loads(
        runner.invoke(
            app, ["--db", sqlite_url, "ai", "calibration", "api_llm_decide", "--json"]
        ).output
    )
    assert data["decisions"] == 1
    assert data["bins"][0]["low"] == 0.5
    empty = runner.invoke(app, ["--db", sqlite_url, "ai", "calibration", "nothing"])
    assert "no decision of nothing" in empty.output
    bad = runner.invoke(app, ["--db", sqlite_url, "ai", "calibration", "x", "--target", "2"])
    assert bad.exit_code == 2


def test_api_dashboard_and_metrics(live: LiveServer) -> None:  # noqa: F811
    scripted(Reply("from the server", usage=Usage(500, 500)))
    try:
        with live.http("operator") as http:
            started = http.post(
                "/api/v1/runs", json={"workflow": "api_llm_post", "input": {"topic": "x"}}
            )
            run_id = started.json()["id"]
        live.wait_for(run_id, "completed")
        with live.http("viewer") as http:
            detail: dict[str, Any] = http.get(f"/api/v1/runs/{run_id}").json()
            assert detail["llm"]["cost"] == 0.003
            assert detail["llm"]["prompt_tokens"] == 500
            costs = http.get("/api/v1/llm/costs", params={"days": 7}).json()
            assert costs["total"]["cost"] >= 0.003
            assert any(w["key"] == "api_llm_post" for w in costs["by_workflow"])
            assert http.get("/api/v1/llm/costs", params={"days": -1}).status_code == 422
            calib = http.get("/api/v1/llm/calibration/api_llm_decide").json()
            assert calib["decisions"] == 0
            metrics = http.get("/metrics").text
            assert 'spokehub_llm_cost_usd{model="default:m1",workflow="api_llm_post"}' in metrics
            assert 'kind="prompt"' in metrics
            run_page = http.get(f"/ui/runs/{run_id}")
            assert run_page.status_code == 200
            assert "LLM cost" in run_page.text
            page = http.get("/ui/costs")
            assert page.status_code == 200
            assert "<svg" in page.text
            assert "api_llm_post" in page.text
            assert http.get("/ui/calibration").status_code == 200
            assert "No decision" in http.get("/ui/calibration?workflow=none").text
    finally:
        configure(None)


def test_charts_draw_what_they_are_given() -> None:
    from spokehub.intelligence.calibration import Bin
    from spokehub.intelligence.costs import Spend
    from spokehub.server.charts import reliability_diagram, spend_chart

    assert "No LLM spend" in spend_chart([])
    bars = spend_chart([Spend("2026-11-01", 0.5, 3), Spend("2026-11-02", 1.0, 4)])
    assert bars.count('class="bar"') == 2
    assert "2026-11-02: $1.000000, 4 calls" in bars
    diagram = reliability_diagram([Bin(0.9, 1.0, 10, 0.95, 0.9), Bin(0.5, 0.6, 2, 0.55, 0.5)])
    assert diagram.count("<circle") == 2
    assert "10 decisions, confidence 0.95, accuracy 0.90" in diagram
