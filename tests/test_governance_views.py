"""Policy decisions where people look: the dashboard's run page, `runs show`, the API."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from pathlib import Path

import httpx
import uvicorn
from typer.testing import CliRunner

from spokehub import Client, Settings, step, workflow
from spokehub.cli.app import app as cli
from spokehub.governance.wiring import govern
from spokehub.ops import tokens
from spokehub.server.app import create_app
from spokehub.server.config import ServerConfig
from tests.browser.live_server import post_login

POLICY = """apiVersion: spokehub.dev/v1
kind: Policy
metadata: {name: small-amounts}
spec:
  validations:
    - expression: object.args.amount < 100
      messageExpression: "'amount ' + string(object.args.amount) + ' is large'"
---
apiVersion: spokehub.dev/v1
kind: PolicyBinding
metadata: {name: warn-large}
spec: {policyName: small-amounts, match: {hooks: [step], names: [view_pay]}, actions: [Warn]}
---
apiVersion: spokehub.dev/v1
kind: Policy
metadata: {name: start-cap}
spec:
  validations:
    - expression: object.input.amount < 1000
      message: amounts of 1000 or more need the finance workflow
      reason: Forbidden
---
apiVersion: spokehub.dev/v1
kind: PolicyBinding
metadata: {name: start-cap}
spec: {policyName: start-cap, match: {hooks: [run.start]}, actions: [Deny]}
"""


@step
async def view_pay(amount: int) -> int:
    return amount


@workflow
async def view_flow(amount: int) -> int:
    return await view_pay(amount)


def test_decisions_on_the_run_page_the_api_and_runs_show(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'db.sqlite'}"
    (tmp_path / "policies").mkdir()
    (tmp_path / "policies" / "p.yaml").write_text(POLICY)
    settings = Settings(database_url=db, policy_dir=str(tmp_path / "policies"), poll_interval=0.05)
    client = Client(settings=settings)
    govern(client)
    admin = asyncio.run(tokens.create_token(client, name="viewer-admin", role="admin")).secret
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    config = ServerConfig(
        settings=settings, secret=b"server secret for the tests, 32b", port=port, worker=True
    )
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(config, client=client),
            host="127.0.0.1",
            port=port,
            ws="none",
            log_level="warning",
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive()
        assert time.monotonic() < deadline
        time.sleep(0.01)
    try:
        base = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {admin}"}) as http:
            started = http.post(
                "/api/v1/runs",
                json={"workflow": "view_flow", "run_id": "v1", "input": {"amount": 500}},
            )
            assert started.status_code == 201, started.text
            refused = http.post(
                "/api/v1/runs",
                json={"workflow": "view_flow", "run_id": "v2", "input": {"amount": 5000}},
            )
            assert refused.status_code == 403
            error = refused.json()["error"]
            assert error["code"] == "policy_denied"
            assert "amounts of 1000 or more need the finance workflow" in error["message"]
            assert http.get("/api/v1/runs/v2").status_code == 404  # nothing stored
            for _ in range(400):
                detail = http.get("/api/v1/runs/v1").json()
                if detail["status"] == "completed":
                    break
                time.sleep(0.025)
            assert detail["status"] == "completed"
            start, decision = detail["policy_decisions"]
            assert start["hook"] == "run.start"
            assert start["decision"] == "allow"
            assert start["subject"]["actor"] == "viewer-admin"
            assert decision["decision"] == "warn"
            assert decision["seq"] == 1
            assert decision["results"][0]["violations"][0]["message"] == "amount 500 is large"
        with httpx.Client(base_url=base) as browser:
            post_login(browser, admin, "/ui/runs")
            page = browser.get("/ui/runs/v1")
            assert page.status_code == 200
            assert "Policy decisions" in page.text
            assert "amount 500 is large" in page.text
            assert "warn-large" in page.text
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        client.close()
    shown = CliRunner().invoke(cli, ["--db", db, "runs", "show", "v1"], env={"COLUMNS": "200"})
    assert shown.exit_code == 0, shown.output
    assert "policy decisions" in shown.output
    assert "#1 step view_pay: warn" in shown.output
    assert "amount 500 is large" in shown.output
    as_json = CliRunner().invoke(cli, ["--db", db, "runs", "show", "v1", "--json"])
    assert json.loads(as_json.output)["policy_decisions"][1]["decision"] == "warn"
