"""Malformed input over HTTP, on SQLite and on PostgreSQL (issue 8, defects 2-6 and 10).

Every case ends in a 4xx with ``{"error": {code, message, path}}``, nothing is stored, and the
server and its worker stay healthy: a normal run still completes afterwards.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from spokehub import step, workflow
from tests.browser.live_server import Served, post_login, thread_server
from tests.pg import fresh_schema


@workflow
async def bi_echo(data: dict[str, Any]) -> dict[str, Any]:
    return data


@workflow
async def bi_typed(n: int) -> int:
    return n + 1


@step
async def bi_leaky(api_key: str) -> str:
    raise RuntimeError(f"upstream refused api_key={api_key}")


@workflow
async def bi_uses_key(api_key: str, note: str = "kept") -> str:
    return await bi_leaky(api_key)


@step
async def bi_bad_text() -> list[str]:
    return ["\ud800", "a\x00b"]


@workflow
async def bi_returns_bad_text() -> list[str]:
    return await bi_bad_text()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def served(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    if request.param == "sqlite":
        db = tmp_path_factory.mktemp("bad-input") / "spokehub.db"
        with thread_server(f"sqlite:///{db}") as server:
            yield server
        return
    with fresh_schema() as url, thread_server(url) as server:
        yield server


def http(served: Served, role: str = "admin") -> httpx.Client:
    auth = {"Authorization": f"Bearer {served.tokens[role]}"}
    return httpx.Client(base_url=served.url, headers=auth, timeout=20)


def assert_error(answer: httpx.Response, status: int, code: str | None = None) -> str:
    assert answer.status_code == status, answer.text
    body = answer.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "path"}
    if code is not None:
        assert body["error"]["code"] == code, body
    message: str = body["error"]["message"]
    return message


def raw_start(client: httpx.Client, text: str) -> httpx.Response:
    """POST a JSON body written by hand (json.dumps cannot write a lone surrogate)."""
    return client.post(
        "/api/v1/runs", content=text.encode("utf-8"), headers={"content-type": "application/json"}
    )


def run_ids(client: httpx.Client) -> set[str]:
    answer = client.get("/api/v1/runs", params={"limit": 1000})
    assert answer.status_code == 200, answer.text
    return {r["id"] for r in answer.json()}


def wait_finished(client: httpx.Client, run_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 15
    while True:
        run: dict[str, Any] = client.get(f"/api/v1/runs/{run_id}").json()
        if run.get("status") in ("completed", "failed", "cancelled") or time.monotonic() > deadline:
            return run
        time.sleep(0.02)


BODY = '{"workflow": "bi_echo", "input": {"data": %s}, "run_id": "%%s"}'
BAD_BODIES = {
    "surrogate value": BODY % '{"x": "\\ud800"}',
    "surrogate key": BODY % '{"\\udfff": 1}',
    "nul value": BODY % '{"x": "a\\u0000"}',
    "nul key": BODY % '{"\\u0000": 1}',
}


@pytest.mark.parametrize("case", sorted(BAD_BODIES))
def test_invalid_text_in_an_input_is_refused_and_not_stored(served: Served, case: str) -> None:
    run_id = f"bi-{case.replace(' ', '-')}"
    with http(served, "operator") as client:
        message = assert_error(raw_start(client, BAD_BODIES[case] % run_id), 400, "invalid_input")
        assert "UTF-8" in message
        assert_error(client.get(f"/api/v1/runs/{run_id}"), 404, "run_not_found")
        assert run_id not in run_ids(client)


@pytest.mark.parametrize(
    "run_id",
    ["", "   ", "\t", "a/b", "../x", "a\x01b", "a\x00b", "\ud800", "x" * 256, "-flag"],
)
def test_run_ids_follow_one_rule(served: Served, run_id: str) -> None:
    body = json.dumps({"workflow": "bi_typed", "input": {"n": 1}, "run_id": run_id})
    with http(served, "operator") as client:
        before = run_ids(client)
        message = assert_error(raw_start(client, body), 400, "invalid_input")
        assert "run id" in message
        assert run_ids(client) == before


@pytest.mark.parametrize("path", ["/api/v1/runs/a%00b", "/api/v1/runs/a%00b/cancel"])
def test_nul_in_a_path_is_the_same_4xx_on_both_backends(served: Served, path: str) -> None:
    with http(served) as client:
        answer = client.post(path) if path.endswith("cancel") else client.get(path)
        assert_error(answer, 400, "invalid_input")


def test_nul_in_a_search_is_a_4xx(served: Served) -> None:
    with http(served) as client:
        assert_error(client.get("/api/v1/runs", params={"search": "a\x00"}), 400, "invalid_input")
        assert_error(client.get("/api/v1/runs", params={"workflow": "\x00"}), 400, "invalid_input")
        assert_error(client.delete("/api/v1/tokens/a%00b"), 400, "invalid_input")
        named = client.post("/api/v1/tokens", json={"name": "a\x00b", "role": "viewer"})
        assert_error(named, 400, "invalid_input")


def test_signals_and_decisions_refuse_invalid_text(served: Served) -> None:
    with http(served, "admin") as client:
        started = client.post("/api/v1/runs", json={"workflow": "bi_typed", "input": {"n": 1}})
        run_id = started.json()["id"]
        signal = '{"name": "go", "payload": {"x": "\\ud800"}}'
        assert_error(
            client.post(
                f"/api/v1/runs/{run_id}/signals",
                content=signal.encode(),
                headers={"content-type": "application/json"},
            ),
            400,
            "invalid_input",
        )
        nul_name = client.post(f"/api/v1/runs/{run_id}/signals", json={"name": "a\x00"})
        assert_error(nul_name, 400, "invalid_input")
        comment = client.post(f"/api/v1/runs/{run_id}/approve", json={"comment": "x\x00"})
        assert_error(comment, 400, "invalid_input")


def test_a_body_over_the_limit_is_413_with_the_error_shape(served: Served) -> None:
    big = json.dumps({"workflow": "bi_echo", "input": {"data": {"b": "x" * (1024 * 1024)}}})
    with http(served, "operator") as client:
        before = run_ids(client)
        message = assert_error(raw_start(client, big), 413, "too_large")
        assert "1048576" in message
        assert "reference" in message

        def chunks() -> Iterator[bytes]:  # no Content-Length: counted while it is read
            for _ in range(20):
                yield b"x" * 100_000

        chunked = client.post(
            "/api/v1/runs", content=chunks(), headers={"content-type": "application/json"}
        )
        assert_error(chunked, 413, "too_large")
        assert run_ids(client) == before


def test_python_types_are_checked_over_http_too(served: Served) -> None:
    with http(served, "operator") as client:
        answer = client.post("/api/v1/runs", json={"workflow": "bi_typed", "input": {"n": "x"}})
        assert_error(answer, 400, "serialization")


def test_one_bad_stored_row_never_breaks_listing_or_showing(served: Served) -> None:
    with http(served, "operator") as client:
        run_id = client.post("/api/v1/runs", json={"workflow": "bi_returns_bad_text"}).json()["id"]
        run = wait_finished(client, run_id)
        assert run["status"] == "completed"
        assert run["result"] == ["\\ud800", "a\\u0000b"]
        listed = client.get("/api/v1/runs", params={"limit": 1000})
        assert listed.status_code == 200
        assert run_id in {r["id"] for r in listed.json()}
    with httpx.Client(base_url=served.url, timeout=20) as browser:
        login = post_login(browser, served.tokens["viewer"], "/ui")
        assert login.status_code in (200, 303)
        assert browser.get(f"/ui/runs/{run_id}").status_code == 200
        assert browser.get("/ui/runs").status_code == 200


def test_secrets_are_redacted_for_viewers_not_for_operators(served: Served) -> None:
    with http(served, "operator") as client:
        started = client.post(
            "/api/v1/runs", json={"workflow": "bi_uses_key", "input": {"api_key": "sk-LIVE-123"}}
        )
        run_id = started.json()["id"]
        assert started.json()["input"]["api_key"] == "sk-LIVE-123"  # operators see full values
        run = wait_finished(client, run_id)
        assert run["status"] == "failed"
        assert "sk-LIVE-123" in json.dumps(run)
    with http(served, "viewer") as viewer:
        shown = viewer.get(f"/api/v1/runs/{run_id}")
        assert shown.status_code == 200
        text = shown.text
        assert "sk-LIVE-123" not in text  # input, error message, ledger, timeline
        assert shown.json()["input"] == {"api_key": "[redacted]"}
        assert "api_key=[redacted]" in shown.json()["error"]["message"]
        listed = viewer.get("/api/v1/runs", params={"limit": 1000}).text
        assert "sk-LIVE-123" not in listed


def test_the_server_and_worker_stay_healthy_afterwards(served: Served) -> None:
    with http(served, "operator") as client:
        assert client.get("/healthz").json() == {"status": "ok"}
        assert client.get("/readyz").json() == {"status": "ok"}
        run_id = client.post("/api/v1/runs", json={"workflow": "bi_typed", "input": {"n": 41}})
        run = wait_finished(client, run_id.json()["id"])
        assert run["status"] == "completed"
        assert run["result"] == 42
