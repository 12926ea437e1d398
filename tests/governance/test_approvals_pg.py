"""PostgreSQL: decisions from two processes' connections on one approval serialise on the run.

A third connection holds the run's row while two stores vote. Without the row lock both
votes would read the approval as open, and both would close it once the row is released.
"""

from __future__ import annotations

import threading
import time

import psycopg

from spokehub import Client, Settings
from spokehub.store.base import VoteResult
from spokehub.testing import FakeClock, run_until_idle
from tests.governance.approvals_app import gov_role


def test_two_connections_voting_at_once_make_one_transition(pg_url: str) -> None:
    clock = FakeClock()
    settings = Settings(database_url=pg_url, poll_interval=0.05)
    worker, a, b = (Client(settings=settings, clock=clock) for _ in range(3))
    try:
        handle = worker.start(gov_role, "x")
        run_until_idle(worker, advance_time=False)
        results: dict[str, VoteResult | Exception] = {}

        def vote(client: Client, who: str) -> None:
            try:
                results[who] = client.vote(handle.id, approved=True, by=who, role="approver")
            except Exception as exc:
                results[who] = exc

        with psycopg.connect(pg_url) as holder:
            holder.execute("SELECT 1 FROM runs WHERE id = %s FOR UPDATE", (handle.id,))
            voters = [
                threading.Thread(target=vote, args=(a, "ann")),
                threading.Thread(target=vote, args=(b, "bo")),
            ]
            for t in voters:
                t.start()
            _wait_for_blocked(pg_url, 2)  # both votes are in their transactions, on the row
            assert results == {}
            holder.rollback()
        for t in voters:
            t.join(timeout=10)
        outcomes = sorted(
            r.outcome if isinstance(r, VoteResult) else type(r).__name__ for r in results.values()
        )
        assert outcomes == ["ApprovalClosed", "approved"]
        run_until_idle(worker, advance_time=False)
        kinds = [e.kind.value for e in worker.events(handle.id)]
        assert kinds.count("approval_decided") == 1
    finally:
        for c in (worker, a, b):
            c.close()


def _wait_for_blocked(url: str, n: int) -> None:
    deadline = time.monotonic() + 10
    with psycopg.connect(url, autocommit=True) as probe:
        while True:
            row = probe.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                "AND datname = current_database()"
            ).fetchone()
            if row is not None and row[0] >= n:
                return
            assert time.monotonic() < deadline, "the votes never waited on the run's row"
            time.sleep(0.01)
