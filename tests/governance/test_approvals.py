"""Approvals with a lifecycle, over HTTP with real tokens, on SQLite and PostgreSQL.

Two servers share the database (see conftest), the worker runs in the test with the servers'
FakeClock, so reminders, escalation and expiry are tested without sleeping.
"""

from __future__ import annotations

import secrets
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from spokehub import EventKind, RunStatus
from spokehub.testing import run_until_idle
from tests.browser.live_server import post_login
from tests.governance import approvals_app
from tests.governance.conftest import CROWD, Gov


def _rid(what: str) -> str:
    return f"gov-{what}-{secrets.token_hex(3)}"


def _settle(gov: Gov, *, advance: bool = False) -> None:
    run_until_idle(gov.worker, advance_time=advance)


def _run(gov: Gov, run_id: str) -> dict[str, Any]:
    with gov.http("vic") as http:
        answer = http.get(f"/api/v1/runs/{run_id}")
        assert answer.status_code == 200, answer.text
        run: dict[str, Any] = answer.json()
        return run


def _kinds(gov: Gov, run_id: str) -> list[str]:
    return [e["kind"] for e in _run(gov, run_id)["events"]]


def _error(answer: Any, status: int, code: str) -> str:
    assert answer.status_code == status, answer.text
    error = answer.json()["error"]
    assert error["code"] == code, error
    message: str = error["message"]
    return message


def test_fifty_concurrent_decisions_make_one_transition(gov: Gov) -> None:
    run_id = _rid("race")
    gov.start("gov_role", run_id, doc="x")
    _settle(gov)
    names = [f"crowd{i:02d}" for i in range(CROWD)]

    def decide(i: int) -> tuple[str, int, dict[str, Any]]:
        # Half the decisions go through each server: two connections to the database.
        with gov.http(names[i], server=i % 2) as http:
            answer = http.post(f"/api/v1/runs/{run_id}/approve", json={})
            return names[i], answer.status_code, answer.json()

    with ThreadPoolExecutor(max_workers=CROWD) as pool:
        answers = list(pool.map(decide, range(CROWD)))
    winners = [(name, body) for name, code, body in answers if code == 200]
    assert len(winners) == 1, answers
    assert winners[0][1]["outcome"] == "approved"
    losers = [body["error"]["code"] for _, code, body in answers if code != 200]
    assert [code for _, code, _ in answers].count(409) == CROWD - 1
    assert set(losers) == {"approval_closed"}
    _settle(gov)
    run = _run(gov, run_id)
    assert run["status"] == "completed"
    assert run["result"] == f"approved by {winners[0][0]}"
    assert _kinds(gov, run_id).count("approval_decided") == 1


def test_quorum_two_of_three_counts_distinct_approvers(gov: Gov) -> None:
    run_id = _rid("quorum")
    gov.start("gov_quorum", run_id, doc="x")
    _settle(gov)
    first = gov.vote("alice", run_id, comment="ok")
    assert first.status_code == 200, first.text
    assert first.json()["outcome"] == "pending"
    assert (first.json()["approvals"], first.json()["quorum"]) == (1, 2)
    message = _error(gov.vote("alice", run_id), 409, "duplicate_vote")
    assert "already voted" in message
    _settle(gov)
    assert _run(gov, run_id)["status"] == "waiting"  # one distinct approver is not two
    second = gov.vote("carol", run_id)
    assert second.json()["outcome"] == "approved"
    _settle(gov)
    run = _run(gov, run_id)
    assert (run["status"], run["result"]) == ("completed", "approved by alice,carol")
    decided = next(e for e in run["events"] if e["kind"] == "approval_decided")["data"]
    assert [v["by"] for v in decided["votes"]] == ["alice", "carol"]
    late = _error(gov.vote("bob", run_id), 409, "approval_closed")
    assert "closed" in late


def test_one_rejection_rejects(gov: Gov) -> None:
    run_id = _rid("reject")
    gov.start("gov_quorum", run_id, doc="x")
    _settle(gov)
    assert gov.vote("alice", run_id).json()["outcome"] == "pending"
    no = gov.vote("bob", run_id, "reject", comment="not today")
    assert no.json()["outcome"] == "rejected"
    _settle(gov)
    run = _run(gov, run_id)
    assert run["status"] == "failed"
    assert run["error"]["type"] == "ApprovalRejected"
    assert "not today" in run["error"]["message"]


