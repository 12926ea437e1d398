"""SIGKILL the worker while an agent plans and acts: it resumes at the next call, and no tool
call starts again once its result is recorded (checked against the tool's own journal)."""

from __future__ import annotations

import json
import os
import random
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from spokehub import Client, EventKind, RunStatus, Settings
from tests.llm.server import Answer, LLMServer
from tests.llm.test_llm_crash import LLMWorker

HERE = Path(__file__).resolve().parent
PAGES = 8


def _plan(body: dict[str, Any]) -> Answer:
    calls = [
        {"id": f"c{i}", "tool": "publish_page", "args": {"page": i}, "reason": f"page {i}"}
        for i in range(1, PAGES + 1)
    ]
    return Answer({"calls": calls, "answer": "published", "done": True}, delay=0.3)


def _journal(path: Path) -> dict[str, list[tuple[str, float]]]:
    out: dict[str, list[tuple[str, float]]] = defaultdict(list)
    if path.exists():
        for line in path.read_text().splitlines():
            what, key, at = line.split()
            out[key].append((what, float(at)))
    return out


def _mid_call(path: Path) -> bool:
    return any(marks[-1][0] == "start" for marks in _journal(path).values())


@pytest.mark.slow
def test_sigkill_while_the_agent_acts(tmp_path: Path) -> None:
    rng = random.Random(int(os.environ.get("CRASH_SEED", "5")))
    server = LLMServer()
    server.responder = _plan
    journal = tmp_path / "journal.txt"
    db_url = f"sqlite:///{tmp_path / 'agent.db'}"
    env = {"SPOKEHUB_TEST_LLM_PRIMARY": server.url, "SPOKEHUB_TEST_AGENT_JOURNAL": str(journal)}
    from tests.llm import agent_app

    client = Client(settings=Settings(database_url=db_url, poll_interval=0.05))
    try:
        runs = [client.start(agent_app.agent_publish, PAGES) for _ in range(2)]
        kills_mid_call = 0
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            worker = LLMWorker(db_url, env, tmp_path / "worker.log", app="agent_app")
            if kills_mid_call >= 4 or all(r.status().finished for r in runs):
                while not all(r.status().finished for r in runs):
                    time.sleep(0.05)
                worker.stop()
                break
            time.sleep(rng.uniform(0.2, 0.6))
            while not _mid_call(journal) and not all(r.status().finished for r in runs):
                time.sleep(0.005)
            kills_mid_call += _mid_call(journal)
            worker.kill()
        assert [r.status() for r in runs] == [RunStatus.COMPLETED] * 2
        assert [r.result() for r in runs] == [PAGES, PAGES]
        assert kills_mid_call >= 2, "the kills should land while a tool runs"

        marks = _journal(journal)
        cut_short = 0
        for run in runs:
            done = [
                e
                for e in client.events(run.id)
                if e.kind is EventKind.STEP_COMPLETED and e.data["name"] == "tool.publish_page"
            ]
            assert len(done) == PAGES  # every call recorded exactly once
            for event in done:
                key = f"{run.id}:{event.seq}"
                starts = [at for what, at in marks[key] if what == "start"]
                assert starts, f"{key} was recorded but never ran"
                # nothing started this call again after its result was recorded
                assert all(at <= event.at for at in starts), (key, starts, event.at)
                cut_short += len(starts) - 1
            planned = [
                e
                for e in client.events(run.id)
                if e.kind is EventKind.STEP_COMPLETED and e.data["name"] == "llm.complete"
            ]
            assert len(planned) == 1  # one plan, recorded once, however often it was killed
        assert cut_short >= 1  # some call was cut by a kill and ran again before recording
        assert json.dumps(server.log[0].body).count("publish_page") >= 1
    finally:
        client.close()
        server.close()
