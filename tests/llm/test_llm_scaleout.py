"""Three worker processes on PostgreSQL share one provider rate limit and fall back to a
second provider when the first fails, each call recorded once."""

from __future__ import annotations

import math
import os
import time
from collections import Counter
from pathlib import Path

import pytest

from spokehub import Client, EventKind, RunStatus, Settings
from tests.llm import llm_app
from tests.llm.server import Answer, LLMServer, Status
from tests.llm.test_llm_crash import LLMWorker

LIMIT, PER = 3, 1.0


@pytest.mark.slow
@pytest.mark.timeout(300)  # worker processes start slowly on a loaded machine
def test_rate_limit_and_fallback_across_three_workers(pg_url: str, tmp_path: Path) -> None:
    primary, backup = LLMServer(), LLMServer()

    def answer_primary(body: dict[str, object]) -> Answer | Status:
        tag = body["messages"][-1]["content"]  # type: ignore[index]
        if int(str(tag).split("-")[1]) % 4 == 0:
            return Status(503)  # every fourth call: the primary is down, the chain moves on
        return Answer("primary", prompt_tokens=10, completion_tokens=10)

    primary.responder = answer_primary
    backup.responder = lambda body: Answer("backup", prompt_tokens=10, completion_tokens=10)
    env = {
        "SPOKEHUB_TEST_LLM_PRIMARY": primary.url,
        "SPOKEHUB_TEST_LLM_BACKUP": backup.url,
        "SPOKEHUB_TEST_LLM_RATE": f"{LIMIT}/{PER}",
    }
    client = Client(settings=Settings(database_url=pg_url, poll_interval=0.05))
    workers = []
    try:
        handles = [client.start(llm_app.ai_one, f"call-{i}") for i in range(15)]
        workers = [LLMWorker(pg_url, env, tmp_path / f"w{n}.log") for n in range(3)]
        deadline = time.monotonic() + 60
        while not all(h.status().finished for h in handles):
            assert time.monotonic() < deadline, "runs did not finish"
            time.sleep(0.05)
        assert all(h.status() is RunStatus.COMPLETED for h in handles)
        providers = {h.id: h.result() for h in handles}
        for i, h in enumerate(handles):
            assert providers[h.id] == ("backup" if i % 4 == 0 else "default")
            recorded = [
                e
                for e in client.events(h.id)
                if e.kind is EventKind.STEP_COMPLETED and e.data["name"] == "llm.complete"
            ]
            assert len(recorded) == 1
            if i % 4 == 0:
                assert recorded[0].data["result"]["fallbacks"] == [
                    {"target": "default:m1", "error": "ProviderUnavailable"}
                ]
        # Each call reached the primary once (the 503s were not retried there), the failed
        # ones reached the backup once.
        sent = Counter(entry.body["messages"][-1]["content"] for entry in primary.log)
        assert sent == Counter(f"call-{i}" for i in range(15))
        assert len(backup.log) == 4
        # The shared limit held. Slots are counted per 1 s window of the workers' clocks; a
        # request reaches the server up to a window after its slot when its process is slow
        # to send (CI saw a loaded machine deliver 6 in one server second), so a server-side
        # window holds its own slots plus late ones of the window before (<= 2 * LIMIT), and
        # any k consecutive windows at most (k + 1) * LIMIT. The 15 requests needed at least
        # 15 / LIMIT windows of slots: without a shared limit (3 workers limiting alone, or
        # none) they arrive within about two seconds, and the span check fails.
        windows = Counter(math.floor(entry.at / PER) for entry in primary.log)
        assert max(windows.values()) <= 2 * LIMIT
        first, last = min(windows), max(windows)
        for start in range(first, last + 1):
            for k in range(1, last - start + 2):
                assert sum(windows[w] for w in range(start, start + k)) <= (k + 1) * LIMIT
        span = max(e.at for e in primary.log) - min(e.at for e in primary.log)
        assert span >= (math.ceil(15 / LIMIT) - 2) * PER
    finally:
        for w in workers:
            w.stop()
        client.close()
        primary.close()
        backup.close()
        for key in env:
            os.environ.pop(key, None)
