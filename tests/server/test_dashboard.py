"""The dashboard over a real server on loopback: login, pages without JS, forms, CSRF, SSE."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from spokehub import Client, Settings
from spokehub.store.base import WorkerInfo
from spokehub.types import RunStatus
from tests.browser.dash_app import dash_nasty, dash_order, dash_review, dash_wait
from tests.browser.live_server import Served, post_login, thread_server

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    db = tmp_path_factory.mktemp("dash") / "dash.db"
    with thread_server(f"sqlite:///{db}") as server:
        yield server


@pytest.fixture(scope="module")
def starter(served: Served) -> Iterator[Client]:
    """Starts runs in the server's database, as another process would."""
    settings = Settings(database_url=served.db_url, poll_interval=0.02)
    with Client(settings=settings) as client:
        yield client


@contextmanager
def login(served: Served, role: str = "admin") -> Iterator[httpx.Client]:
    """A browser-like HTTP client holding a session cookie for a token of ``role``."""
    with httpx.Client(base_url=served.url, follow_redirects=False, timeout=10) as http:
        answer = post_login(http, served.tokens[role], "/ui/inbox")
        assert answer.status_code == 303
        assert answer.headers["location"] == "/ui/inbox"
        assert "spokehub_session" in answer.headers["set-cookie"]
        assert "httponly" in answer.headers["set-cookie"].lower()
        yield http


def wait_for(client: Client, run_id: str, status: RunStatus) -> None:
    deadline = time.monotonic() + 10
    while client.get_run(run_id).status is not status:
        assert time.monotonic() < deadline, f"run {run_id} never became {status}"
        time.sleep(0.02)


def csrf(html: str) -> str:
    match = CSRF.search(html)
    assert match is not None, "the page has no CSRF field"
    return match.group(1)


def test_anonymous_browser_is_sent_to_the_login_page(served: Served) -> None:
    with httpx.Client(base_url=served.url, timeout=10) as http:
        assert http.get("/").headers["location"] == "/ui/runs"
        page = http.get("/ui/runs/some-run")
        assert page.status_code == 303
        assert page.headers["location"] == "/ui/login?next=/ui/runs/some-run"
        form = http.get("/ui/login?next=https://evil.example/")
        assert form.status_code == 200
        assert 'name="next" value="/ui/runs"' in form.text  # no open redirect
        wrong = post_login(http, "shk_nope")
        assert wrong.status_code == 401
        assert "unknown or revoked" in wrong.text
        assert "spokehub_session" not in wrong.headers.get("set-cookie", "")


def test_runs_list_renders_without_js_and_filters(served: Served, starter: Client) -> None:
    done = starter.start(dash_order, "lamp")
    assert done.result(timeout=10) == "res-lamp/ship-lamp"
    waiting = starter.start(dash_wait, 0.0)
    with login(served, "viewer") as http:
        page = http.get("/ui/runs")
        assert page.status_code == 200
        assert f'href="/ui/runs/{done.id}"' in page.text
        assert '<span class="pill completed">completed</span>' in page.text
        only = http.get("/ui/runs", params={"status": "completed", "q": done.id[-6:].upper()})
        assert done.id in only.text
        assert waiting.id not in only.text
        assert '<option value="completed" selected>' in only.text
        fragment = http.get("/ui/runs/fragment", params={"workflow": "dash_wait"})
        assert fragment.text.lstrip().startswith("<table")
        assert waiting.id in fragment.text
        assert done.id not in fragment.text
        bad = http.get("/ui/runs", params={"from": "yesterday"})
        assert bad.status_code == 400
        assert "like 2026-01-31T14:00" in bad.text
    starter.send_signal(waiting.id, "go", 1)
    assert waiting.result(timeout=10) == "went 1"


def test_run_page_shows_timeline_and_redacts_secrets(served: Served, starter: Client) -> None:
    handle = starter.start(dash_nasty, "tok-VERY-SECRET")
    handle.result(timeout=10)
    with login(served, "viewer") as http:
        page = http.get(f"/ui/runs/{handle.id}")
        assert page.status_code == 200
        assert '<svg xmlns="http://www.w3.org/2000/svg" class="gantt"' in page.text
        assert "tok-VERY-SECRET" not in page.text  # input, result and ledger
        assert page.text.count("[redacted]") >= 3
        assert '"note": "kept"' in page.text.replace("&#34;", '"')
        assert "<script>alert" not in page.text
        assert "&lt;script&gt;alert" in page.text
        assert "Actions" not in page.text  # a viewer gets no forms
        missing = http.get("/ui/runs/no-such-run")
        assert missing.status_code == 404
    with login(served, "operator") as http:  # a role that may act on runs sees full values
        assert "tok-VERY-SECRET" in http.get(f"/ui/runs/{handle.id}").text


