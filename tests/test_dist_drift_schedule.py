"""Drift checks as durable runs, started on time by a real worker from each target's interval."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from typer.testing import CliRunner

from spokehub import Client
from spokehub.cli.app import app
from spokehub.distribution import audit
from spokehub.distribution.demo.scenario import DIST
from spokehub.distribution.drift_schedule import cron_for
from tests.dist_support import AUTO_GATE, demo_hub, real_client, rollout

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()

# Every checked target in detect mode, the file targets every 2 seconds; the rest is off or
# keeps the default interval given at registration (an hour: it never fires in the test).
DETECT_EVERY_2S = {
    **AUTO_GATE,
    "drift: {mode: correct}": "drift: {mode: 'off'}",
    "drift: {mode: correct, correctionBudget: {max: 3, per: 1h}}": (
        "drift: {mode: detect, interval: 2s}"
    ),
    "drift: {mode: detect}": "drift: {mode: detect, interval: 2s}",
    "    mode: correct\n": "    mode: 'off'\n",
}


def cli(db: str, *args: str, code: int = 0) -> Result:
    result = runner.invoke(app, ["--db", db, *args], env={"COLUMNS": "200"})
    assert result.exit_code == code, result.output
    return result


def test_an_interval_becomes_the_largest_cron_step_not_longer_than_it() -> None:
    assert cron_for(2) == ("* * * * * */2", 2.0)
    assert cron_for(45) == ("* * * * * */30", 30.0)
    assert cron_for(600) == ("*/10 * * * *", 600.0)
    assert cron_for(7 * 60) == ("*/6 * * * *", 360.0)
    assert cron_for(5 * 3600) == ("0 */4 * * *", 4 * 3600.0)
    assert cron_for(2 * 86400) == ("0 0 */2 * *", 2 * 86400.0)


def test_schedule_registers_one_per_checked_target_and_unschedule_removes_them(
    sqlite_url: str, tmp_path: Path
) -> None:
    edit = {**DETECT_EVERY_2S, "drift: {mode: detect, interval: 2s}": "drift: {mode: detect}"}
    with demo_hub(tmp_path, edit=edit) as (hub, _, _):
        h = ["--hub", str(hub)]
        made = json.loads(cli(sqlite_url, "dist", "drift", DIST, *h, "--schedule", "--json").output)
        by_target = {s["target"]: s for s in made}
        # cms-staging and cms-prod are off; the others use the default interval (10 minutes).
        assert sorted(by_target) == ["android", "docs", "events", "ios", "registry", "web"]
        assert by_target["web"]["name"] == f"dist-drift:{DIST}:web"
        assert by_target["web"]["cron"] == "*/10 * * * *"
        listed = json.loads(cli(sqlite_url, "schedules", "list", "--json").output)
        assert {s["name"] for s in listed} == {s["name"] for s in made}
        web = next(s for s in listed if s["name"].endswith(":web"))
        assert web["workflow"] == "spokehub.distribution.drift"
        assert web["input"]["req"]["targets"] == ["web"]
        # Turning a target off and registering again drops its schedule.
        text = (hub / "manifests/hub.yaml").read_text()
        (hub / "manifests/hub.yaml").write_text(
            text.replace(
                "config: {path: targets/web}\n  drift: {mode: detect",
                "config: {path: targets/web}\n  drift: {mode: 'off'",
            )
        )
        again = json.loads(
            cli(sqlite_url, "dist", "drift", DIST, *h, "--schedule", "--json").output
        )
        assert "web" not in {s["target"] for s in again}
        listed = json.loads(cli(sqlite_url, "schedules", "list", "--json").output)
        assert not any(s["name"].endswith(":web") for s in listed)
        out = cli(sqlite_url, "dist", "drift", DIST, *h, "--unschedule").output
        assert "removed 5 drift schedule(s)" in out
        assert json.loads(cli(sqlite_url, "schedules", "list", "--json").output) == []


@pytest.fixture
def worker_procs() -> Iterator[list[subprocess.Popen[bytes]]]:
    procs: list[subprocess.Popen[bytes]] = []
    yield procs
    for p in procs:
        p.kill()
        p.wait(10)


def _snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    return {
        str(p.relative_to(folder)): (p.read_bytes(), p.stat().st_mtime_ns)
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.mark.slow
def test_a_worker_starts_scheduled_detect_runs_that_never_write_to_targets(
    db_url: str, tmp_path: Path, worker_procs: list[subprocess.Popen[bytes]]
) -> None:
    with demo_hub(tmp_path, edit=DETECT_EVERY_2S) as (hub, cms, _):
        client = real_client(db_url)
        assert rollout(client, hub, "r1")["status"] == "Succeeded"
        css = hub / "targets/web/dist/tokens.css"
        css.write_text(css.read_text().replace("#0066cc", "#123456", 1))
        xml = hub / "targets/android/res/values/colors.xml"
        xml.write_text(xml.read_text().replace("#FF0066CC", "#FF000000"))
        before = _snapshot(hub / "targets")
        cms_before = cms.state.writes
        h = ["--hub", str(hub)]
        # `dist drift` alone is one durable run now; detect mode: exit 2, nothing written.
        out = cli(db_url, "dist", "drift", DIST, *h, code=2).output
        assert "Modified     dist/tokens.css" in out
        made = cli(db_url, "dist", "drift", DIST, *h, "--schedule", "--every", "1h").output
        assert f"dist-drift:{DIST}:web  * * * * * */2" in made
        started = time.time()
        env = {**os.environ, "PYTHONPATH": str(ROOT), "SPOKEHUB_SCHEDULER_INTERVAL": "0.2"}
        with open(tmp_path / "worker.log", "wb") as log:
            cmd = [sys.executable, "-m", "spokehub.cli", "--db", db_url, "worker"]
            cmd += ["--app", "spokehub.distribution", "--concurrency", "4"]
            worker_procs.append(subprocess.Popen(cmd, stdout=log, stderr=log, env=env))
        prefix = f"schedule:dist-drift:{DIST}:web:"
        deadline = time.time() + 90
        done: list[Any] = []
        while time.time() < deadline:
            runs = [r for r in client.list_runs(limit=1000) if r.id.startswith(prefix)]
            done = [r for r in runs if r.status.finished]
            if len(done) >= 2:
                break
            time.sleep(0.3)
        for p in worker_procs:
            p.kill()
            p.wait(10)
        logs = (tmp_path / "worker.log").read_text()[-3000:]
        assert len(done) >= 2, logs
        results = [client.get_run(r.id).result for r in done]
        entries = _audit(client)
        after = _snapshot(hub / "targets")
        cms_after = cms.state.writes
        client.close()
    for result in results:
        assert isinstance(result, dict), logs
        [web] = result["targets"]
        assert web["target"] == "web"
        assert web["mode"] == "detect"
        assert web["drifted"] == ["dist/tokens.css"]
        assert result["remaining"] == ["web"]
    stamps = sorted(datetime.fromisoformat(r.id[len(prefix) :]).timestamp() for r in done)
    assert all(round(b - a) % 2 == 0 and b > a for a, b in itertools.pairwise(stamps))
    assert after == before  # detect never wrote a byte (nor touched a file) at any target
    assert cms_after == cms_before
    assert time.time() - started < 90
    scheduled = [e for e in entries if e.kind == "drift" and e.target == "web"]
    assert len(scheduled) >= 3  # the CLI's check and at least two scheduled ones


def _audit(client: Client) -> list[audit.AuditEntry]:
    import asyncio

    return asyncio.run(audit.entries(client.store, distribution=DIST))
