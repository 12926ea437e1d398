"""Breaker and rate limit shared by 3 real worker processes on PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from spokehub import Client, EventKind, RunStatus
from spokehub.integrations import PostgresHostState
from tests.integrations import pg_app
from tests.integrations.scripted_server import Answer, ScriptedServer

ROOT = Path(__file__).resolve().parents[2]
RUNS = 30
DONE = {RunStatus.COMPLETED, RunStatus.FAILED}


def _workers(url: str, tmp: Path, env: dict[str, str], n: int = 3) -> list[subprocess.Popen[bytes]]:
    procs = []
    for i in range(n):
        cmd = [
            sys.executable,
            "-m",
            "spokehub.cli",
            "--db",
            url,
            "worker",
            "--app",
            "tests.integrations.pg_app",
            "--concurrency",
            "2",
        ]
        full_env = {**os.environ, "PYTHONPATH": str(ROOT), "SPOKEHUB_DATABASE_URL": url, **env}
        with open(tmp / f"worker{i}.log", "wb") as log:  # the child keeps its own copy
            procs.append(subprocess.Popen(cmd, stdout=log, stderr=log, env=full_env))
    return procs


@pytest.fixture
def stop_later() -> Iterator[list[subprocess.Popen[bytes]]]:
    procs: list[subprocess.Popen[bytes]] = []
    yield procs
    for p in procs:
        p.kill()
        p.wait(10)


def _run_all(
    url: str, target: str, tmp: Path, env: dict[str, str], procs: list[subprocess.Popen[bytes]]
) -> tuple[Client, list[str]]:
    client = Client(url)
    ids = [client.start(pg_app.call.options(run_id=f"call-{i}"), target).id for i in range(RUNS)]
    procs.extend(_workers(url, tmp, env))
    deadline = time.time() + 120
    while time.time() < deadline:
        if all(client.get_run(i).status in DONE for i in ids):
            return client, ids
        time.sleep(0.25)
    logs = "\n".join((tmp / f"worker{i}.log").read_text()[-2000:] for i in range(3))
    raise AssertionError(f"runs did not finish in time; worker logs:\n{logs}")


def _failures(client: Client, ids: list[str]) -> Counter[str]:
    kinds: Counter[str] = Counter()
    for run_id in ids:
        run = client.get_run(run_id)
        if run.status is RunStatus.FAILED:
            kinds[str((run.error or {}).get("cause_type"))] += 1
    return kinds


def _pids(client: Client, ids: list[str]) -> set[int]:
    pids = set()
    for run_id in ids:
        for e in client.handle(run_id).events():
            if e.kind is EventKind.STEP_COMPLETED and e.data.get("name") == "whoami":
                pids.add(int(e.data["result"]))
    return pids


@pytest.mark.slow
def test_rate_limit_is_shared_by_three_workers(
    pg_url: str, tmp_path: Path, stop_later: list[subprocess.Popen[bytes]]
) -> None:
    with ScriptedServer() as server:
        client, ids = _run_all(
            pg_url, server.url("/limited"), tmp_path, {"ITEST_RATE": "10"}, stop_later
        )
        assert len(server.requests) == 10  # ten tokens for the whole fleet, not per worker
        statuses = Counter(client.get_run(i).status for i in ids)
        assert statuses[RunStatus.COMPLETED] == 10
        assert _failures(client, ids) == {"RateLimited": 20}
        assert len(_pids(client, ids)) >= 2
        assert len({r.headers["x-worker"] for r in server.requests}) >= 1
        client.close()


@pytest.mark.slow
def test_breaker_is_shared_by_three_workers(
    pg_url: str, tmp_path: Path, stop_later: list[subprocess.Popen[bytes]]
) -> None:
    with ScriptedServer() as server:
        server.default = Answer(503, b"down")
        client, ids = _run_all(
            pg_url, server.url("/down"), tmp_path, {"ITEST_THRESHOLD": "3"}, stop_later
        )
        # Three failures open the breaker for every worker; requests already admitted when it
        # opened (at most one per other executing slot) may still reach the server.
        assert 3 <= len(server.requests) <= 3 + 5
        failures = _failures(client, ids)
        assert failures["CircuitOpen"] >= RUNS - 8
        assert failures["CircuitOpen"] + failures["HttpStatusError"] == RUNS
        assert len(_pids(client, ids)) >= 2
        shared = PostgresHostState(pg_url)
        (host,) = shared.hosts()
        shared.close()
        assert host.breaker.state == "open"
        client.close()


def test_postgres_state_round_trip(pg_url: str) -> None:
    """The row-locked backend in process: admit, record, reopen, list."""
    from spokehub.integrations import BreakerPolicy, RateLimit

    with Client(pg_url) as client:
        client.list_runs()  # applies the migrations
    state = PostgresHostState(pg_url)
    policy = BreakerPolicy(failure_threshold=1, failure_rate=None, open_for=10)
    limit = RateLimit(requests=1, period=100)
    try:
        assert state.admit("h:80", 1000.0, policy, limit).allowed
        refused = state.admit("h:80", 1000.0, policy, limit)
        assert (refused.allowed, refused.refused_by) == (False, "rate_limited")
        assert state.record("h:80", False, 1000.0, policy) == "open"
        gate = state.admit("h:80", 1005.0, policy, None)
        assert (gate.refused_by, gate.retry_after) == ("circuit_open", 5.0)
        assert state.admit("h:80", 1010.0, policy, None).transition == "half_open"
        assert state.record("h:80", True, 1010.0, policy) == "closed"
        (status,) = state.hosts()
        assert status.breaker.state == "closed"
        assert status.tokens == pytest.approx(0.0, abs=0.2)
    finally:
        state.close()


def test_the_default_connector_follows_the_workers_database(pg_url: str, tmp_path: Path) -> None:
    from spokehub.integrations import HttpConnector, InProcessHostState

    auto = HttpConnector()
    auto.use_database(pg_url)
    assert isinstance(auto.state, PostgresHostState)
    auto.close()
    auto.use_database(f"sqlite:///{tmp_path}/x.db")
    assert isinstance(auto.state, InProcessHostState)
    # Moving to another database closes the connection of the state it replaces (a server
    # and a worker in one process must not leave it open for the garbage collector).
    auto.use_database(pg_url)
    shared = auto.state
    assert isinstance(shared, PostgresHostState)
    opened = shared._connection()  # what its first admit/record/hosts call opens
    assert not opened.closed
    auto.use_database(f"sqlite:///{tmp_path}/x.db")
    assert opened.closed
    pinned = HttpConnector(state=InProcessHostState())
    pinned.use_database(pg_url)  # a state given explicitly is kept
    assert isinstance(pinned.state, InProcessHostState)
