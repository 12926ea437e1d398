"""The distribution views over HTTP, on both backends: the patterns x targets matrix, the
rollout wave by wave, drift diffs and the audit timeline of a release, after real rollouts of
the demo (one that succeeds, one whose canary fails and rolls back) and a real hand edit."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx

from spokehub.distribution import service
from spokehub.distribution.demo.scenario import DIST
from tests.browser.live_server import Served, thread_server
from tests.dist_support import AUTO_GATE, demo_hub, real_client, release, rollout

BASE = f"/api/v1/distributions/{DIST}"


def _http(served: Served, role: str | None = "viewer") -> httpx.Client:
    headers = {"Authorization": f"Bearer {served.tokens[role]}"} if role else {}
    return httpx.Client(base_url=served.url, headers=headers, timeout=30)


def _cells(matrix: dict[str, Any]) -> dict[tuple[str, str], str]:
    return {
        (row["pattern"], c["target"]): c["state"] for row in matrix["rows"] for c in row["cells"]
    }


def test_matrix_waves_drift_and_audit_of_real_rollouts(db_url: str, tmp_path: Path) -> None:
    client = real_client(db_url)
    try:
        with demo_hub(tmp_path, edit=AUTO_GATE) as (hub, cms, _):
            assert rollout(client, hub, "r1")["status"] == "Succeeded"
            with thread_server(db_url, worker=False) as served, _http(served) as http:
                # -- the matrix after a clean rollout
                body = http.get(f"{BASE}/matrix").json()
                assert body["release"] == "r1"
                assert body["status"] == "Succeeded"
                assert body["attributed"] is True
                assert [r["pattern"] for r in body["rows"]] == [
                    "api.orders",
                    "ds.tokens.core",
                    "(release)",
                ]
                cells = _cells(body)
                assert cells[("ds.tokens.core", "cms-prod")] == "InSync"
                assert cells[("api.orders", "docs")] == "InSync"
                assert cells[("api.orders", "web")] == "Not delivered"
                assert cells[("(release)", "events")] == "InSync"
                docs = next(c for c in body["rows"][0]["cells"] if c["target"] == "docs")
                assert docs["keys"] == ["docs/api/orders.md"]

                # -- the waves of r1
                waves = http.get(f"{BASE}/waves", params={"release": "r1"}).json()
                assert [(w["name"], w["state"]) for w in waves["waves"]] == [
                    ("canary", "Done"),
                    ("broad", "Done"),
                ]
                canary = waves["waves"][0]
                assert {t["target"]: t["state"] for t in canary["targets"]} == {
                    "cms-staging": "Applied",
                    "docs": "Applied",
                }
                verdicts = {a["metric"]: a["verdict"] for a in canary["analysis"]}
                assert verdicts == {
                    "content-smoke/entries-present@cms-staging": "Successful",
                    "content-smoke/health@cms-staging": "Successful",
                }
                assert canary["gate"]["state"] == "Passed"

                # -- a hand edit, found by a real drift check
                page = hub / "targets/docs-site/docs/tokens.md"
                page.write_text(page.read_text() + "| extra | row |\n")
                asyncio.run(service.drift(client, hub, DIST, heal=False))
                cells = _cells(http.get(f"{BASE}/matrix").json())
                assert cells[("ds.tokens.core", "docs")] == "Modified"
                assert cells[("api.orders", "docs")] == "InSync"
                found = http.get(f"{BASE}/drift", params={"target": "docs"}).json()
                assert found[0]["target"] == "docs"
                assert found[0]["release"] == "r1"
                (res,) = found[0]["resources"]
                assert res["key"] == "docs/tokens.md"
                assert res["state"] == "Modified"
                assert "+| extra | row |" in res["diff"]
                assert http.get(f"{BASE}/drift", params={"target": "web"}).json() == []

                # -- r2's canary fails its analysis: applied canary targets roll back
                release(hub, "r2", "1.0.1", accent=[0.0, 0.35, 0.75])
                cms.state.faults = {"entries": "drop"}
                try:
                    assert rollout(client, hub, "r2")["status"] == "RolledBack"
                finally:
                    cms.state.faults = {}
                cells = _cells(http.get(f"{BASE}/matrix", params={"release": "r2"}).json())
                assert cells[("ds.tokens.core", "cms-staging")] == "RolledBack"
                assert cells[("ds.tokens.core", "docs")] == "RolledBack"
                assert cells[("ds.tokens.core", "web")] == "Not delivered"  # never reached
                waves = http.get(f"{BASE}/waves", params={"release": "r2"}).json()
                assert waves["status"] == "RolledBack"
                assert "entries-present@cms-staging failed" in waves["reason"]
                assert [(w["name"], w["state"]) for w in waves["waves"]] == [
                    ("canary", "RolledBack"),
                    ("broad", "Pending"),
                ]
                failed = {a["metric"]: a["verdict"] for a in waves["waves"][0]["analysis"]}
                assert failed["content-smoke/entries-present@cms-staging"] == "Failed"

                # -- the audit timeline of one release, in order
                trail = http.get(f"{BASE}/audit", params={"release": "r2"}).json()
                assert {e["release"] for e in trail} == {"r2"}
                seqs = [e["seq"] for e in trail]
                assert seqs == sorted(seqs)
                assert set(trail[0]) >= {"seq", "at", "distribution", "release", "target"}
                assert trail[-1]["kind"] == "promotion.finished"

                # -- the page draws the same (as HTML, for the live refresh)
                html = http.get(f"/ui/distributions/{DIST}/fragment?release=r2").text
                assert 'data-wave="canary" data-state="RolledBack"' in html
                assert "+| extra | row |" in html
    finally:
        client.close()


def test_views_need_a_token_and_a_known_release(tmp_path: Path) -> None:
    db_url = f"sqlite:///{tmp_path / 'empty.db'}"
    with thread_server(db_url, worker=False) as served:
        with _http(served, None) as anonymous:
            for path in ("matrix", "waves", "drift", "audit"):
                assert anonymous.get(f"{BASE}/{path}").status_code == 401, path
        with _http(served) as http:
            for path in ("matrix", "waves"):
                missing = http.get(f"{BASE}/{path}")
                assert missing.status_code == 404, path
                assert "no promoted release" in missing.json()["error"]["message"]
            assert http.get(f"{BASE}/drift").json() == []
            long = http.get(f"{BASE}/matrix", params={"release": "r" * 201})
            assert long.status_code in (400, 422)
