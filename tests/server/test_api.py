"""The REST API through HTTP against a real server: every operation, and bad input."""

from __future__ import annotations

import asyncio
import secrets
import time

from spokehub import Client, Settings
from spokehub.store.base import WorkerInfo
from tests.server.conftest import LiveServer


def _rid(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(4)}"


def _assert_error(response: object, status: int, code: str | None = None) -> dict[str, str]:
    import httpx

    assert isinstance(response, httpx.Response)
    assert response.status_code == status, response.text
    error: dict[str, str] = response.json()["error"]
    assert set(error) == {"code", "message", "path"}
    assert error["message"]
    if code is not None:
        assert error["code"] == code
    return error


def test_start_runs_to_completion_and_is_idempotent_by_id(live: LiveServer) -> None:
    run_id = _rid("add")
    body = {"workflow": "api_add", "input": {"a": 2, "b": 3}, "run_id": run_id}
    with live.http("operator") as http:
        first = http.post("/api/v1/runs", json=body)
        assert first.status_code == 201, first.text
        assert first.json()["id"] == run_id
        assert first.json()["input"] == {"a": 2, "b": 3}
        again = http.post("/api/v1/runs", json=body)
        assert again.status_code == 200
        assert again.json()["id"] == run_id
        assert again.json()["created_at"] == first.json()["created_at"]
        other = http.post("/api/v1/runs", json={**body, "input": {"a": 9}})
        error = _assert_error(other, 409, "run_id_conflict")
        assert "different input" in error["message"]
    run = live.wait_for(run_id, "completed")
    assert run["status"] == "completed"
    assert run["result"] == 5
    assert [step["name"] for step in run["steps"]] == ["api_add_step"]
    assert run["events"][0]["kind"] == "run_started"


def test_start_refuses_unknown_workflows_and_bad_input(live: LiveServer) -> None:
    with live.http("operator") as http:
        error = _assert_error(
            http.post("/api/v1/runs", json={"workflow": "nope"}), 404, "workflow_not_found"
        )
        assert "api_add" in error["message"]  # it lists what is registered
        _assert_error(
            http.post("/api/v1/runs", json={"workflow": "api_add", "input": {"zzz": 1}}),
            400,
            "serialization",
        )
        _assert_error(http.post("/api/v1/runs", json={"input": {}}), 422, "invalid_request")
        _assert_error(
            http.post("/api/v1/runs", json={"workflow": "api_add", "extra": 1}),
            422,
            "invalid_request",
        )
        bad_json = http.post(
            "/api/v1/runs", content=b"{not json", headers={"content-type": "application/json"}
        )
        _assert_error(bad_json, 422, "invalid_request")


def test_list_runs_filters(live: LiveServer) -> None:
    tag = secrets.token_hex(3)
    before = time.time()
    with live.http("operator") as http:
        for n in range(3):
            body = {"workflow": "api_add", "input": {"a": n}, "run_id": f"flt-{tag}-{n}"}
            assert http.post("/api/v1/runs", json=body).status_code == 201
        review = {"workflow": "api_review", "input": {"doc": "x"}, "run_id": f"flt-{tag}-r"}
        assert http.post("/api/v1/runs", json=review).status_code == 201
    live.wait_for(f"flt-{tag}-2", "completed")
    live.wait_for(f"flt-{tag}-r", "waiting")
    with live.http("viewer") as http:
        found = http.get("/api/v1/runs", params={"search": tag.upper()}).json()
        assert {r["id"] for r in found} == {f"flt-{tag}-{n}" for n in (0, 1, 2, "r")}
        reviews = http.get("/api/v1/runs", params={"search": tag, "workflow": "api_review"})
        assert [r["id"] for r in reviews.json()] == [f"flt-{tag}-r"]
        waiting = http.get("/api/v1/runs", params={"search": tag, "status": "waiting"}).json()
        assert [r["id"] for r in waiting] == [f"flt-{tag}-r"]
        limited = http.get("/api/v1/runs", params={"search": tag, "limit": 2}).json()
        assert len(limited) == 2
        later = http.get("/api/v1/runs", params={"search": tag, "created_after": time.time() + 60})
        assert later.json() == []
        window = {"search": tag, "created_after": before - 1, "created_before": time.time() + 1}
        assert len(http.get("/api/v1/runs", params=window).json()) == 4
        _assert_error(http.get("/api/v1/runs", params={"status": "sleepy"}), 422)
        _assert_error(http.get("/api/v1/runs", params={"limit": 0}), 422)
        inverted = {"created_after": 10, "created_before": 5}
        _assert_error(http.get("/api/v1/runs", params=inverted), 400, "bad_request")


