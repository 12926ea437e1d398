"""Signed approval links over HTTP, on SQLite and PostgreSQL (servers from conftest)."""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import Any

from spokehub.testing import run_until_idle
from tests.governance import approvals_app  # registers the workflows
from tests.governance.conftest import Gov

assert approvals_app


def _rid(what: str) -> str:
    return f"link-{what}-{secrets.token_hex(3)}"


def _waiting(gov: Gov, workflow: str) -> str:
    run_id = _rid(workflow)
    gov.start(workflow, run_id, doc="x")
    run_until_idle(gov.worker, advance_time=False)
    return run_id


def _issue(gov: Gov, run_id: str, by: str, **extra: Any) -> dict[str, Any]:
    with gov.http("root") as http:
        answer = http.post(f"/api/v1/runs/{run_id}/approval-links", json={"by": by, **extra})
        assert answer.status_code == 201, answer.text
        link: dict[str, Any] = answer.json()
        return link


def _use(gov: Gov, token: str, approved: bool = True) -> Any:
    with gov.http() as http:  # no API token: the link is the credential
        return http.post(f"/api/v1/approval-links/{token}", json={"approved": approved})


def _status(gov: Gov, run_id: str) -> str:
    run_until_idle(gov.worker, advance_time=False)
    with gov.http("vic") as http:
        status: str = http.get(f"/api/v1/runs/{run_id}").json()["status"]
        return status


def test_a_link_shows_a_confirm_page_and_works_once(gov: Gov) -> None:
    run_id = _waiting(gov, "gov_one")
    link = _issue(gov, run_id, "alice")
    assert link["path"] == f"/ui/approval-links/{link['token']}"
    with gov.http() as http:
        page = http.get(link["path"])
    assert page.status_code == 200
    assert run_id in page.text
    assert "Approve" in page.text
    assert "alice" in page.text
    assert _status(gov, run_id) == "waiting"  # opening the page changes nothing
    with gov.http() as http:
        done = http.post(link["path"], data={"decision": "approve", "comment": "ok"})
    assert done.status_code == 200, done.text
    assert "You approved" in done.text
    again = _use(gov, link["token"])
    assert again.status_code == 410
    assert again.json()["error"]["code"] == "approval_link_gone"
    with gov.http() as http:
        assert http.get(link["path"]).status_code == 410
    assert _status(gov, run_id) == "completed"


def test_a_link_used_twice_on_an_open_quorum_is_gone(gov: Gov) -> None:
    run_id = _waiting(gov, "gov_quorum")
    link = _issue(gov, run_id, "bob")
    first = _use(gov, link["token"])
    assert first.status_code == 200
    assert first.json()["outcome"] == "pending"
    assert _use(gov, link["token"]).status_code == 410
    assert gov.vote("carol", run_id).json()["outcome"] == "approved"


def test_a_link_after_expiry_is_gone(gov: Gov) -> None:
    run_id = _waiting(gov, "gov_one")
    link = _issue(gov, run_id, "carol", ttl_seconds=60)
    gov.clock.advance(61)
    with gov.http() as http:
        page = http.get(link["path"])
    assert page.status_code == 410
    assert "expired" in page.text
    answer = _use(gov, link["token"])
    assert answer.status_code == 410
    assert "expired" in answer.json()["error"]["message"]
    assert _status(gov, run_id) == "waiting"
    assert gov.vote("carol", run_id).json()["outcome"] == "approved"  # carol's vote is unused


def test_a_bad_signature_is_403_and_changes_nothing(gov: Gov) -> None:
    run_id = _waiting(gov, "gov_quorum")
    token = _issue(gov, run_id, "alice")["token"]
    payload, mac = token.split(".")
    tampered = [
        f"{payload}.{mac[:-2]}xx",
        f"{payload[:-4]}AAAA.{mac}",
        "not-a-link",
        f"{payload}.",
    ]
    for bad in tampered:
        answer = _use(gov, bad)
        assert answer.status_code == 403, (bad, answer.text)
        assert answer.json()["error"]["code"] == "approval_link_invalid"
        with gov.http() as http:
            assert http.get(f"/ui/approval-links/{bad}").status_code == 403
    # no vote was recorded: alice's own vote is still her first
    assert gov.vote("alice", run_id).json()["approvals"] == 1
    assert _use(gov, token).status_code == 409  # her link: she voted already


