"""Dashboard security (issue 8, defect 12): headers on every answer, a login form with a CSRF
token and a limit on failed attempts, and the documented access to the API spec and docs."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from spokehub.server.headers import CSP
from spokehub.server.ratelimit import LoginLimiter
from tests.browser.live_server import Served, post_login, thread_server


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    db = tmp_path_factory.mktemp("dash-security") / "dash.db"
    with thread_server(f"sqlite:///{db}", worker=False) as server:
        yield server


@pytest.mark.parametrize(
    "path", ["/ui/login", "/ui/runs", "/api/v1/runs", "/healthz", "/ui/static/live.js", "/nope"]
)
def test_every_answer_carries_the_security_headers(served: Served, path: str) -> None:
    with httpx.Client(base_url=served.url, timeout=10) as http:
        answer = http.get(path)
    assert answer.headers["content-security-policy"] == CSP
    assert "frame-ancestors 'none'" in CSP
    assert "'unsafe-inline'" not in CSP
    assert answer.headers["x-frame-options"] == "DENY"
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert answer.headers["referrer-policy"] == "no-referrer"


def test_the_dashboard_html_needs_no_inline_script_or_style(served: Served) -> None:
    """What the CSP forbids is not in the pages (the browser tests load them under it too)."""
    with httpx.Client(base_url=served.url, timeout=10) as http:
        post_login(http, served.tokens["admin"])
        for path in ("/ui/login", "/ui/runs", "/ui/inbox", "/ui/queues", "/ui/slo"):
            html = http.get(path).text
            assert "<script>" not in html
            assert "<style" not in html
            assert " style=" not in html
            assert " onclick=" not in html


def test_the_login_form_needs_its_csrf_token(served: Served) -> None:
    with httpx.Client(base_url=served.url, timeout=10, follow_redirects=False) as http:
        token = served.tokens["viewer"]
        forged = http.post("/ui/login", data={"token": token, "csrf_token": "x"})
        assert forged.status_code == 403
        assert "spokehub_session" not in forged.headers.get("set-cookie", "")
        no_cookie = httpx.post(
            f"{served.url}/ui/login", data={"token": token, "csrf_token": "x"}, timeout=10
        )
        assert no_cookie.status_code == 403
        ok = post_login(http, token)
        assert ok.status_code == 303
        assert "spokehub_session" in ok.headers["set-cookie"]


def test_failed_logins_are_limited_per_address(tmp_path: Path) -> None:
    with (
        thread_server(f"sqlite:///{tmp_path / 'rl.db'}", worker=False) as server,
        httpx.Client(base_url=server.url, timeout=10, follow_redirects=False) as http,
    ):
        for _ in range(5):
            assert post_login(http, "shk_wrong").status_code == 401
        limited = post_login(http, server.tokens["admin"])  # even the right token waits
        assert limited.status_code == 429
        assert int(limited.headers["retry-after"]) > 0
        assert "Too many failed logins" in limited.text


def test_the_limiter_forgets_old_failures() -> None:
    now = [0.0]
    limiter = LoginLimiter(attempts=2, window=10, clock=lambda: now[0])
    limiter.failed("a")
    limiter.failed("a")
    assert limiter.retry_after("a") == 10
    assert limiter.retry_after("b") is None
    now[0] = 10.5
    assert limiter.retry_after("a") is None


def test_the_api_spec_and_docs_are_public_as_documented(served: Served) -> None:
    """Decision (docs/server.md): they describe the API and hold no data, so no token."""
    with httpx.Client(base_url=served.url, timeout=10) as http:
        assert http.get("/api/v1/openapi.json").status_code == 200
        docs = http.get("/api/v1/docs")
        assert docs.status_code == 200
        assert "cdn.jsdelivr.net" in docs.headers["content-security-policy"]
        assert docs.headers["x-frame-options"] == "DENY"
        assert http.get("/api/v1/runs").status_code == 401
    text = (Path(__file__).parents[2] / "docs" / "server.md").read_text(encoding="utf-8")
    assert "`/api/v1/openapi.json` and `/api/v1/docs` need no token" in text