def test_approve_needs_the_csrf_token_and_the_role(served: Served, starter: Client) -> None:
    handle = starter.start(dash_review, "plan")
    wait_for(starter, handle.id, RunStatus.WAITING)
    with login(served, "viewer") as viewer:
        refused = viewer.post(
            f"/ui/runs/{handle.id}/decide",
            data={"name": "editor", "decision": "approve", "csrf_token": "x"},
        )
        assert refused.status_code == 403
    with login(served, "approver") as http:
        inbox = http.get("/ui/inbox")
        assert handle.id in inbox.text
        assert "ann, bo" in inbox.text
        form = {"name": "editor", "decision": "approve", "comment": "fine", "then": "inbox"}
        no_token = http.post(f"/ui/runs/{handle.id}/decide", data=form)
        assert no_token.status_code == 403
        assert no_token.json()["error"]["code"] == "csrf"
        ok = http.post(
            f"/ui/runs/{handle.id}/decide", data={**form, "csrf_token": csrf(inbox.text)}
        )
        assert ok.status_code == 303
        assert ok.headers["location"] == "/ui/inbox"
        assert handle.result(timeout=10) == "plan approved by approver-user"
        again = http.post(
            f"/ui/runs/{handle.id}/decide", data={**form, "csrf_token": csrf(inbox.text)}
        )
        assert again.status_code == 409
        assert "completed" in again.text


def test_operator_signals_and_cancels_from_the_run_page(served: Served, starter: Client) -> None:
    signalled = starter.start(dash_wait, 0.0)
    cancelled = starter.start(dash_wait, 3600.0)
    with login(served, "operator") as http:
        page = http.get(f"/ui/runs/{signalled.id}")
        token = csrf(page.text)
        assert 'action="/ui/runs/' in page.text
        bad = http.post(
            f"/ui/runs/{signalled.id}/signal",
            data={"name": "go", "payload": "{nope", "csrf_token": token},
        )
        assert bad.status_code == 400
        sent = http.post(
            f"/ui/runs/{signalled.id}/signal",
            data={"name": "go", "payload": '"now"', "csrf_token": token},
        )
        assert sent.status_code == 303
        assert signalled.result(timeout=10) == "went now"
        stop = http.post(f"/ui/runs/{cancelled.id}/cancel", data={"csrf_token": token})
        assert stop.status_code == 303
        wait_for(starter, cancelled.id, RunStatus.CANCELLED)
        refused = http.post(
            f"/ui/runs/{cancelled.id}/decide",
            data={"name": "editor", "decision": "approve", "csrf_token": token},
        )
        assert refused.status_code == 403  # an operator does not approve


def test_event_stream_reports_changes(served: Served, starter: Client) -> None:
    handle = starter.start(dash_wait, 0.0)
    with (
        login(served, "viewer") as http,
        http.stream("GET", "/ui/events", params={"run": handle.id}) as stream,
    ):
        assert stream.headers["content-type"].startswith("text/event-stream")
        lines = stream.iter_lines()
        assert next(lines).startswith("retry: ")
        seen = 0
        for line in lines:
            if line == "event: change":
                seen += 1
                if seen == 1:
                    starter.send_signal(handle.id, "go", 2)
                else:
                    break
        assert seen == 2
    assert handle.result(timeout=10) == "went 2"


def test_queues_slo_static_and_logout(
    served: Served, starter: Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    failing = starter.start(dash_order, "x", carrier_down=True)
    wait_for(starter, failing.id, RunStatus.FAILED)
    slo = tmp_path / "slo.toml"
    slo.write_text("[slo.dash_order]\nerror_rate = 0.01\np95_seconds = 60\n")
    monkeypatch.setenv("SPOKEHUB_SLO_FILE", str(slo))
    # Workers do not report themselves yet (runtime); write the row as a heartbeat would.
    now = time.time()
    info = WorkerInfo(
        owner="h:1:t",
        name="w-<1>",
        host="h",
        pid=1,
        queues=("default",),
        concurrency=8,
        active=2,
        state="running",
        started_at=now,
        heartbeat_at=now,
    )
    asyncio.run(starter.store.report_worker(info))
    with login(served, "viewer") as http:
        queues = http.get("/ui/queues")
        assert queues.status_code == 200
        assert "w-&lt;1&gt;" in queues.text
        assert "2 / 8" in queues.text
        page = http.get("/ui/slo", params={"window": "1h"})
        assert page.status_code == 200
        assert '<span class="rag red">red</span>' in page.text
        assert http.get("/ui/slo", params={"window": "soon"}).status_code == 400
        css = http.get("/ui/static/dashboard.css")
        assert css.headers["content-type"].startswith("text/css")
        assert http.get("/ui/static/secrets.txt").status_code == 404
        runs = http.get("/ui/runs")
        out = http.post("/ui/logout", data={"csrf_token": csrf(runs.text)})
        assert out.status_code == 303
        http.cookies.clear()
        assert http.get("/ui/runs").status_code == 303