def test_get_unknown_run_is_404(live: LiveServer) -> None:
    with live.http("viewer") as http:
        error = _assert_error(http.get("/api/v1/runs/no-such-run"), 404, "run_not_found")
        assert error["path"] == "/api/v1/runs/no-such-run"


def test_signal_reaches_a_waiting_run(live: LiveServer) -> None:
    run_id = _rid("sig")
    with live.http("operator") as http:
        http.post("/api/v1/runs", json={"workflow": "api_wait_signal", "run_id": run_id})
        live.wait_for(run_id, "waiting")
        sent = http.post(f"/api/v1/runs/{run_id}/signals", json={"name": "go", "payload": [1, 2]})
        assert sent.status_code == 202
        assert sent.json() == {"run_id": run_id, "name": "go"}
        _assert_error(http.post(f"/api/v1/runs/{run_id}/signals", json={"name": ""}), 422)
        _assert_error(
            http.post("/api/v1/runs/ghost/signals", json={"name": "go"}), 404, "run_not_found"
        )
    assert live.wait_for(run_id, "completed")["result"] == [1, 2]


def test_approve_records_the_token_name_and_reject_fails_the_run(live: LiveServer) -> None:
    approved, rejected = _rid("ok"), _rid("no")
    with live.http("operator") as http:
        for run_id in (approved, rejected):
            body = {"workflow": "api_review", "input": {"doc": run_id}, "run_id": run_id}
            assert http.post("/api/v1/runs", json=body).status_code == 201
    for run_id in (approved, rejected):
        live.wait_for(run_id, "waiting")
    with live.http("approver") as http:
        ok = http.post(f"/api/v1/runs/{approved}/approve", json={"comment": "fine"})
        assert ok.status_code == 200, ok.text
        assert ok.json() == {
            "run_id": approved,
            "name": "editor",
            "approved": True,
            "outcome": "approved",
            "approvals": 1,
            "quorum": 1,
        }
        no = http.post(f"/api/v1/runs/{rejected}/reject", json={"comment": "typos"})
        assert no.json()["approved"] is False
        # nothing is pending any more: a second decision is a conflict, not a 500
        _assert_error(
            http.post(f"/api/v1/runs/{approved}/approve", json={}), 409, "approval_closed"
        )
    assert live.wait_for(approved, "completed")["result"] == f"{approved} approved by test-approver"
    failed = live.wait_for(rejected, "failed")
    assert failed["error"]["type"] == "ApprovalRejected"
    assert "typos" in failed["error"]["message"]


def test_cancel_a_waiting_run(live: LiveServer) -> None:
    run_id = _rid("cancel")
    with live.http("operator") as http:
        http.post("/api/v1/runs", json={"workflow": "api_wait_signal", "run_id": run_id})
        live.wait_for(run_id, "waiting")
        answer = http.post(f"/api/v1/runs/{run_id}/cancel")
        assert answer.status_code == 200
        assert answer.json()["cancel_requested"] is True or answer.json()["status"] == "cancelled"
        _assert_error(http.post("/api/v1/runs/ghost/cancel"), 404, "run_not_found")
    assert live.wait_for(run_id, "cancelled")["status"] == "cancelled"


def test_fork_replays_earlier_calls(live: LiveServer) -> None:
    source, forked = _rid("src"), _rid("fork")
    with live.http("operator") as http:
        http.post("/api/v1/runs", json={"workflow": "api_add", "input": {"a": 1}, "run_id": source})
        live.wait_for(source, "completed")
        answer = http.post(
            f"/api/v1/runs/{source}/fork", json={"from_step": 1, "new_run_id": forked}
        )
        assert answer.status_code == 201, answer.text
        assert answer.json()["id"] == forked
        _assert_error(
            http.post(f"/api/v1/runs/{source}/fork", json={"from_step": 1, "new_run_id": forked}),
            409,
            "run_id_conflict",
        )
        _assert_error(http.post(f"/api/v1/runs/{source}/fork", json={"from_step": 0}), 422)
    run = live.wait_for(forked, "completed")
    assert run["result"] == 2
    assert run["forked_from"] == source