def test_self_approval_and_non_assignees_are_refused(gov: Gov) -> None:
    run_id = _rid("self")
    gov.start("gov_one", run_id, doc="x")
    _settle(gov)
    # dave started the run; named as an assignee or not, he may not approve it
    other = _rid("self-ok")
    gov.start("gov_self_ok", other, doc="x")
    _settle(gov)
    with gov.http("dave") as http:  # an operator token cannot approve at all
        assert http.post(f"/api/v1/runs/{run_id}/approve", json={}).status_code == 403
    assert "not an assignee" in _error(gov.vote("erin", run_id), 403, "approval_forbidden")
    assert "not an assignee" in _error(gov.vote("root", run_id), 403, "approval_forbidden")
    _settle(gov)
    assert _run(gov, run_id)["status"] == "waiting"  # nothing changed
    assert gov.vote("bob", run_id).json()["outcome"] == "approved"
    _settle(gov)
    assert _run(gov, run_id)["result"] == "approved by bob"
    assert gov.vote("alice", other).json()["outcome"] == "approved"


def test_self_approval_refused_for_the_starter(gov: Gov) -> None:
    run_id = _rid("starter")
    with gov.http("alice") as http:  # alice may not start runs (approver role)
        body = {"workflow": "gov_one", "input": {"doc": "x"}, "run_id": run_id}
        assert http.post("/api/v1/runs", json=body).status_code == 403
    # A run alice started from Python (recorded as started by her) refuses her decision.
    handle = gov.worker.start_input(
        approvals_app.gov_one, {"doc": "x"}, run_id=run_id, started_by="alice"
    )
    _settle(gov)
    message = _error(gov.vote("alice", handle.id), 403, "approval_forbidden")
    assert "started this run" in message
    assert gov.vote("carol", handle.id).json()["outcome"] == "approved"


def test_roles_as_assignees(gov: Gov) -> None:
    run_id = _rid("role")
    gov.start("gov_role", run_id, doc="x")
    _settle(gov)
    assert "not an assignee" in _error(gov.vote("root", run_id), 403, "approval_forbidden")
    assert gov.vote("erin", run_id).json()["outcome"] == "approved"
    _settle(gov)
    assert _run(gov, run_id)["result"] == "approved by erin"


def test_reminders_and_escalation_are_durable_timers(gov: Gov) -> None:
    run_id = _rid("timers")
    gov.start("gov_timers", run_id, doc="x")
    _settle(gov)
    start = gov.clock.now()
    assert "not an assignee" in _error(gov.vote("carol", run_id), 403, "approval_forbidden")
    gov.clock.set(start + 3600)
    _settle(gov)
    events = _run(gov, run_id)["events"]
    reminded = [e for e in events if e["kind"] == "approval_reminded"]
    assert [e["data"]["n"] for e in reminded] == [1]
    assert reminded[0]["data"]["assignees"] == ["alice"]
    gov.clock.set(start + 2 * 3600)
    _settle(gov)
    events = _run(gov, run_id)["events"]
    escalated = [e for e in events if e["kind"] == "approval_escalated"]
    assert len(escalated) == 1
    assert escalated[0]["data"]["to"] == ["carol"]
    assert len([e for e in events if e["kind"] == "approval_reminded"]) == 2
    with gov.http("carol") as http:  # the inbox shows it to carol now
        inbox = http.get("/ui/inbox", headers={"Accept": "text/html"})
    assert run_id in _inbox_for(gov, "carol")
    assert run_id not in _inbox_for(gov, "bob")
    del inbox
    assert gov.vote("carol", run_id).json()["outcome"] == "approved"
    _settle(gov)
    assert _run(gov, run_id)["result"] == "approved by carol"


def _inbox_for(gov: Gov, who: str) -> str:
    """The dashboard inbox of ``who`` (logged in with their token)."""
    with gov.http() as http:
        login = post_login(http, gov.tokens[who], "/ui/runs")
        assert login.status_code == 303, login.text
        page = http.get("/ui/inbox/fragment")
        assert page.status_code == 200
        return page.text


def test_expiry_applies_the_configured_outcome(gov: Gov) -> None:
    runs = {outcome: _rid(f"exp-{outcome}") for outcome in ("reject", "approve", "error")}
    for outcome, run_id in runs.items():
        gov.start("gov_expire", run_id, outcome=outcome)
    _settle(gov)
    gov.clock.advance(601)
    for run_id in runs.values():  # past the deadline, before any worker noticed: refused
        assert "expired" in _error(gov.vote("alice", run_id), 409, "approval_closed")
    _settle(gov)
    results = {o: _run(gov, r)["result"] for o, r in runs.items()}
    assert results["reject"].startswith("rejected: expired: nobody decided within 600 s")
    assert results["approve"] == "approved (expired=True) by None"
    assert results["error"] == "timed out"