def test_links_are_for_assignees_and_issued_by_admins(gov: Gov) -> None:
    run_id = _waiting(gov, "gov_one")
    with gov.http("root") as http:
        refused = http.post(f"/api/v1/runs/{run_id}/approval-links", json={"by": "erin"})
    assert refused.status_code == 403
    assert "not an assignee" in refused.json()["error"]["message"]
    with gov.http("alice") as http:
        answer = http.post(f"/api/v1/runs/{run_id}/approval-links", json={"by": "alice"})
    assert answer.status_code == 403
    with gov.http("root") as http:
        answer = http.post(
            f"/api/v1/runs/{run_id}/approval-links", json={"by": "alice", "name": "x"}
        )
    assert answer.status_code == 409
    with gov.http() as http:
        bad = http.post(f"/ui/approval-links/{_issue(gov, run_id, 'bob')['token']}", data={})
    assert bad.status_code == 400
    assert gov.vote("bob", run_id).json()["outcome"] == "approved"


def test_the_cli_prints_a_link_the_server_accepts(gov: Gov) -> None:
    from typer.testing import CliRunner

    from spokehub.cli.app import app
    from tests.governance.conftest import SECRET

    run_id = _waiting(gov, "gov_one")
    env = {"SPOKEHUB_SERVER_SECRET": SECRET.decode()}
    runner = CliRunner()
    args = ["--db", gov.db_url, "approvals", "link", run_id, "--for", "bob", "--url", gov.urls[1]]
    printed = runner.invoke(app, args, env=env)
    assert printed.exit_code == 0, printed.output
    url = printed.stdout.strip()
    assert url.startswith(gov.urls[1] + "/ui/approval-links/")
    with gov.http() as http:
        assert http.get(url).status_code == 200
        assert http.post(url, data={"decision": "reject"}).status_code == 200
    assert _status(gov, run_id) == "failed"
    wrong = runner.invoke(app, [*args[:-2], "--ttl", "soon"], env=env)
    assert wrong.exit_code == 2
    erin = runner.invoke(
        app, ["--db", gov.db_url, "approvals", "link", run_id, "--for", "erin"], env=env
    )
    assert erin.exit_code == 4


def test_the_cli_needs_the_server_secret(gov: Gov, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from spokehub.cli.app import app
    from tests.governance.conftest import SECRET

    run_id = _waiting(gov, "gov_one")
    args = ["--db", gov.db_url, "approvals", "link", run_id, "--for", "bob"]
    runner = CliRunner()
    missing = runner.invoke(app, args, env={"SPOKEHUB_SERVER_SECRET": ""})
    assert missing.exit_code == 2
    assert "SPOKEHUB_SERVER_SECRET" in missing.output
    gone = runner.invoke(app, [*args, "--secret-file", str(tmp_path / "none")])
    assert gone.exit_code == 2
    (tmp_path / "secret").write_bytes(SECRET + b"\n")
    made = runner.invoke(app, [*args, "--secret-file", str(tmp_path / "secret"), "--json"])
    assert made.exit_code == 0, made.output
    token = json.loads(made.stdout)["token"]
    assert _use(gov, token).json()["outcome"] == "approved"


def test_a_link_to_an_approval_closed_by_someone_else(gov: Gov) -> None:
    run_id = _waiting(gov, "gov_one")
    link = _issue(gov, run_id, "alice")
    assert gov.vote("bob", run_id).json()["outcome"] == "approved"
    with gov.http() as http:
        page = http.get(link["path"])
    assert page.status_code == 409
    assert "closed" in page.text
    answer = _use(gov, link["token"])
    assert answer.status_code == 409
    assert answer.json()["error"]["code"] == "approval_closed"
    _status(gov, run_id)  # the worker takes the decision in
    with gov.http() as http:
        assert http.get(link["path"]).status_code == 409
