"""SIGKILL a real worker while a failed delivery waits for its learnt retry: the schedule holds."""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path

import pytest

from spokehub.distribution import service
from spokehub.distribution.demo.scenario import DIST
from tests.dist_support import AUTO_GATE, demo_hub, real_client
from tests.flaky_cms import FlakyCms
from tests.test_dist_crash import wait_for, worker
from tests.test_dist_predictive import point_prod_at, seed

pytestmark = pytest.mark.slow
NO_ANALYSIS = {**AUTO_GATE, "      analysis: [content-smoke]\n": ""}  # faster: not under test


def test_a_worker_killed_during_a_learnt_retry_wait_resumes_on_schedule(
    db_url: str, tmp_path: Path
) -> None:
    now = time.time()
    # Healthy, with two past failures the target recovered from 1.5 s and 2.5 s later.
    history = [{"at": now - 900 + 60 * i, "ok": True, "s": 0.01} for i in range(8)]
    history[2:2] = [{"at": history[1]["at"] + 1, "ok": False, "s": 0.01}]
    history[3]["at"] = history[2]["at"] + 1.5
    history[5:5] = [{"at": history[4]["at"] + 1, "ok": False, "s": 0.01}]
    history[6]["at"] = history[5]["at"] + 2.5
    client = real_client(db_url)
    try:
        with demo_hub(tmp_path, edit=NO_ANALYSIS) as (hub, _, _), FlakyCms(failures=1) as flaky:
            point_prod_at(hub, flaky, "  predictive: {maxRetryWait: 10s}")
            seed(client, history)
            handle = asyncio.run(service.start_rollout(client, hub, DIST, "r1", run_id="heal-1"))

            def retry_scheduled() -> bool:
                trail = asyncio.run(service.timeline(client, DIST, "r1"))
                return any(e["kind"] == "retry" for e in trail)

            first = worker(db_url)
            try:
                wait_for(retry_scheduled, 60)
                # Past the note step's completion (a kill between its audit row and its
                # completion would run it again: steps are at least once), into the sleep.
                time.sleep(0.4)
            finally:
                first.send_signal(signal.SIGKILL)
                first.wait()
            killed_at = time.monotonic()
            second = worker(db_url)
            try:
                run = handle.result(timeout=60)
            finally:
                second.terminate()
                second.wait(10)
            trail = asyncio.run(service.timeline(client, DIST, "r1"))
    finally:
        client.close()
    assert run["status"] == "Succeeded", run
    retries = [e["detail"] for e in trail if e["kind"] == "retry"]
    assert [(r["decision"], r["delay"], r["learnt"]) for r in retries] == [("retry", 1.5, True)]
    failed, retried = flaky.write_times[0], flaky.write_times[1]
    assert killed_at < retried  # the retry came from the second worker
    assert retried - failed >= 1.5  # at the learnt delay, not at once after the restart
    assert flaky.state.writes == 8
    applied = [e["detail"] for e in trail if e["kind"] == "apply" and e["target"] == "cms-prod"]
    assert [a["attempt"] for a in applied] == [2]