def test_expiry_can_escalate_once(gov: Gov) -> None:
    run_id = _rid("exp-escalate")
    gov.start("gov_expire", run_id, outcome="escalate")
    _settle(gov)
    gov.clock.advance(601)
    _settle(gov)
    run = _run(gov, run_id)
    assert run["status"] == "waiting"
    escalated = [e for e in run["events"] if e["kind"] == "approval_escalated"]
    assert escalated[0]["data"]["reason"] == "timeout"
    gov.clock.advance(600)
    _settle(gov)
    assert _run(gov, run_id)["result"].startswith("rejected: expired")


def test_bad_approval_calls_fail_at_the_call(gov: Gov) -> None:
    for case, words in (("empty", "needs assignees"), ("big", "more than the 2 distinct")):
        run_id = _rid(f"bad-{case}")
        gov.start("gov_bad", run_id, case=case)
        _settle(gov)
        run = _run(gov, run_id)
        assert run["status"] == "failed"
        assert words in run["error"]["message"]
        assert "approval_requested" not in _kinds(gov, run_id)


@pytest.mark.parametrize("kind", [EventKind.APPROVAL_REMINDED, EventKind.APPROVAL_ESCALATED])
def test_new_event_kinds_belong_to_the_approval_call(kind: EventKind) -> None:
    from spokehub.engine.events import Event

    assert Event(3, kind, 0.0, 2, {"name": "ship"}).call() is not None
    assert RunStatus.WAITING.value == "waiting"


def test_a_worker_killed_while_an_approval_waits(gov: Gov, tmp_path: Path) -> None:
    """A real worker process is SIGKILLed with the approval half decided; a new one finishes."""
    run_id = _rid("restart")
    log = tmp_path / "worker.log"

    def worker() -> subprocess.Popen[bytes]:
        app = str(Path(approvals_app.__file__))
        command = [sys.executable, "-m", "spokehub.cli", "--db", gov.db_url, "worker", "--app", app]
        with log.open("ab") as out:
            return subprocess.Popen(command, stdout=out, stderr=out)

    first = worker()
    try:
        gov.start("gov_quorum", run_id, doc="x")
        _wait_status(gov, run_id, "waiting")
        assert gov.vote("alice", run_id).json()["outcome"] == "pending"
        first.send_signal(signal.SIGKILL)
        assert first.wait(timeout=10) == -signal.SIGKILL
        assert gov.vote("bob", run_id).json()["outcome"] == "approved"
        second = worker()
        try:
            run = _wait_status(gov, run_id, "completed")
        finally:
            second.send_signal(signal.SIGKILL)
            second.wait(timeout=10)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait(timeout=10)
    assert run["result"] == "approved by alice,bob", log.read_text()


def _wait_status(gov: Gov, run_id: str, status: str) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while True:
        run = _run(gov, run_id)
        if run["status"] == status:
            return run
        assert time.monotonic() < deadline, (run["status"], status)
        time.sleep(0.05)  # a real worker process on the real clock: poll over HTTP


def test_the_inbox_lists_what_waits_for_me(gov: Gov) -> None:
    from typer.testing import CliRunner

    from spokehub.cli.app import app

    named, by_role = _rid("inbox-named"), _rid("inbox-role")
    gov.start("gov_one", named, doc="x")
    gov.start("gov_role", by_role, doc="x")
    _settle(gov)

    def waiting(who: str, everyone: bool = False) -> set[str]:
        with gov.http(who) as http:
            answer = http.get("/api/v1/approvals", params={"all": "true"} if everyone else {})
            assert answer.status_code == 200, answer.text
            return {item["run_id"] for item in answer.json()}

    assert {named, by_role} <= waiting("alice")  # by name, and by her approver role
    assert by_role in waiting("erin")
    assert named not in waiting("erin")
    assert not {named, by_role} & waiting("root")  # admin is not the approver role
    assert {named, by_role} <= waiting("vic", everyone=True)
    listed = CliRunner().invoke(app, ["--db", gov.db_url, "approvals", "list", "--for", "bob"])
    assert listed.exit_code == 0, listed.output
    assert named in listed.stdout
    assert by_role not in listed.stdout  # no role given on the CLI
    as_json = CliRunner().invoke(
        app, ["--db", gov.db_url, "approvals", "list", "--for", "x", "--json"]
    )
    assert named not in as_json.stdout
    for run_id in (named, by_role):
        assert gov.vote("carol", run_id).json()["outcome"] == "approved"
    assert not {named, by_role} & waiting("alice")
