"""The integrations routes: schedules (with 422 for bad input) and the hosts' breakers."""

from __future__ import annotations

from tests.server.conftest import LiveServer


def test_schedules_over_http(live: LiveServer) -> None:
    body = {
        "name": "api-nightly",
        "workflow": "api_add",
        "cron": "0 3 * * *",
        "timezone": "Europe/Paris",
        "input": {"a": 1},
    }
    with live.http("operator") as http:
        made = http.post("/api/v1/schedules", json=body)
        assert made.status_code == 201, made.text
        assert len(made.json()["next_fire_times"]) == 3
        for bad, path in [({"cron": "0 25 * * *"}, "cron"), ({"timezone": "Mars/Base"}, "zone")]:
            refused = http.post("/api/v1/schedules", json={**body, **bad})
            assert refused.status_code == 422
            assert path in refused.json()["error"]["message"]
        listed = http.get("/api/v1/schedules").json()
        assert [s["name"] for s in listed if s["name"] == "api-nightly"] == ["api-nightly"]
        assert http.post("/api/v1/schedules/api-nightly/pause").json()["paused"] is True
        assert http.post("/api/v1/schedules/api-nightly/resume").json()["paused"] is False
        assert http.delete("/api/v1/schedules/api-nightly").status_code == 204
        gone = http.delete("/api/v1/schedules/api-nightly")
        assert gone.status_code == 404
        assert gone.json()["error"]["code"] == "schedule_not_found"
    with live.http("viewer") as http:
        assert http.post("/api/v1/schedules", json=body).status_code == 403
        hosts = http.get("/api/v1/integrations/hosts")
        assert hosts.status_code == 200
        assert isinstance(hosts.json(), list)


def test_events_are_read_over_http(live: LiveServer) -> None:
    from spokehub.integrations.outbox import install_outbox, outbox_sink

    client = live.app.state.spokehub.client
    install_outbox(client)
    try:
        with live.http("operator") as http:
            started = http.post(
                "/api/v1/runs", json={"workflow": "api_add", "input": {"a": 2}, "run_id": "ev-1"}
            )
            assert started.status_code in (200, 201), started.text
            live.wait_for("ev-1", "completed")
            events = http.get("/api/v1/events", params={"limit": 1000}).json()
            mine = [e for e in events if e["payload"]["run_id"] == "ev-1"]
            assert [e["name"] for e in mine] == ["run.started", "run.completed"]
            assert mine[0]["id"] == "ev-1:0" or mine[0]["id"].startswith("ev-1:")
            later = http.get("/api/v1/events", params={"after": mine[0]["seq"]}).json()
            assert all(e["seq"] > mine[0]["seq"] for e in later)
    finally:
        client.store.event_sinks.remove(outbox_sink)


def test_webhook_subscriptions_over_http(live: LiveServer) -> None:
    with live.http("operator") as http:
        refused = http.post(
            "/api/v1/outbound-webhooks/subscriptions", json={"url": "ftp://x/y", "events": ["*"]}
        )
        assert refused.status_code == 422
        assert refused.json()["error"]["code"] == "webhook_subscription"
        made = http.post(
            "/api/v1/outbound-webhooks/subscriptions",
            json={"url": "https://example.com/h", "events": ["run.failed"]},
        )
        assert made.status_code == 201, made.text
        sub = made.json()
        assert sub["secret"].startswith("whsec_")
        listed = http.get("/api/v1/outbound-webhooks/subscriptions").json()
        assert next(s for s in listed if s["id"] == sub["id"]).get("secret") is None
        assert http.get("/api/v1/outbound-webhooks/deliveries").status_code == 200
        assert (
            http.delete(f"/api/v1/outbound-webhooks/subscriptions/{sub['id']}").status_code == 204
        )
        assert (
            http.delete(f"/api/v1/outbound-webhooks/subscriptions/{sub['id']}").status_code == 404
        )
