"""SIGKILL a real worker in the middle of a wave: the rollout resumes with no duplicate write."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from spokehub.distribution import inventory, service
from spokehub.distribution.demo.scenario import DIST
from tests.dist_support import AUTO_GATE, demo_hub, real_client

pytestmark = pytest.mark.slow


def worker(db_url: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "SPOKEHUB_LEASE_SECONDS": "1.5", "SPOKEHUB_POLL_INTERVAL": "0.05"}
    args = [
        sys.executable,
        "-m",
        "spokehub.cli",
        "--db",
        db_url,
        "worker",
        "--app",
        "spokehub.distribution",
    ]
    return subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def wait_for(check: object, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.02)


def test_sigkill_mid_wave_resumes_without_duplicate_cms_writes(db_url: str, tmp_path: Path) -> None:
    client = real_client(db_url)
    try:
        with demo_hub(tmp_path, edit=AUTO_GATE) as (hub, cms, _):
            cms.state.faults = {"delay": 0.15}
            handle = asyncio.run(service.start_rollout(client, hub, DIST, "r1", run_id="crash-1"))
            first = worker(db_url)
            try:
                # 8 entries go to cms-staging (canary), 8 to cms-prod (broad): kill inside broad.
                wait_for(lambda: cms.state.writes >= 11, 60)
            finally:
                first.send_signal(signal.SIGKILL)
                first.wait()
            killed_at = cms.state.writes
            second = worker(db_url)
            try:
                run = handle.result(timeout=90)
            finally:
                second.terminate()
                second.wait(10)
            invs = asyncio.run(inventory.load_all(client.store, DIST))
    finally:
        client.close()
    assert 11 <= killed_at < 16
    assert run["status"] == "Succeeded", run
    assert cms.state.writes == 16  # exactly the changed entries: none written twice
    assert len(invs["cms-prod"]) == 8
    assert len(invs["cms-staging"]) == 8
