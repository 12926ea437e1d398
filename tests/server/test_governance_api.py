"""The audit trail over HTTP and in the dashboard; operator actions carry the token's name."""

from __future__ import annotations

import httpx

from tests.browser.live_server import post_login
from tests.server.conftest import LiveServer


def test_audit_api_records_api_actions_by_token_name(live: LiveServer) -> None:
    with live.http("operator") as http:
        started = http.post("/api/v1/runs", json={"workflow": "api_add", "input": {"a": 1}})
        assert started.status_code == 201, started.text
        run_id = started.json()["id"]
        detail = http.get(f"/api/v1/runs/{run_id}").json()
        assert detail["policy_decisions"] == []
        assert http.get("/api/v1/audit").status_code == 403  # admins only
    with live.http("admin") as http:
        entries = http.get("/api/v1/audit", params={"run_id": run_id}).json()
        assert [(e["action"], e["actor"]) for e in entries] == [("run.start", "test-operator")]
        assert entries[0]["details"] == {"workflow": "api_add"}
        everything = http.get("/api/v1/audit", params={"limit": 1000}).json()
        assert everything[0]["action"] == "token.create" or everything[0]["seq"] == 1
        assert any(e["action"] == "server.start" for e in everything)
        page = http.get("/api/v1/audit", params={"after_seq": everything[0]["seq"], "limit": 1})
        assert page.json()[0]["seq"] == everything[1]["seq"]
        verified = http.get("/api/v1/audit/verify").json()
        assert verified["ok"] is True
        assert verified["entries"] >= len(everything)
        bad = http.get("/api/v1/audit", params={"limit": 0})
        assert bad.status_code == 400 or bad.status_code == 422
        assert "error" in bad.json()


def test_audit_page(live: LiveServer) -> None:
    with httpx.Client(base_url=live.url, timeout=10) as browser:
        login = post_login(browser, live.tokens["admin"], "/ui/runs")
        assert login.status_code == 303
        page = browser.get("/ui/audit", params={"action": "server."})
        assert page.status_code == 200
        assert "Chain verified" in page.text
        assert "server.start" in page.text
        assert "run.start" not in page.text
    with httpx.Client(base_url=live.url, timeout=10) as browser:
        post_login(browser, live.tokens["viewer"], "/ui/runs")
        assert browser.get("/ui/audit").status_code == 403
