"""Distribution over HTTP: the status API, the audit API and the dashboard page."""

from __future__ import annotations

import asyncio
from pathlib import Path

from spokehub import Client, Settings
from spokehub.distribution import service
from tests.server.conftest import LiveServer

HEAD = "apiVersion: spokehub.dev/v1alpha1\n"


def small_hub(root: Path) -> Path:
    (root / "manifests").mkdir(parents=True)
    (root / "releases/r1/web").mkdir(parents=True)
    (root / "releases/r1/web/tokens.css").write_text(":root { --x: 1px; }\n")
    (root / "manifests/hub.yaml").write_text(
        HEAD + "kind: Target\nmetadata: {name: web, labels: {ring: '0'}}\n"
        "spec: {adapter: fs, config: {path: out/web}}\n---\n"
        + HEAD
        + "kind: Distribution\nmetadata: {name: api-dist}\nspec:\n"
        "  source: {use: files}\n  targets: {selector: {matchLabels: {ring: '0'}}}\n"
    )
    return root


def test_status_audit_and_page(live: LiveServer, tmp_path: Path) -> None:
    hub = small_hub(tmp_path)
    client = Client(settings=Settings(database_url=live.db_url, poll_interval=0.05))

    async def roll() -> None:
        handle = await service.start_rollout(client, hub, "api-dist", "r1")
        run = await service.drive(client, handle.id)
        assert run.result["status"] == "Succeeded"  # type: ignore[index]

    try:
        asyncio.run(roll())
    finally:
        client.close()
    with live.http("viewer") as http:
        assert "api-dist" in http.get("/api/v1/distributions").json()
        body = http.get("/api/v1/distributions/api-dist").json()
        assert body["targets"][0]["target"] == "web"
        assert body["targets"][0]["resources"] == 1
        assert body["promotions"][0]["status"] == "Succeeded"
        trail = http.get("/api/v1/distributions/api-dist/audit", params={"release": "r1"}).json()
        assert "promotion.finished" in [e["kind"] for e in trail]
        html = http.get("/ui/distributions/api-dist").text
        assert "Audit timeline of r1" in html
        assert "Succeeded" in html
        assert "api-dist" in http.get("/ui/distributions").text
    with live.http() as anonymous:
        assert anonymous.get("/api/v1/distributions").status_code == 401
