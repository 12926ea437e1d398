"""The contract every Store backend passes. A backend's test module subclasses StoreContract
and provides a ``store`` fixture (a migrated, empty store)."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Coroutine
from typing import Any, TypeVar

import pytest

from spokehub.engine.events import Event, EventKind
from spokehub.errors import ApprovalClosed, InvalidRunState, LeaseLost, RunIdConflict, RunNotFound
from spokehub.store.base import (
    ApprovalVote,
    Finish,
    Flush,
    NewRun,
    QueueLimits,
    Store,
    Unload,
    VoteResult,
    WorkerInfo,
)
from spokehub.types import RunStatus

T = TypeVar("T")
NOW = 1_000.0


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def new_run(run_id: str = "r1", **kw: Any) -> NewRun:
    fields: dict[str, Any] = {
        "id": run_id,
        "workflow": "wf",
        "version": "v1",
        "queue": "default",
        "input": {"x": 1},
        "input_hash": "h1",
    }
    fields.update(kw)
    return NewRun(**fields)


def claim(store: Store, owner: str = "w1", now: float = NOW, **kw: Any) -> list[Any]:
    args: dict[str, Any] = {
        "owner": owner,
        "queues": ["default"],
        "workflows": ["wf"],
        "limit": 10,
        "now": now,
        "lease_seconds": 30,
    }
    args.update(kw)
    return run(store.claim(**args))


def flush(store: Store, run_id: str, owner: str, epoch: int, **kw: Any) -> Any:
    return run(
        store.flush(
            Flush(run_id=run_id, owner=owner, epoch=epoch, now=NOW, lease_until=NOW + 30, **kw)
        )
    )


class StoreContract:
    def test_start_is_idempotent_and_conflicts_on_other_input(self, store: Store) -> None:
        first = run(store.start(new_run(), NOW))
        assert first.created
        assert first.run.status is RunStatus.PENDING
        again = run(store.start(new_run(), NOW + 1))
        assert not again.created
        assert again.run.created_at == NOW
        with pytest.raises(RunIdConflict, match="input"):
            run(store.start(new_run(input_hash="other"), NOW))
        with pytest.raises(RunIdConflict, match="workflow"):
            run(store.start(new_run(workflow="other"), NOW))
        events = run(store.events("r1"))
        assert [e.kind for e in events] == [EventKind.RUN_STARTED]

    def test_start_can_claim_for_the_caller(self, store: Store) -> None:
        started = run(store.start(new_run(claim_by="me"), NOW))
        assert started.epoch == 1
        assert started.run.status is RunStatus.RUNNING
        assert started.run.lease_owner == "me"
        assert claim(store, "other") == []

    def test_claim_takes_pending_due_and_expired_runs_only(self, store: Store) -> None:
        for rid in ("a", "b", "c"):
            run(store.start(new_run(rid, input_hash=rid), NOW))
        run(store.start(new_run("q", queue="other"), NOW))
        run(store.start(new_run("u", workflow="unknown"), NOW))
        claimed = claim(store, "w1")
        assert sorted(c.run.id for c in claimed) == ["a", "b", "c"]
        assert all(c.epoch == 1 and c.run.status is RunStatus.RUNNING for c in claimed)
        assert claim(store, "w2") == []
        # lease ran out: the runs become suspects (epoch 2), which a plain claim leaves to a
        # suspect claim: taken over with a higher epoch and a recovery count
        assert claim(store, "w2", now=NOW + 31) == []
        taken = claim(store, "w2", now=NOW + 31, isolation=2)
        assert sorted(c.run.id for c in taken) == ["a", "b", "c"]
        assert all(c.epoch == 3 and c.run.recoveries == 1 for c in taken)

    def test_claim_takes_runs_of_dead_owners_at_once(self, store: Store) -> None:
        run(store.start(new_run(), NOW))
        claim(store, "dead")
        assert claim(store, "w2") == []
        assert run(store.running_owners()) == ["dead"]
        assert claim(store, "w2", dead_owners=["dead"]) == []  # now a suspect, due at once
        assert run(store.running_owners()) == []
        assert [c.run.id for c in claim(store, "w2", isolation=3)] == ["r1"]

    def test_claim_respects_priority_and_limit_and_root(self, store: Store) -> None:
        run(store.start(new_run("low", input_hash="1"), NOW))
        run(store.start(new_run("high", input_hash="2", priority=5), NOW + 1))
        run(store.start(new_run("other-root", input_hash="3"), NOW))
        assert [c.run.id for c in claim(store, limit=1, root_id="high")] == ["high"]
        assert [c.run.id for c in claim(store, limit=1)] == ["low"]

    def test_flush_is_fenced_by_lease_epoch(self, store: Store) -> None:
        run(store.start(new_run(), NOW))
        (c,) = claim(store, "w1")
        ev = Event(1, EventKind.TIMER_SET, NOW, 1, {"name": "sleep", "due": NOW + 5})
        result = flush(store, "r1", "w1", c.epoch, events=[ev])
        assert result.cancel_requested is False
        (c2,) = claim(store, "w2", now=NOW + 100, isolation=3)
        with pytest.raises(LeaseLost):
            flush(store, "r1", "w1", c.epoch, events=[Event(2, EventKind.TIMER_FIRED, NOW, 1)])
        assert [e.kind for e in run(store.events("r1"))][-1] is EventKind.TIMER_SET
        flush(store, "r1", "w2", c2.epoch, events=[Event(2, EventKind.TIMER_FIRED, NOW, 1)])

    def test_unload_sets_wake_time_unless_woken_meanwhile(self, store: Store) -> None:
        run(store.start(new_run("a", input_hash="a"), NOW))
        run(store.start(new_run("b", input_hash="b"), NOW))
        by_id = {c.run.id: c for c in claim(store)}
        run(store.send_signal("b", "go", {"n": 1}, NOW))  # arrives while b is loaded
        for rid, c in by_id.items():
            flush(
                store,
                rid,
                "w1",
                c.epoch,
                unload=Unload(wake_at=NOW + 60, waiting_on={}, wakeups_seen=c.run.wakeups),
            )
        a, b = run(store.get_run("a")), run(store.get_run("b"))
        assert a.status is RunStatus.WAITING
        assert a.wake_at == NOW + 60
        assert b.wake_at == NOW  # the signal it has not seen yet wakes it at once
        assert [c.run.id for c in claim(store, now=NOW + 1)] == ["b"]
        assert run(store.next_wake(queues=["default"], workflows=["wf"])) == NOW + 60

    def test_inbox_items_are_consumed_once(self, store: Store) -> None:
        run(store.start(new_run(), NOW))
        item = run(store.send_signal("r1", "go", {"n": 1}, NOW))
        (c,) = claim(store)
        inbox = run(store.inbox("r1"))
        assert [(i.id, i.name, i.payload) for i in inbox] == [(item, "go", {"n": 1})]
        flush(store, "r1", "w1", c.epoch, consumed=[item])
        assert run(store.inbox("r1")) == []
        with pytest.raises(LeaseLost):
            flush(store, "r1", "w1", c.epoch, consumed=[item])

    def test_finish_wakes_the_parent_and_stores_result(self, store: Store) -> None:
        run(store.start(new_run("parent", claim_by="w1"), NOW))
        child = new_run("parent.1", parent_id="parent", root_id="parent", input_hash="c")
        flush(
            store,
            "parent",
            "w1",
            1,
            children=[child],
            unload=Unload(wake_at=None, waiting_on={"child": []}, wakeups_seen=0),
        )
        assert run(store.get_run("parent")).wake_at is None
        (c,) = claim(store)
        assert c.run.id == "parent.1"
        assert c.run.root_id == "parent"
        big = {"blob": "x" * 100_000}
        flush(store, "parent.1", "w1", c.epoch, finish=Finish(RunStatus.COMPLETED, result=big))
        done = run(store.get_run("parent.1"))
        assert done.status is RunStatus.COMPLETED
        assert done.result == big
        assert done.finished_at == NOW
        assert done.lease_owner is None
        assert run(store.get_run("parent")).wake_at == NOW

    def test_cancel_pending_ends_it_and_running_asks_it(self, store: Store) -> None:
        run(store.start(new_run("p", input_hash="p"), NOW))
        cancelled = run(store.request_cancel("p", NOW))
        assert cancelled.status is RunStatus.CANCELLED
        with pytest.raises(InvalidRunState):
            run(store.request_cancel("p", NOW))
        run(store.start(new_run("r", input_hash="r", claim_by="w1"), NOW))
        asked = run(store.request_cancel("r", NOW))
        assert asked.status is RunStatus.RUNNING
        assert asked.cancel_requested
        assert flush(store, "r", "w1", 1).cancel_requested is True
        with pytest.raises(RunNotFound):
            run(store.request_cancel("missing", NOW))

    def test_approval_decisions_need_a_pending_request(self, store: Store) -> None:
        def vote(name: str | None, approved: bool = True, by: str = "ann") -> VoteResult:
            return run(
                store.decide_approval("r1", ApprovalVote(name=name, by=by, approved=approved), NOW)
            )

        run(store.start(new_run(claim_by="w1"), NOW))
        with pytest.raises(InvalidRunState, match="not waiting"):
            vote(None)
        req = [
            Event(1, EventKind.APPROVAL_REQUESTED, NOW, 1, {"name": "a"}, v=1),
            Event(2, EventKind.APPROVAL_REQUESTED, NOW, 2, {"name": "b"}, v=1),
        ]
        flush(store, "r1", "w1", 1, events=req)
        with pytest.raises(InvalidRunState, match="several"):
            vote(None)
        assert vote("a").name == "a"
        assert vote(None, approved=False).outcome == "rejected"
        with pytest.raises(ApprovalClosed, match="closed"):
            vote("a", by="bob")

    def test_renew_reports_lost_leases(self, store: Store) -> None:
        run(store.start(new_run(claim_by="w1"), NOW))
        assert run(store.renew("w1", {"r1": 1}, NOW + 60)) == set()
        assert run(store.renew("w1", {"r1": 7}, NOW + 60)) == {"r1"}
        assert run(store.get_run("r1")).lease_expires == NOW + 60

    def test_list_and_get(self, store: Store) -> None:
        run(store.start(new_run("a", input_hash="a"), NOW))
        run(store.start(new_run("b", input_hash="b", workflow="other"), NOW + 1))
        assert [r.id for r in run(store.list_runs())] == ["b", "a"]
        assert [r.id for r in run(store.list_runs(workflow="wf"))] == ["a"]
        assert [r.id for r in run(store.list_runs(status=RunStatus.COMPLETED))] == []
        assert {r.id for r in run(store.get_runs(["a", "b", "zz"]))} == {"a", "b"}
        with pytest.raises(RunNotFound):
            run(store.get_run("zz"))
        with pytest.raises(RunNotFound):
            run(store.events("zz"))

    def test_prune_deletes_old_finished_runs_only(self, store: Store) -> None:
        big = {"x": "y" * 50_000}
        for rid, h in (("old", "1"), ("new", "2"), ("live", "3")):
            run(store.start(new_run(rid, input_hash=h, input=big), NOW))
        claimed = {c.run.id: c for c in claim(store)}
        flush(store, "old", "w1", claimed["old"].epoch, finish=Finish(RunStatus.COMPLETED))
        run(
            store.flush(
                Flush(
                    run_id="new",
                    owner="w1",
                    epoch=claimed["new"].epoch,
                    now=NOW + 500,
                    lease_until=NOW + 530,
                    finish=Finish(RunStatus.FAILED, error={"type": "X"}),
                )
            )
        )
        stats = run(store.prune(finished_before=NOW + 100))
        assert (stats.runs, stats.events) == (1, 1)
        assert {r.id for r in run(store.list_runs())} == {"new", "live"}
        assert run(store.get_run("live")).input == big  # shared blob kept for the others

    def test_list_runs_filters(self, store: Store) -> None:
        for i, run_id in enumerate(["Deploy-1", "deploy_2", "build-3", "x%y"]):
            run(store.start(new_run(run_id), NOW + i))
        ids = lambda **kw: [r.id for r in run(store.list_runs(**kw))]  # noqa: E731
        assert ids() == ["x%y", "build-3", "deploy_2", "Deploy-1"]
        assert ids(search="DEPLOY") == ["deploy_2", "Deploy-1"]
        assert ids(search="_") == ["deploy_2"]  # LIKE wildcards are matched literally
        assert ids(search="%") == ["x%y"]
        assert ids(created_after=NOW + 1, created_before=NOW + 3) == ["build-3", "deploy_2"]
        assert ids(limit=1) == ["x%y"]

    def test_workers_report_and_list(self, store: Store) -> None:
        w = WorkerInfo(
            owner="h:1:ab",
            name="h",
            host="h",
            pid=1,
            queues=("default", "q2"),
            concurrency=8,
            active=0,
            state="running",
            started_at=NOW,
            heartbeat_at=NOW,
        )
        run(store.report_worker(w))
        run(store.report_worker(dataclasses.replace(w, active=3, heartbeat_at=NOW + 5)))
        (listed,) = run(store.list_workers())
        assert (listed.active, listed.heartbeat_at, listed.queues) == (
            3,
            NOW + 5,
            ("default", "q2"),
        )
        assert run(store.list_workers(seen_since=NOW + 6)) == []

    def test_queue_stats_count_unfinished_runs(self, store: Store) -> None:
        run(store.start(new_run("a"), NOW))
        run(store.start(new_run("b", queue="q2"), NOW + 1))
        run(store.start(new_run("c", queue="q2"), NOW + 2))
        claim(store, queues=["q2"], limit=1)
        stats = {s.queue: s for s in run(store.queue_stats())}
        assert stats["default"].counts == {"pending": 1}
        assert stats["q2"].counts == {"pending": 1, "running": 1}
        assert (stats["q2"].depth, stats["q2"].oldest_pending_at) == (1, NOW + 2)

    def test_transact_commits_or_rolls_back(self, store: Store) -> None:
        def write(tx: Any) -> int:
            tx.execute("UPDATE runs SET priority = ? WHERE id = ?", (7, "a"))
            return int(tx.execute("SELECT priority FROM runs WHERE id = ?", ("a",)).fetchone()[0])

        def fail(tx: Any) -> None:
            tx.execute("UPDATE runs SET priority = ? WHERE id = ?", (9, "a"))
            raise ValueError("boom")

        run(store.start(new_run("a"), NOW))
        assert run(store.transact(write)) == 7
        with pytest.raises(ValueError, match="boom"):
            run(store.transact(fail))
        assert run(store.get_run("a")).priority == 7

    def test_migrate_is_idempotent(self, store: Store) -> None:
        version = run(store.schema_version())
        assert version >= 1
        assert run(store.migrate()) == []
        assert run(store.schema_version()) == version


class QueueLimitsContract:
    """Claims under queue limits, and dead-lettering; every backend passes these too."""

    def test_global_concurrency_counts_running_runs_across_owners(self, store: Store) -> None:
        for i in range(5):
            run(store.start(new_run(f"r{i}"), NOW + i))
        lim = {"default": QueueLimits(concurrency=2)}
        assert len(claim(store, "w1", limits=lim)) == 2
        assert claim(store, "w2", limits=lim) == []  # the queue is full, whoever asks
        assert len(claim(store, "w3")) == 3  # a claimer that knows no limit takes the rest

    def test_per_worker_slots(self, store: Store) -> None:
        for i in range(4):
            run(store.start(new_run(f"r{i}"), NOW + i))
        assert [c.run.id for c in claim(store, "w1", slots={"default": 1})] == ["r0"]
        assert claim(store, "w1", slots={"default": 0}) == []

    def test_priority_then_age(self, store: Store) -> None:
        run(store.start(new_run("old"), NOW))
        run(store.start(new_run("urgent", priority=5), NOW + 1))
        run(store.start(new_run("new"), NOW + 2))
        assert [c.run.id for c in claim(store, limit=3)] == ["urgent", "old", "new"]

    def test_rate_limit_counts_first_starts_in_the_period(self, store: Store) -> None:
        for i in range(5):
            run(store.start(new_run(f"r{i}"), NOW + i))
        lim = {"default": QueueLimits(rate=(2, 60.0))}
        long = 10_000  # leases that outlast the test: no recovery muddles the counts
        assert len(claim(store, "w1", now=NOW + 10, limits=lim, lease_seconds=long)) == 2
        assert claim(store, "w1", now=NOW + 20, limits=lim, lease_seconds=long) == []
        later = claim(store, "w1", now=NOW + 71, limits=lim, lease_seconds=long)
        assert [c.run.id for c in later] == ["r2", "r3"]  # the period moved on

    def test_key_concurrency_holds_a_key_until_the_run_finishes(self, store: Store) -> None:
        run(store.start(new_run("a1", concurrency_key="tenant-a"), NOW))
        run(store.start(new_run("a2", concurrency_key="tenant-a"), NOW + 1))
        run(store.start(new_run("b1", concurrency_key="tenant-b"), NOW + 2))
        run(store.start(new_run("free"), NOW + 3))
        lim = {"default": QueueLimits(key_concurrency=1)}
        first = {c.run.id: c for c in claim(store, "w1", limits=lim, lease_seconds=10_000)}
        assert set(first) == {"a1", "b1", "free"}  # a2 waits behind a1, others pass it
        # a1 unloads to wait: it still holds tenant-a, so a2 still waits.
        flush(
            store,
            "a1",
            "w1",
            first["a1"].epoch,
            unload=Unload(wake_at=NOW + 500, waiting_on={}, wakeups_seen=0),
        )
        assert claim(store, "w1", limits=lim) == []
        a1 = [c for c in claim(store, "w1", now=NOW + 501, limits=lim)]
        assert [c.run.id for c in a1] == ["a1"]  # waking does not need a second key slot
        flush(store, "a1", "w1", a1[0].epoch, finish=Finish(RunStatus.COMPLETED))
        assert [c.run.id for c in claim(store, "w1", limits=lim)] == ["a2"]

    def test_a_recovered_run_is_a_suspect_and_only_isolated_deaths_are_charged(
        self, store: Store
    ) -> None:
        for run_id in ("poison", "healthy", "bystander"):
            run(store.start(new_run(run_id), NOW))
        assert len(claim(store, "w1")) == 3
        # w1 dies (its lease runs out): all three become suspects, charged nothing, and a
        # plain claim takes none of them.
        assert claim(store, "w2", now=NOW + 100, max_recoveries=2) == []
        for run_id in ("poison", "healthy", "bystander"):
            r = run(store.get_run(run_id))
            assert (r.status, r.recoveries, r.lease_owner) == (RunStatus.WAITING, 1, None)
        # A supervisor claims them to run each alone in a child process.
        kids = {c.run.id: c for c in claim(store, "sup", now=NOW + 100, isolation=2)}
        assert sorted(kids) == ["bystander", "healthy", "poison"]
        flush(store, "healthy", "sup", kids["healthy"].epoch, finish=Finish(RunStatus.COMPLETED))
        # The supervisor is killed from outside: its lease runs out, nothing is charged.
        assert claim(store, "w3", now=NOW + 200, max_recoveries=2) == []
        assert run(store.get_run("bystander")).status is RunStatus.WAITING
        # The healthy run's activation ended normally: it is no suspect any more.
        (again,) = claim(store, "w4", now=NOW + 200, isolation=2, limit=1)
        assert again.run.id in ("bystander", "poison")
        # The poison's child dies under a living supervisor: a strike; a stale epoch is not.
        (p,) = claim(store, "sup2", now=NOW + 200, isolation=2, limit=1)
        victim = p if p.run.id == "poison" else again
        owner = "sup2" if victim is p else "w4"
        assert not run(store.strike(owner, victim.run.id, victim.epoch - 1, NOW + 201, 2))
        assert run(store.strike(owner, victim.run.id, victim.epoch, NOW + 201, 2))
        assert run(store.get_run(victim.run.id)).status is RunStatus.WAITING
        # Alone in a worker's own process (isolation 3), its worker's death is its second
        # strike: dead-lettered.
        (alone,) = claim(store, "w5", now=NOW + 202, isolation=3, limit=1)
        assert alone.run.id == victim.run.id
        assert claim(store, "w6", now=NOW + 300, max_recoveries=2) == []
        dead = run(store.get_run(victim.run.id))
        assert dead.status is RunStatus.FAILED
        assert dead.error is not None
        assert dead.error["type"] == "DeadLettered"
        assert "alone 2 times" in dead.error["message"]
        assert dead.recoveries == 3  # recovered three times, charged twice
        last = run(store.events(victim.run.id))[-1]
        assert last.kind is EventKind.RUN_FINISHED
        assert last.data["status"] == "failed"
        assert dead.lease_owner is None
        assert run(store.get_run("healthy")).status is RunStatus.COMPLETED

    def test_a_suspect_given_back_is_still_a_suspect(self, store: Store) -> None:
        run(store.start(new_run("s"), NOW))
        (c,) = claim(store, "w1")
        assert claim(store, "w2", now=NOW + 100) == []  # w1 died: a suspect
        (c,) = claim(store, "sup", now=NOW + 100, isolation=2)
        run(store.release("sup", {"s": c.epoch}, NOW + 101))
        assert claim(store, "w3", now=NOW + 102) == []
        (again,) = claim(store, "sup", now=NOW + 102, isolation=3)
        # Unloading to wait ends the activation normally: no suspect any more.
        flush(
            store,
            "s",
            "sup",
            again.epoch,
            unload=Unload(wake_at=NOW + 103, waiting_on={}, wakeups_seen=0),
        )
        assert [x.run.id for x in claim(store, "w3", now=NOW + 104)] == ["s"]

    def test_release_gives_a_run_back_without_a_recovery(self, store: Store) -> None:
        run(store.start(new_run("r"), NOW))
        (c,) = claim(store, "w1")
        run(store.release("w1", {"r": c.epoch}, NOW + 1))
        released = run(store.get_run("r"))
        assert (released.status, released.lease_owner, released.wake_at) == (
            RunStatus.WAITING,
            None,
            NOW + 1,
        )
        (again,) = claim(store, "w2", now=NOW + 2)
        assert again.run.recoveries == 0
        with pytest.raises(LeaseLost):  # the first owner's epoch is gone
            flush(store, "r", "w1", c.epoch)
