"""``spokehub tokens`` and ``spokehub serve`` as a user runs them: real processes, real files."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from spokehub.remote import RemoteClient
from spokehub.types import RunStatus
from tests.server.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]


def spokehub(db: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "spokehub.cli", "--db", str(db), *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )


def test_tokens_create_list_revoke(tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    created = spokehub(db, "tokens", "create", "--role", "approver", "--name", "alice")
    assert created.returncode == 0, created.stderr
    secret = created.stdout.strip()
    assert secret.startswith("shk_")
    assert "not shown again" in created.stderr
    listed = json.loads(spokehub(db, "tokens", "list", "--json").stdout)
    assert [(t["name"], t["role"], t["revoked_at"]) for t in listed] == [
        ("alice", "approver", None)
    ]
    assert secret not in spokehub(db, "tokens", "list").stdout
    revoked = spokehub(db, "tokens", "revoke", listed[0]["id"])
    assert revoked.returncode == 0
    assert json.loads(spokehub(db, "tokens", "list", "--json").stdout)[0]["revoked_at"]
    missing = spokehub(db, "tokens", "revoke", "nope")
    assert missing.returncode == 3
    assert missing.stderr.startswith("error: no API token with id 'nope'")
    bad_role = spokehub(db, "tokens", "create", "--role", "king", "--name", "x")
    assert bad_role.returncode == 2


def test_serve_with_a_worker_runs_what_the_api_starts(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    token = spokehub(db, "tokens", "create", "--role", "operator", "--name", "t").stdout.strip()
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPOKEHUB_")}
    command = [sys.executable, "-m", "spokehub.cli", "--db", str(db), "serve"]
    command += ["--port", str(port), "--app", "tests/apps/cli_flows.py", "--worker"]
    server = subprocess.Popen(
        [*command, "--log-format", "json"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                if httpx.get(f"{url}/readyz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert server.poll() is None, server.communicate()[1]
            assert time.monotonic() < deadline, "the server did not become ready"
            time.sleep(0.1)
        with RemoteClient(url, token) as api:
            api.start("cli_sum", {"a": 4}, run_id="served")
            deadline = time.monotonic() + 10
            while (run := api.get_run("served")).status is not RunStatus.COMPLETED:
                assert time.monotonic() < deadline, run
                time.sleep(0.05)
        assert run.result == 15
        assert (tmp_path / "server-secret").stat().st_mode & 0o777 == 0o600
    finally:
        server.send_signal(signal.SIGINT)
        _, err = server.communicate(timeout=20)
    assert server.returncode == 0, err
    assert "Traceback" not in err


def test_serve_refuses_bad_options_in_one_line(tmp_path: Path) -> None:
    db = tmp_path / "x.db"
    no_hooks = spokehub(db, "serve", "--hooks", str(tmp_path / "missing.toml"))
    assert no_hooks.returncode == 2
    assert no_hooks.stderr.startswith("error: hooks file")
    no_app = spokehub(db, "serve", "--worker")
    assert no_app.returncode == 2
    assert "--app" in no_app.stderr
    bad_slo = tmp_path / "slo.toml"
    bad_slo.write_text("[slo.x]\np95_seconds = 'fast'\n")
    no_slo = spokehub(db, "serve", "--slo", str(bad_slo))
    assert no_slo.returncode == 2
    assert no_slo.stderr.startswith("error:")
    assert len(no_slo.stderr.strip().splitlines()) == 1


def test_docs_server_example_matches_a_real_session(tmp_path: Path) -> None:
    """docs/server.md shows `spokehub serve` output; it must be what the command prints, and
    the logs carry no uvicorn color_message (issue 8 #14)."""
    doc = (ROOT / "docs" / "server.md").read_text(encoding="utf-8")
    banner = next(line for line in doc.splitlines() if line.startswith("spokehub serving "))
    db = tmp_path / "d.db"
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPOKEHUB_")}
    command = [sys.executable, "-m", "spokehub.cli", "--db", str(db), "serve", "--port", str(port)]
    command += ["--app", "examples/order_saga.py", "--worker"]
    for fmt in ("text", "json"):
        server = subprocess.Popen(
            [*command, "--log-format", fmt],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            deadline = time.monotonic() + 20
            while True:
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/readyz").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert server.poll() is None, server.communicate()[1]
                assert time.monotonic() < deadline, "the server did not become ready"
                time.sleep(0.1)
        finally:
            server.send_signal(signal.SIGINT)
            _, err = server.communicate(timeout=20)
        lines = err.splitlines()
        assert lines[0] == banner.replace(":8321/", f":{port}/"), fmt
        assert "color_message" not in err
        assert "\x1b" not in err
        assert "\\u001b" not in err
        assert any("Application startup complete." in line for line in lines)
