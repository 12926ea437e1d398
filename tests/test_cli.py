"""The ``spokehub`` command: in-process with CliRunner, and end to end in real subprocesses."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from typer.testing import CliRunner

from spokehub.cli.app import app
from spokehub.runtime.loader import import_app
from spokehub.store import schema

APP = str(Path(__file__).parent / "apps" / "cli_flows.py")
runner = CliRunner()


@pytest.fixture
def db(tmp_path: Path) -> str:
    return str(tmp_path / "cli.db")


def cli(db: str, *args: str, code: int | None = 0) -> Result:
    """Invoke the CLI on ``db``; check the exit code and that no traceback leaked."""
    result = runner.invoke(app, ["--db", db, *args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    assert "Traceback" not in result.stderr
    if code is not None:
        assert result.exit_code == code, result.output
    return result


def error_line(result: Result) -> str:
    """The one ``error: ...`` line a failed command prints on stderr."""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


def show(db: str, run_id: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(cli(db, "runs", "show", run_id, "--json").stdout)
    return data


def enqueue(db: str, target: str, data: str = "{}", *extra: str) -> str:
    result = cli(db, "run", f"{APP}:{target}", "--input", data, "--no-wait", *extra)
    run_id = result.stdout.strip()
    assert run_id
    assert "\n" not in run_id
    return run_id


def drain(db: str) -> Result:
    return cli(db, "worker", "--app", APP, "--until-idle")


# -- help and global options ------------------------------------------------------------------
def test_help_documents_the_exit_codes() -> None:
    result = runner.invoke(app, ["--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    text = " ".join(result.output.split())
    assert "Exit codes: 0 ok; 1 the run failed or was cancelled; 2 bad usage" in text
    assert "3 not found (unknown run id)" in text
    assert "4 conflict or invalid state" in text
    for command in ("run", "worker", "runs", "signal", "approve", "reject", "cancel", "fork", "db"):
        assert f" {command} " in text
    version = runner.invoke(app, ["--version"])
    assert version.exit_code == 0
    assert version.stdout.startswith("spokehub ")


def test_db_from_the_environment_and_default_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SPOKEHUB_DATABASE_URL", raising=False)
    assert runner.invoke(app, ["db", "upgrade"]).exit_code == 0
    assert (tmp_path / ".spokehub" / "spokehub.db").exists()
    env_db = tmp_path / "env.db"
    result = runner.invoke(app, ["db", "upgrade"], env={"SPOKEHUB_DATABASE_URL": str(env_db)})
    assert result.exit_code == 0
    assert "applied 0001_initial" in result.stdout
    assert env_db.exists()


# -- run ----------------------------------------------------------------------------------------
def test_run_executes_to_the_end_and_shows_steps_and_timeline(db: str) -> None:
    result = cli(db, "run", f"{APP}:cli_sum", "--input", '{"a": 2, "b": 3}', "--id", "sum-1")
    out = result.stdout
    assert "run sum-1 of cli_sum" in out
    assert "✓ #1 cli_add" in out
    assert "✓ #2 cli_add" in out
    assert "completed" in out
    assert "result" in out
    assert "15" in out
    assert "0 → " in out  # the Gantt axis of the timeline
    assert show(db, "sum-1")["result"] == 15


def test_run_json_gives_the_run_with_steps_and_events(db: str) -> None:
    result = cli(db, "run", f"{APP}:cli_sum", "--input", '{"a": 1}', "--json")
    data = json.loads(result.stdout)
    assert data["status"] == "completed"
    assert data["result"] == 12
    assert data["error"] is None
    assert data["input"] == {"a": 1}
    assert data["workflow"] == "cli_sum"
    assert [(s["seq"], s["name"], s["status"]) for s in data["steps"]] == [
        (1, "cli_add", "completed"),
        (2, "cli_add", "completed"),
    ]
    assert data["events"][0]["kind"] == "run_started"
    assert data["events"][-1]["kind"] == "run_finished"
    assert "✓ #1 cli_add" in result.stderr  # progress stays off stdout


def test_failed_run_exits_1_after_compensating(db: str) -> None:
    flows = import_app(APP)
    flows.UNDONE.clear()
    result = cli(db, "run", f"{APP}:cli_fail", "--input", '{"message": "card declined"}', code=1)
    assert "✗ #2 cli_explode failed after 2 attempt(s): ValueError: card declined" in result.stdout
    assert "undid #1 cli_book" in result.stdout
    line = error_line(result)
    assert "failed: StepFailed" in line
    assert "card declined" in line
    assert flows.UNDONE == ["booking-trip"]
    [run] = json.loads(cli(db, "runs", "list", "--json").stdout)
    steps = show(db, run["id"])["steps"]
    assert [s["status"] for s in steps] == ["compensated", "failed"]


def test_run_id_is_an_idempotency_key(db: str) -> None:
    cli(db, "run", f"{APP}:cli_sum", "--input", '{"a": 1}', "--id", "same")
    again = cli(db, "run", f"{APP}:cli_sum", "--input", '{"a": 1}', "--id", "same", "--json")
    assert json.loads(again.stdout)["result"] == 12
    other = cli(db, "run", f"{APP}:cli_sum", "--input", '{"a": 2}', "--id", "same", code=4)
    assert "already exists with a different input" in error_line(other)
    assert len(json.loads(cli(db, "runs", "list", "--json").stdout)) == 1


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--input", "{not json"], "--input is not valid JSON"),
        (["--input", "[1, 2]"], "must be a JSON object"),
        (["--input", '{"a": "x"}'], "argument 'a'"),
        (["--input", '{"a": 1, "zz": 2}'], "unknown argument(s) ['zz']"),
        (["--input", "{}"], "missing argument 'a'"),
    ],
)
def test_run_rejects_bad_input_with_exit_2(db: str, args: list[str], words: str) -> None:
    result = cli(db, "run", f"{APP}:cli_sum", *args, code=2)
    assert words in error_line(result)


@pytest.mark.parametrize(
    ("target", "words"),
    [
        (f"{APP}:cli_nothing", "has no workflow named 'cli_nothing'"),
        (f"{APP}:not_a_workflow", "is not a workflow"),
        ("cli_no_such_module:flow", "no module named 'cli_no_such_module'"),
        ("no/such/file.py:flow", "does not exist"),
        (APP, "does not name a workflow"),
    ],
)
def test_run_of_a_missing_module_or_workflow_exits_2(db: str, target: str, words: str) -> None:
    result = cli(db, "run", target, code=2)
    assert words in error_line(result)


def test_no_wait_then_worker_until_idle(db: str) -> None:
    run_id = enqueue(db, "cli_sum", '{"a": 5}')
    assert show(db, run_id)["status"] == "pending"
    result = drain(db)
    assert "worker stopped after 1 activation(s)" in result.stderr
    data = show(db, run_id)
    assert (data["status"], data["result"]) == ("completed", 16)


def test_no_wait_json(db: str) -> None:
    result = cli(db, "run", f"{APP}:cli_nap", "--no-wait", "--json", "--id", "nap-1")
    assert json.loads(result.stdout) == {"id": "nap-1", "workflow": "cli_nap", "status": "pending"}


# -- runs list / show ---------------------------------------------------------------------------
def test_runs_list_table_filters_and_json(db: str) -> None:
    cli(db, "run", f"{APP}:cli_sum", "--input", '{"a": 1}', "--id", "done-1")
    enqueue(db, "cli_nap", "{}", "--id", "later-1")
    table = cli(db, "runs", "list").stdout
    assert "done-1" in table
    assert "later-1" in table
    assert "completed" in table
    assert "pending" in table
    assert "duration" in table.splitlines()[0]
    only = json.loads(cli(db, "runs", "list", "--status", "pending", "--json").stdout)
    assert [r["id"] for r in only] == ["later-1"]
    by_wf = json.loads(cli(db, "runs", "list", "--workflow", "cli_sum", "--json").stdout)
    assert [r["id"] for r in by_wf] == ["done-1"]
    assert by_wf[0]["duration"] >= 0
    assert len(json.loads(cli(db, "runs", "list", "--limit", "1", "--json").stdout)) == 1
    assert cli(db, "runs", "list", "--status", "bogus", code=2).exit_code == 2
    assert cli(db, "runs", "list", "--limit", "0", code=2).exit_code == 2


def test_runs_list_on_an_empty_database(db: str) -> None:
    assert "no runs" in cli(db, "runs", "list").stdout
    assert json.loads(cli(db, "runs", "list", "--json").stdout) == []


def test_runs_show_text_has_timeline_with_errors(db: str) -> None:
    cli(db, "run", f"{APP}:cli_fail", "--id", "fail-1", code=1)
    out = cli(db, "runs", "show", "fail-1").stdout
    assert "run fail-1" in out
    assert "cli_fail" in out
    assert "failed" in out
    assert "cli_book" in out
    assert "compensated" in out
    assert "undo cli_book" in out
    assert "#2 cli_explode: ValueError: boom" in out


@pytest.mark.parametrize(
    "args",
    [
        ["runs", "show", "ghost"],
        ["signal", "ghost", "go"],
        ["approve", "ghost"],
        ["reject", "ghost"],
        ["cancel", "ghost"],
        ["fork", "ghost", "--from-step", "1"],
    ],
)
def test_unknown_run_id_exits_3_with_one_line(db: str, args: list[str]) -> None:
    result = cli(db, *args, code=3)
    assert error_line(result) == (
        "error: no run with id 'ghost'; list runs with `spokehub runs list`"
    )
    assert result.stdout == ""


# -- approvals, signals, cancel -----------------------------------------------------------------
def test_approval_flow_through_the_cli(db: str) -> None:
    run_id = enqueue(db, "cli_review", '{"doc": "post-1"}')
    drain(db)
    waiting = show(db, run_id)
    assert waiting["status"] == "waiting"
    assert waiting["waiting_on"]["approval"][0]["name"] == "editor"
    assert waiting["steps"][0]["status"] == "waiting"
    text = cli(db, "runs", "show", run_id).stdout
    assert (
        f"waiting for approval 'editor' — approve with: spokehub --db {db} approve {run_id}" in text
    )

    approved = cli(db, "approve", run_id, "--by", "ann", "--comment", "lgtm")
    assert approved.stdout.strip() == f"approved 'editor' on run {run_id}"
    twice = cli(db, "approve", run_id, code=4)
    assert "is closed" in error_line(twice)
    drain(db)
    done = show(db, run_id)
    assert (done["status"], done["result"]) == ("completed", "published post-1 (ann)")
    step = done["steps"][0]
    assert (step["kind"], step["status"]) == ("approval", "completed")
    assert (step["info"]["by"], step["info"]["comment"]) == ("ann", "lgtm")


def test_reject_fails_the_run(db: str) -> None:
    run_id = enqueue(db, "cli_review", '{"doc": "post-2"}')
    drain(db)
    result = cli(db, "reject", run_id, "--name", "editor", "--by", "bo", "--json")
    assert json.loads(result.stdout) == {
        "run_id": run_id,
        "name": "editor",
        "approved": False,
        "outcome": "rejected",
        "approvals": 0,
        "quorum": 1,
    }
    drain(db)
    data = show(db, run_id)
    assert data["status"] == "failed"
    assert data["error"]["type"] == "ApprovalRejected"
    assert data["steps"][0]["status"] == "rejected"


def test_approve_a_run_that_waits_for_no_approval_exits_4(db: str) -> None:
    pending = enqueue(db, "cli_review", '{"doc": "x"}')
    assert "not waiting for an approval" in error_line(cli(db, "approve", pending, code=4))
    cli(db, "run", f"{APP}:cli_sum", "--input", '{"a": 1}', "--id", "finished")
    assert "waits for no approval" in error_line(cli(db, "approve", "finished", code=4))
    drain(db)
    wrong = cli(db, "reject", pending, "--name", "legal", code=4)
    assert "no pending approval named 'legal'" in error_line(wrong)


def test_signal_flow_and_errors(db: str) -> None:
    run_id = enqueue(db, "cli_wait_signal")
    bad = cli(db, "signal", run_id, "go", "--payload", "{oops", code=2)
    assert "--payload is not valid JSON" in error_line(bad)
    sent = cli(db, "signal", run_id, "go", "--payload", "21")
    assert sent.stdout.strip() == f"sent signal 'go' to run {run_id}"
    drain(db)
    assert show(db, run_id)["result"] == 42
    late = cli(db, "signal", run_id, "go", code=4)
    assert "can only go to a run that has not finished" in error_line(late)


def test_cancel_pending_and_waiting_runs(db: str) -> None:
    pending = enqueue(db, "cli_wait_signal")
    assert cli(db, "cancel", pending).stdout.strip() == f"run {pending} cancelled"
    assert "nothing to cancel" in error_line(cli(db, "cancel", pending, code=4))

    waiting = enqueue(db, "cli_wait_signal")
    drain(db)
    assert "cancellation requested" in cli(db, "cancel", waiting).stdout
    drain(db)
    data = show(db, waiting)
    assert data["status"] == "cancelled"
    assert data["steps"][0]["status"] == "cancelled"
    assert [r["kind"] for r in data["run_events"]] == ["cancellation"]


# -- fork -----------------------------------------------------------------------------------------
def test_fork_replays_earlier_calls_and_prints_the_new_id(db: str) -> None:
    cli(db, "run", f"{APP}:cli_sum", "--input", '{"a": 1}', "--id", "src")
    new_id = cli(db, "fork", "src", "--from-step", "2", "--id", "src-fork", "--app", APP).stdout
    assert new_id.strip() == "src-fork"
    drain(db)
    data = show(db, "src-fork")
    assert (data["status"], data["result"], data["forked_from"]) == ("completed", 12, "src")
    assert data["events"][0]["data"] == {"forked_from": "src", "from_step": 2}

    conflict = cli(db, "fork", "src", "--from-step", "1", "--id", "src-fork", code=4)
    assert "already exists" in error_line(conflict)
    too_far = cli(db, "fork", "src", "--from-step", "9", code=4)
    assert "fork from a step between 1 and 3" in error_line(too_far)
    assert cli(db, "fork", "src", "--from-step", "0", code=2).exit_code == 2
    assert "src-fork" not in cli(db, "fork", "src", "--from-step", "1", "--json").stdout


# -- db --------------------------------------------------------------------------------------
def test_db_upgrade_reports_migrations(db: str) -> None:
    known = [f"{m.version:04d}_{m.name}" for m in schema.load("sqlite")]
    top = len(known)
    assert known[0] == "0001_initial"
    first = cli(db, "db", "upgrade")
    assert first.stdout.splitlines() == [
        *(f"applied {name}" for name in known),
        f"schema is at version {top}",
    ]
    assert cli(db, "db", "upgrade").stdout.strip() == f"schema is up to date (version {top})"
    assert json.loads(cli(db, "db", "upgrade", "--json").stdout) == {"applied": [], "version": top}


def test_db_prune(db: str) -> None:
    cli(db, "run", f"{APP}:cli_sum", "--input", '{"a": 1}')
    enqueue(db, "cli_nap")  # not finished: never pruned
    kept = json.loads(cli(db, "db", "prune", "--older-than", "30d", "--json").stdout)
    assert (kept["runs"], kept["older_than"]) == (0, 30 * 86400)
    pruned = cli(db, "db", "prune", "--older-than", "0s")
    assert pruned.stdout.startswith("pruned 1 run(s), ")
    assert "database: " in pruned.stdout
    assert " → " in pruned.stdout
    assert len(json.loads(cli(db, "runs", "list", "--json").stdout)) == 1
    bad = cli(db, "db", "prune", "--older-than", "soon", code=2)
    assert "not a duration" in error_line(bad)


# -- worker options and database errors --------------------------------------------------------
def test_worker_options_are_checked(db: str) -> None:
    assert "names no queue" in error_line(cli(db, "worker", "--app", APP, "--queues", ",", code=2))
    missing = cli(db, "worker", "--app", "cli_missing_app_module", code=2)
    assert "no module named 'cli_missing_app_module'" in error_line(missing)
    assert cli(db, "worker", "--concurrency", "0", code=2).exit_code == 2
    other_queue = enqueue(db, "cli_nap")
    cli(db, "worker", "--app", APP, "--queues", "elsewhere", "--until-idle")
    assert show(db, other_queue)["status"] == "pending"


def test_database_errors_exit_5_and_bad_settings_exit_2(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"this is not a database" * 100)
    result = cli(str(garbage), "runs", "list", code=5)
    assert "not a usable SQLite database" in error_line(result)
    bad_env = runner.invoke(
        app, ["--db", str(tmp_path / "x.db"), "runs", "list"], env={"SPOKEHUB_LEASE_SECONDS": "x"}
    )
    assert bad_env.exit_code == 2
    assert "SPOKEHUB_LEASE_SECONDS" in error_line(bad_env)
    scheme = cli("mysql://h/db", "runs", "list", code=2)
    assert "unknown database URL scheme" in error_line(scheme)


# -- real subprocesses -----------------------------------------------------------------------
def spokehub(tmp_path: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "spokehub.cli", "--db", str(tmp_path / "sub.db"), *args],
        cwd=tmp_path,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPOKEHUB_")}
    env["SPOKEHUB_POLL_INTERVAL"] = "0.05"
    return env


def test_subprocess_run_of_a_file_workflow(tmp_path: Path) -> None:
    done = spokehub(tmp_path, "run", f"{APP}:cli_sum", "--input", '{"a": 2}', "--id", "sp-1")
    assert done.returncode == 0, done.stderr
    assert "✓ #2 cli_add" in done.stdout
    assert "13" in done.stdout
    failed = spokehub(tmp_path, "run", f"{APP}:cli_fail", "--json")
    assert failed.returncode == 1
    assert json.loads(failed.stdout)["status"] == "failed"
    assert failed.stderr.strip().splitlines()[-1].startswith("error: run ")


def test_subprocess_no_wait_then_worker_until_idle(tmp_path: Path) -> None:
    queued = spokehub(tmp_path, "run", f"{APP}:cli_sum", "--input", '{"a": 7}', "--no-wait")
    assert queued.returncode == 0, queued.stderr
    run_id = queued.stdout.strip()
    worker = spokehub(tmp_path, "worker", "--app", APP, "--until-idle")
    assert worker.returncode == 0, worker.stderr
    shown = spokehub(tmp_path, "runs", "show", run_id, "--json")
    assert json.loads(shown.stdout)["result"] == 18


def test_subprocess_errors_are_one_line_without_traceback(tmp_path: Path) -> None:
    unknown = spokehub(tmp_path, "runs", "show", "nope")
    assert unknown.returncode == 3
    assert unknown.stderr.strip().splitlines() == [
        "error: no run with id 'nope'; list runs with `spokehub runs list`"
    ]
    bare = spokehub(tmp_path, "worker", "--until-idle")
    assert bare.returncode == 2
    assert "Traceback" not in bare.stderr
    assert "no workflows are registered" in bare.stderr


def test_subprocess_run_waits_for_an_approval_from_another_process(tmp_path: Path) -> None:
    db = str(tmp_path / "sub.db")
    command = [sys.executable, "-m", "spokehub.cli", "--db", db, "run", f"{APP}:cli_review"]
    proc = subprocess.Popen(
        [*command, "--input", '{"doc": "d9"}', "--id", "rev-9"],
        cwd=tmp_path,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        status = None
        while time.monotonic() < deadline and proc.poll() is None:
            probe = runner.invoke(app, ["--db", db, "runs", "show", "rev-9", "--json"])
            if probe.exit_code == 0:
                status = json.loads(probe.stdout)["status"]
                if status == "waiting":
                    break
            time.sleep(0.05)
        assert status == "waiting"
        approved = spokehub(tmp_path, "approve", "rev-9", "--by", "eve")
        assert approved.returncode == 0, approved.stderr
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert f"waiting for approval 'editor' — approve with: spokehub --db {db} approve rev-9" in out
    assert "✓ #1 approval 'editor' approved by eve" in out
    assert "published d9 (eve)" in out


def _popen(tmp_path: Path, *args: str) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "spokehub.cli", "--db", str(tmp_path / "sub.db"), *args]
    return subprocess.Popen(
        command, cwd=tmp_path, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _wait_for_status(db: str, run_id: str, status: str, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 30
    seen = None
    while time.monotonic() < deadline and proc.poll() is None:
        probe = runner.invoke(app, ["--db", db, "runs", "show", run_id, "--json"])
        if probe.exit_code == 0:
            seen = json.loads(probe.stdout)["status"]
            if seen == status:
                return
        time.sleep(0.05)
    raise AssertionError(f"run {run_id} is {seen}, not {status}; {proc.poll()=}")


def test_subprocess_signals_stop_run_and_worker_gracefully(tmp_path: Path) -> None:
    db = str(tmp_path / "sub.db")
    procs = [_popen(tmp_path, "run", f"{APP}:cli_wait_signal", "--id", "sig-1")]
    try:
        _wait_for_status(db, "sig-1", "waiting", procs[0])
        procs[0].send_signal(signal.SIGINT)
        _, err = procs[0].communicate(timeout=30)
        assert procs[0].returncode == 130
        assert "Traceback" not in err
        assert "the run is saved; resume it with: spokehub --db" in err

        procs.append(_popen(tmp_path, "run", f"{APP}:cli_wait_signal", "--id", "sig-2"))
        _wait_for_status(db, "sig-2", "waiting", procs[1])
        procs[1].send_signal(signal.SIGTERM)
        _, err = procs[1].communicate(timeout=30)
        assert procs[1].returncode == 130
        assert "error: terminated; the run is saved" in err

        runner.invoke(app, ["--db", db, "signal", "sig-1", "go", "--payload", "5"])
        procs.append(_popen(tmp_path, "worker", "--app", APP, "--concurrency", "2"))
        _wait_for_status(db, "sig-1", "completed", procs[2])
        procs[2].send_signal(signal.SIGTERM)
        _, err = procs[2].communicate(timeout=30)
        assert procs[2].returncode == 0, err
        assert "worker stopped after" in err
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert show(db, "sig-1")["result"] == 10
    assert show(db, "sig-2")["status"] == "waiting"


def test_cli_decisions_record_the_os_user_without_by(
    db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOGNAME", "carol")  # getpass.getuser reads LOGNAME first
    run_id = enqueue(db, "cli_review", '{"doc": "post-3"}')
    drain(db)
    cli(db, "approve", run_id)
    drain(db)
    done = show(db, run_id)
    assert done["steps"][0]["info"]["by"] == "carol"
    assert done["result"] == "published post-3 (carol)"


def test_every_spokehub_command_named_in_docs_and_messages_exists() -> None:
    """`spokehub runs fork` was suggested by the dead-letter message and docs (issue 8 #14)."""
    import re

    import typer.main

    root = Path(__file__).parents[1]
    group = typer.main.get_command(app)
    texts = [root / "README.md", *sorted((root / "docs").glob("*.md"))]
    texts += sorted((root / "src" / "spokehub").rglob("*.py"))
    mention = re.compile(r"[`(]\s*(?:\.venv/bin/)?spokehub((?: [a-z][a-z-]*){1,2})")
    checked = 0
    for path in texts:
        for match in mention.finditer(path.read_text(encoding="utf-8")):
            words = match.group(1).split()
            command = group.commands.get(words[0])  # type: ignore[attr-defined]
            assert command is not None, f"{path.name}: `spokehub {words[0]}` is no command"
            subcommands = getattr(command, "commands", None)
            if subcommands is not None and len(words) > 1:
                assert words[1] in subcommands, f"{path.name}: `spokehub {' '.join(words)}`"
            checked += 1
    assert checked > 20
