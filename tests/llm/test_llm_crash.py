"""SIGKILL a worker in the middle of LLM calls: every call is recorded once, and once it is
recorded the model is never asked again (checked from the loopback server's own log)."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import IO

import pytest

from spokehub import Client, EventKind, RunStatus, Settings
from spokehub.testing import run_until_idle
from tests.llm import llm_app
from tests.llm.server import Answer, LLMServer

HERE = Path(__file__).resolve().parent


class LLMWorker:
    """A ``llm_worker.py`` process running the workflows of ``tests.llm.<app>``."""

    def __init__(
        self,
        db_url: str,
        env: dict[str, str],
        log: Path,
        *,
        lease: float = 1.0,
        app: str = "llm_app",
    ) -> None:
        self._log: IO[bytes] = open(log, "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, str(HERE / "llm_worker.py"), db_url, str(lease), app],
            stdout=subprocess.PIPE,
            stderr=self._log,
            env={**os.environ, **env},
            text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line.startswith("ready"):
            self.stop()
            raise RuntimeError(f"worker did not start: {line!r}; see {log}")

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.stop()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
        self.proc.wait(timeout=30)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self._log.close()


def in_flight(server: LLMServer) -> bool:
    return any(entry.finished is None for entry in list(server.log))


@pytest.mark.slow
@pytest.mark.timeout(300)  # worker processes start slowly on a loaded machine
def test_sigkill_mid_call_never_bills_a_recorded_call_twice(tmp_path: Path) -> None:
    rng = random.Random(int(os.environ.get("CRASH_SEED", "11")))
    server = LLMServer()
    # Slow answers, so that most of a run's time is spent inside calls, where the kills land.
    server.responder = lambda body: Answer(
        "answer", prompt_tokens=100, completion_tokens=40, delay=rng.uniform(0.05, 0.25)
    )
    db_url = f"sqlite:///{tmp_path / 'llm.db'}"
    env = {"SPOKEHUB_TEST_LLM_PRIMARY": server.url}
    os.environ.update(env)
    client = Client(settings=Settings(database_url=db_url, poll_interval=0.05))
    try:
        runs = [client.start(llm_app.ai_twenty, tag) for tag in ("alpha", "beta")]
        kills_mid_call = 0
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            worker = LLMWorker(db_url, env, tmp_path / "worker.log")
            if all(r.status() is RunStatus.COMPLETED for r in runs):
                worker.stop()
                break
            if kills_mid_call >= 6:  # enough: let the last worker finish the runs
                while not all(r.status().finished for r in runs):
                    time.sleep(0.05)
                worker.stop()
                break
            # Wait until a call is in flight at the server, then kill the worker under it.
            time.sleep(rng.uniform(0.1, 0.6))
            while not in_flight(server) and not all(r.status().finished for r in runs):
                time.sleep(0.005)
            mid = in_flight(server)
            worker.kill()
            kills_mid_call += mid
        assert [r.status() for r in runs] == [RunStatus.COMPLETED] * 2
        assert kills_mid_call >= 3, "the kills should land while the server answers"

        requests = defaultdict(list)
        for index, entry in enumerate(server.log):
            requests[entry.body["messages"][-1]["content"]].append((index, entry))
        resent = 0
        for run in runs:
            recorded = [
                e
                for e in client.events(run.id)
                if e.kind is EventKind.STEP_COMPLETED and e.data["name"] == "llm.complete"
            ]
            assert len(recorded) == 20  # each call recorded exactly once
            for event in recorded:
                content = event.data["result"]["request"]["messages"][-1]["content"]
                sent = requests[content]
                # The recorded answer is the last one the server gave for this call, and
                # nothing reached the server for it after it was recorded.
                assert event.data["result"]["id"] == f"chatcmpl-{sent[-1][0]}"
                assert all(entry.at <= event.at for _, entry in sent)
                resent += len(sent) - 1
            assert run.result() == pytest.approx(20 * (100 * 0.5 + 40 * 1.5) / 1e6)
        assert resent >= 1  # calls cut by a kill went out again after recovery
        assert len(server.log) == 40 + resent

        # Replay and fork of the finished runs ask the model nothing.
        llm_app.configure()
        before = len(server.log)
        fork = client.fork(runs[0].id, from_step=21)
        run_until_idle(client)
        assert fork.result() == runs[0].result()
        assert len(server.log) == before
    finally:
        client.close()
        server.close()
        for key in env:
            os.environ.pop(key, None)