def _report_worker(db_url: str, owner: str) -> None:
    """Register a worker row the way a worker's heartbeat does (this branch's Worker does not
    report itself yet), so that the endpoint has something to list."""

    async def report() -> None:
        client = Client(settings=Settings(database_url=db_url))
        try:
            now = time.time()
            info = WorkerInfo(
                owner=owner,
                name="w",
                host="h",
                pid=1,
                queues=("default",),
                concurrency=4,
                active=0,
                state="running",
                started_at=now,
                heartbeat_at=now,
            )
            await client.store.report_worker(info)
        finally:
            await client.close_async()

    asyncio.run(report())


def test_queues_workers_and_workflows(live: LiveServer) -> None:
    owner = _rid("host:1")
    _report_worker(live.db_url, owner)
    with live.http("operator") as http:
        http.post("/api/v1/runs", json={"workflow": "api_wait_signal", "run_id": _rid("q")})
    with live.http("viewer") as http:
        queues = http.get("/api/v1/queues").json()
        default = next(q for q in queues if q["queue"] == "default")
        assert sum(default["counts"].values()) >= 1
        workers = http.get("/api/v1/workers").json()
        mine = next(w for w in workers if w["owner"] == owner)
        assert mine["queues"] == ["default"]
        assert mine["state"] == "running"
        assert http.get("/api/v1/workers", params={"seen_within": 3600}).json()
        _assert_error(http.get("/api/v1/workers", params={"seen_within": -1}), 422)
        names = {wf["name"]: wf for wf in http.get("/api/v1/workflows").json()}
        assert names["api_add"]["parameters"] == ["a", "b"]


def test_tokens_admin_api(live: LiveServer) -> None:
    with live.http("admin") as http:
        created = http.post("/api/v1/tokens", json={"name": "ci", "role": "viewer"})
        assert created.status_code == 201
        secret, token_id = created.json()["token"], created.json()["id"]
        assert secret.startswith("shk_")
        listed = http.get("/api/v1/tokens").json()
        assert token_id in {t["id"] for t in listed}
        assert all("token" not in t for t in listed)
        _assert_error(http.post("/api/v1/tokens", json={"name": "x", "role": "god"}), 422)
    with live.http() as anon:
        auth = {"Authorization": f"Bearer {secret}"}
        assert anon.get("/api/v1/runs", headers=auth).status_code == 200
        with live.http("admin") as http:
            assert http.delete(f"/api/v1/tokens/{token_id}").status_code == 204
            _assert_error(http.delete("/api/v1/tokens/nope"), 404, "token_not_found")
        _assert_error(anon.get("/api/v1/runs", headers=auth), 401, "unauthorized")


def test_health_readiness_and_malformed_paths(live: LiveServer) -> None:
    with live.http() as http:
        assert http.get("/healthz").json() == {"status": "ok"}
        assert http.get("/readyz").json() == {"status": "ok"}
        _assert_error(http.get("/api/v1/nothing-here"), 404, "not_found")
        _assert_error(http.put("/api/v1/runs"), 405, "method_not_allowed")
        spec = http.get("/api/v1/openapi.json").json()
        assert "/api/v1/runs/{run_id}/approve" in spec["paths"]


def test_metrics_needs_a_token(live: LiveServer) -> None:
    with live.http() as anon:
        _assert_error(anon.get("/metrics"), 401)
    with live.http("operator") as http:
        run_id = _rid("metric")
        http.post("/api/v1/runs", json={"workflow": "api_add", "input": {"a": 1}, "run_id": run_id})
    live.wait_for(run_id, "completed")
    with live.http("viewer") as http:
        answer = http.get("/metrics")
        assert answer.status_code == 200
        assert answer.headers["content-type"].startswith("text/plain")
        assert "spokehub_runs_started_total{" in answer.text
