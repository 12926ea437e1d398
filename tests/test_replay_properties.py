"""Property-based replay tests: random workflow programs against a pure evaluation.

A *program* is a JSON list of operations that one generic workflow (``program``) interprets:

* ``{"op": "step", "uid": u, "fails": k}``: a step that fails its first ``k`` attempts, then
  returns ``"v:u"``; with ``k`` at or above the retry limit it fails for good, the workflow
  catches ``StepFailed`` and the value is ``"failed:u"``;
* ``{"op": "sleep", "uid": u, "seconds": s}``: a durable timer, value ``"slept:u"``;
* ``{"op": "signal", "uid": u}``: waits for signal ``"sig-u"``, value: its payload;
* ``{"op": "gather", "uid": u, "branches": [[...], ...]}``: runs each branch (a list of
  operations, possibly gathers again) as its own task, value: the list of branch values.

Runs execute with a FakeClock through ``spokehub.testing.run_until_idle``, which unloads the
run at every wait, so each run is replayed from its ledger many times. Signals are sent either
before the run starts or when it waits for them.
"""

from __future__ import annotations

import asyncio
import itertools
import tempfile
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import spokehub as sh
from spokehub import Client, EventKind, RunStatus, Settings
from spokehub.testing import FakeClock, run_until_idle
from tests.crash_ledger import check_ledger

MAX_ATTEMPTS = 3
RETRY = sh.RetryPolicy(max_attempts=MAX_ATTEMPTS, initial_delay=2.0, jitter=0.0)

# (run_id, idempotency key, attempt, step name, uid) of every step execution in this process.
EXECUTIONS: list[tuple[str, str, int, str, str]] = []
# uid -> the step name the "changed code" calls instead (see the non-determinism tests).
CODE_CHANGE: dict[str, str] = {}


def _execute(name: str, uid: str, fails: int) -> str:
    ctx = sh.step_context()
    EXECUTIONS.append((ctx.run_id, ctx.idempotency_key, ctx.attempt, name, uid))
    if ctx.attempt <= fails:
        raise RuntimeError(f"{uid}: attempt {ctx.attempt} fails")
    return f"v:{uid}"


@sh.step(name="prop_step", retry=RETRY)
async def prop_step(uid: str, fails: int) -> str:
    return _execute("prop_step", uid, fails)


@sh.step(name="prop_step_v2", retry=RETRY)
async def prop_step_v2(uid: str, fails: int) -> str:
    return _execute("prop_step_v2", uid, fails)


async def _run_op(op: dict[str, Any]) -> Any:
    kind = op["op"]
    uid = op["uid"]
    if kind == "step":
        fn = prop_step_v2 if CODE_CHANGE.get(uid) == "prop_step_v2" else prop_step
        try:
            return await fn(uid, op["fails"])
        except sh.StepFailed:
            return f"failed:{uid}"
    if kind == "sleep":
        await sh.sleep(op["seconds"])
        return f"slept:{uid}"
    if kind == "signal":
        return await sh.wait_for_signal(f"sig-{uid}")
    # A gather runs each branch as a task: a branch that wakes up spawns new tasks before
    # its next call, which is the hardest case for replay to number calls identically.
    return list(await asyncio.gather(*(_run_ops(branch) for branch in op["branches"])))


async def _run_ops(ops: list[dict[str, Any]]) -> list[Any]:
    return [await _run_op(op) for op in ops]


@sh.workflow(name="prop_program")
async def program(ops: list[dict[str, Any]]) -> list[Any]:
    return await _run_ops(ops)


# -- the pure evaluation ---------------------------------------------------------------------
def evaluate(ops: list[dict[str, Any]]) -> list[Any]:
    out: list[Any] = []
    for op in ops:
        uid = op["uid"]
        if op["op"] == "step":
            out.append(f"v:{uid}" if op["fails"] < MAX_ATTEMPTS else f"failed:{uid}")
        elif op["op"] == "sleep":
            out.append(f"slept:{uid}")
        elif op["op"] == "signal":
            out.append(payload(uid))
        else:
            out.append([evaluate(branch) for branch in op["branches"]])
    return out


def payload(uid: str) -> dict[str, str]:
    return {"signal": uid}


def walk(ops: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for op in ops:
        yield op
        if op["op"] == "gather":
            for branch in op["branches"]:
                yield from walk(branch)


# -- programs ---------------------------------------------------------------------------------
_leaf = st.one_of(
    st.tuples(st.just("step"), st.sampled_from([0, 0, 0, 1, 2, MAX_ATTEMPTS])),
    st.tuples(st.just("sleep"), st.integers(1, 300)),
    st.tuples(st.just("signal"), st.just(0)),
)
_shape = st.recursive(
    _leaf,
    lambda inner: st.lists(st.lists(inner, min_size=1, max_size=3), min_size=2, max_size=3).map(
        lambda branches: ("gather", branches)
    ),
    max_leaves=14,
)


def _build(shape: Any, counter: Iterator[int]) -> dict[str, Any]:
    uid = str(next(counter))
    kind, arg = shape
    if kind == "step":
        return {"op": "step", "uid": uid, "fails": arg}
    if kind == "sleep":
        return {"op": "sleep", "uid": uid, "seconds": arg}
    if kind == "signal":
        return {"op": "signal", "uid": uid}
    return {
        "op": "gather",
        "uid": uid,
        "branches": [[_build(s, counter) for s in branch] for branch in arg],
    }


@st.composite
def programs(draw: st.DrawFn) -> tuple[list[dict[str, Any]], set[str]]:
    """A program, and the uids of the signals to send before the run starts."""
    shapes = draw(st.lists(_shape, min_size=1, max_size=5))
    counter = itertools.count(1)
    ops = [_build(s, counter) for s in shapes]
    signals = sorted(op["uid"] for op in walk(ops) if op["op"] == "signal")
    early = draw(st.sets(st.sampled_from(signals))) if signals else set()
    return ops, early


# -- running ----------------------------------------------------------------------------------
@contextmanager
def fresh_client() -> Iterator[Client]:
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'prop.db'}"
        client = Client(settings=Settings(database_url=url, poll_interval=0.05), clock=FakeClock())
        try:
            yield client
        finally:
            client.close()


def drive(client: Client, run_id: str, sent: set[str], *, rounds: int = 200) -> None:
    """Run to the end, sending each signal the run waits for (once) as it asks for it."""
    for _ in range(rounds):
        run_until_idle(client)
        run = client.get_run(run_id)
        if run.status.finished:
            return
        waits = (run.waiting_on or {}).get("signal", [])
        names = {w["name"] for w in waits}
        new = sorted(n.removeprefix("sig-") for n in names) if names else []
        assert new, f"run {run_id} is stuck: {run.status.value}, waiting on {run.waiting_on}"
        for uid in new:
            assert uid not in sent, f"signal sig-{uid} was sent but the run waits for it again"
            client.send_signal(run_id, f"sig-{uid}", payload(uid))
            sent.add(uid)
    raise AssertionError(f"run {run_id} did not finish in {rounds} rounds")


def check_executions(run_id: str, ops: list[dict[str, Any]], events: list[sh.Event]) -> None:
    """Each attempt a step needed executed exactly once; nothing else executed."""
    mine = [e for e in EXECUTIONS if e[0] == run_id]
    per_attempt = Counter((key, attempt) for _, key, attempt, _, _ in mine)
    assert all(count == 1 for count in per_attempt.values()), per_attempt
    steps = {op["uid"]: op for op in walk(ops) if op["op"] == "step"}
    attempts_by_uid = Counter(uid for *_, uid in mine)
    for uid, op in steps.items():
        assert attempts_by_uid[uid] == min(op["fails"] + 1, MAX_ATTEMPTS), (uid, op, mine)
    assert set(attempts_by_uid) == set(steps)
    # The idempotency key names the ledger call the execution belongs to.
    by_seq = {e.seq: e for e in events if e.kind is EventKind.STEP_STARTED}
    for _, key, _attempt, name, _uid in mine:
        seq = int(key.rsplit(":", 1)[1])
        assert key == f"{run_id}:{seq}"
        assert by_seq[seq].data["name"] == name
    started = Counter(e.seq for e in events if e.kind is EventKind.STEP_STARTED)
    executed = Counter(int(key.rsplit(":", 1)[1]) for _, key, *_ in mine)
    assert started == executed  # one step_started per execution, none lost, none extra


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(programs())
def test_random_programs_replay_to_the_pure_result(
    case: tuple[list[dict[str, Any]], set[str]],
) -> None:
    ops, early = case
    with fresh_client() as client:
        handle = client.start(program, ops)
        sent: set[str] = set()
        for uid in sorted(early):
            client.send_signal(handle.id, f"sig-{uid}", payload(uid))
            sent.add(uid)
        drive(client, handle.id, sent)
        run = client.get_run(handle.id)
        assert run.status is RunStatus.COMPLETED, run.error
        assert handle.result() == evaluate(ops)
        events = client.events(handle.id)
        check_ledger(events)
        completed = Counter(e.seq for e in events if e.kind is EventKind.STEP_COMPLETED)
        assert all(count == 1 for count in completed.values())
        check_executions(handle.id, ops, events)
        signals = [e for e in events if e.kind is EventKind.SIGNAL_RECEIVED]
        assert sorted(e.data["name"] for e in signals) == sorted(f"sig-{u}" for u in sent)


def test_branches_woken_together_number_their_next_calls_as_in_replay() -> None:
    """The shape hypothesis first shrank to (found before the driver fix).

    Both branches' first steps finish in one batch. The live run used to wake both branches
    before running either; the first spawned subtasks, so the second branch numbered its next
    call first. Replay wakes them one at a time and numbered them the other way round: the
    run failed with NonDeterminismError or, with equal step names, got results swapped. The
    order inside a batch depends on set iteration, so many runs make the old bug certain.
    """
    ops: list[dict[str, Any]] = [
        {
            "op": "gather",
            "uid": "1",
            "branches": [
                [{"op": "step", "uid": "2", "fails": 0}, {"op": "step", "uid": "3", "fails": 0}],
                [
                    {"op": "step", "uid": "4", "fails": 0},
                    {
                        "op": "gather",
                        "uid": "5",
                        "branches": [
                            [{"op": "step", "uid": "6", "fails": 0}],
                            [{"op": "step", "uid": "7", "fails": 0}],
                        ],
                    },
                ],
            ],
        },
        {"op": "sleep", "uid": "8", "seconds": 1},  # unload: the rest replays from the ledger
        {"op": "step", "uid": "9", "fails": 0},
    ]
    with fresh_client() as client:
        handles = [client.start(program, ops) for _ in range(24)]
        run_until_idle(client)
        for handle in handles:
            run = client.get_run(handle.id)
            assert run.status is RunStatus.COMPLETED, run.error
            assert run.result == evaluate(ops)
            check_ledger(client.events(handle.id))


# -- changed code: non-determinism ---------------------------------------------------------------
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    prefix=st.lists(st.sampled_from([0, 0, 1]), min_size=1, max_size=5),
    suffix=st.integers(1, 3),
    data=st.data(),
)
def test_changed_step_name_fails_the_run_with_non_determinism(
    prefix: list[int], suffix: int, data: st.DataObject
) -> None:
    """Steps, a signal wait, more steps; change one recorded step's name, then resume."""
    ops: list[dict[str, Any]] = [
        {"op": "step", "uid": f"p{i}", "fails": f} for i, f in enumerate(prefix)
    ]
    ops.append({"op": "signal", "uid": "gate"})
    ops += [{"op": "step", "uid": f"s{i}", "fails": 0} for i in range(suffix)]
    changed = data.draw(st.integers(0, len(prefix) - 1), label="changed position")
    with fresh_client() as client:
        handle = client.start(program, ops)
        run_until_idle(client)
        assert client.get_run(handle.id).status is RunStatus.WAITING
        before = len(EXECUTIONS)
        CODE_CHANGE[f"p{changed}"] = "prop_step_v2"
        try:
            client.send_signal(handle.id, "sig-gate", "open")
            run_until_idle(client)
        finally:
            CODE_CHANGE.clear()
        run = client.get_run(handle.id)
        assert run.status is RunStatus.FAILED
        assert run.error is not None
        assert run.error["type"] == "NonDeterminismError"
        message = run.error["message"]
        seq = changed + 1
        assert f"call #{seq}" in message
        assert "step 'prop_step' there" in message
        assert "calls step 'prop_step_v2'" in message
        assert EXECUTIONS[before:] == [], "something executed after the divergence"
        events = client.events(handle.id)
        check_ledger(events)
        assert events[-1].kind is EventKind.RUN_FINISHED
        assert events[-1].data["error"]["type"] == "NonDeterminismError"
        # Nothing was recorded for the calls after the divergence either.
        assert max(e.seq or 0 for e in events) == len(prefix) + 1


def test_changed_step_name_inside_a_gather_is_caught_where_it_diverges() -> None:
    ops: list[dict[str, Any]] = [
        {"op": "step", "uid": "a", "fails": 0},
        {
            "op": "gather",
            "uid": "g",
            "branches": [
                [
                    {"op": "step", "uid": "b1", "fails": 0},
                    {"op": "sleep", "uid": "z", "seconds": 5},
                ],
                [{"op": "step", "uid": "b2", "fails": 1}],
            ],
        },
        {"op": "signal", "uid": "gate"},
        {"op": "step", "uid": "after", "fails": 0},
    ]
    with fresh_client() as client:
        handle = client.start(program, ops)
        run_until_idle(client)
        assert client.get_run(handle.id).status is RunStatus.WAITING
        before = len(EXECUTIONS)
        CODE_CHANGE["b2"] = "prop_step_v2"
        try:
            client.send_signal(handle.id, "sig-gate", "open")
            run_until_idle(client)
        finally:
            CODE_CHANGE.clear()
        run = client.get_run(handle.id)
        assert run.status is RunStatus.FAILED
        assert run.error is not None
        assert run.error["type"] == "NonDeterminismError"
        assert "call #3" in run.error["message"]
        assert EXECUTIONS[before:] == []


# -- replaying a recorded cancellation ----------------------------------------------------------
@sh.workflow(name="prop_cancelled_fan_out")
async def cancelled_fan_out() -> list[Any]:
    return list(await asyncio.gather(prop_step("c1", 0), sh.wait_for_signal("never")))


def test_replayed_cancellation_ends_the_run_cancelled_like_the_live_run() -> None:
    """A worker died after committing ``cancel_requested`` while a step still ran.

    The ledger is what the live run had committed at that moment: the gather's step started,
    its signal wait, the cancellation, then the step's completion. Replay must deliver the
    cancellation into the code and end the run the way the live run would have: cancelled,
    with a ``Cancelled`` error, having replayed (not re-executed) the recorded step.
    """
    from spokehub.engine.serde import input_hash
    from spokehub.store.base import NewRun

    with fresh_client() as client:
        now = client.clock.now()
        ledger = [
            sh.Event(0, EventKind.RUN_STARTED, now, data={"workflow": "prop_cancelled_fan_out"}),
            sh.Event(1, EventKind.STEP_STARTED, now, 1, {"name": "prop_step", "attempt": 1}),
            sh.Event(2, EventKind.SIGNAL_WAITING, now, 2, {"name": "never", "deadline": None}),
            sh.Event(3, EventKind.CANCEL_REQUESTED, now),
            sh.Event(
                4,
                EventKind.STEP_COMPLETED,
                now,
                1,
                {"name": "prop_step", "attempt": 1, "result": "v:c1", "started_at": now},
            ),
        ]

        async def insert() -> None:
            await client.ensure_schema()
            await client.store.insert_run(
                NewRun(
                    id="cancelled-1",
                    workflow="prop_cancelled_fan_out",
                    version=cancelled_fan_out.version,
                    queue="default",
                    input={},
                    input_hash=input_hash({}),
                    events=ledger,
                    claim_by="dead-worker",  # the worker that committed this, then died
                    lease_seconds=0.0,
                ),
                now,
            )
            await client.store.request_cancel("cancelled-1", now)

        asyncio.run(insert())
        client.clock.advance(1.0)  # type: ignore[attr-defined]  # its lease runs out
        before = len(EXECUTIONS)
        run_until_idle(client)
        run = client.get_run("cancelled-1")
        assert run.status is RunStatus.CANCELLED
        assert run.error is not None
        assert run.error["type"] == "Cancelled", run.error
        assert EXECUTIONS[before:] == []
        events = client.events("cancelled-1")
        check_ledger(events)
        assert [e.kind for e in events[5:]] == [EventKind.RUN_FINISHED]


def test_cancelling_a_fork_before_any_worker_ran_it() -> None:
    """A fork is created with the source's ledger; cancelling it appends after that ledger."""
    ops: list[dict[str, Any]] = [
        {"op": "step", "uid": "f1", "fails": 0},
        {"op": "step", "uid": "f2", "fails": 0},
    ]
    with fresh_client() as client:
        source = client.start(program, ops)
        run_until_idle(client)
        fork = client.fork(source.id, from_step=2)
        before = len(EXECUTIONS)
        client.cancel(fork.id)
        assert fork.status() is RunStatus.CANCELLED
        events = client.events(fork.id)
        check_ledger(events)
        assert events[-1].kind is EventKind.RUN_FINISHED
        run_until_idle(client)
        assert EXECUTIONS[before:] == []


# -- the ledger checker is not vacuous -----------------------------------------------------------
def _ledger(*rows: tuple[EventKind, int | None, dict[str, Any]]) -> list[sh.Event]:
    return [sh.Event(i, kind, 100.0 + i, seq, data) for i, (kind, seq, data) in enumerate(rows)]


_START = (EventKind.RUN_STARTED, None, {})
_S1 = (EventKind.STEP_STARTED, 1, {"name": "s", "attempt": 1})
_C1 = (EventKind.STEP_COMPLETED, 1, {"name": "s", "attempt": 1, "result": 1})


@pytest.mark.parametrize(
    "events",
    [
        pytest.param(_ledger(_START, _S1, _C1, _C1), id="completed-twice"),
        pytest.param(_ledger(_S1, _C1), id="no-run-started"),
        pytest.param(
            [sh.Event(0, *_START[:1], 0.0), sh.Event(2, EventKind.STEP_STARTED, 1.0, 1, _S1[2])],
            id="position-gap",
        ),
        pytest.param(
            _ledger(_START, (EventKind.STEP_STARTED, 2, {"name": "s", "attempt": 1})),
            id="seq-gap",
        ),
        pytest.param(
            _ledger(_START, _S1, (EventKind.STEP_COMPLETED, 1, {"name": "t", "attempt": 1})),
            id="name-changes",
        ),
        pytest.param(
            _ledger(_START, _S1, (EventKind.STEP_COMPLETED, 1, {"name": "s", "attempt": 2})),
            id="completes-an-attempt-never-started",
        ),
        pytest.param(
            _ledger(
                _START,
                _S1,
                (EventKind.RETRY_SCHEDULED, 1, {"name": "s", "attempt": 1}),
                (EventKind.STEP_STARTED, 1, {"name": "s", "attempt": 3}),
            ),
            id="retry-skips-an-attempt",
        ),
        pytest.param(
            _ledger(
                _START,
                (EventKind.TIMER_SET, 1, {"name": "sleep", "due": 500.0}),
                (EventKind.TIMER_FIRED, 1, {"name": "sleep"}),
            ),
            id="timer-fires-early",
        ),
        pytest.param(
            _ledger(
                _START,
                (EventKind.SIGNAL_WAITING, 1, {"name": "a"}),
                (EventKind.SIGNAL_WAITING, 2, {"name": "a"}),
                (EventKind.SIGNAL_RECEIVED, 1, {"name": "a", "inbox_id": 7}),
                (EventKind.SIGNAL_RECEIVED, 2, {"name": "a", "inbox_id": 7}),
            ),
            id="inbox-item-delivered-twice",
        ),
        pytest.param(
            _ledger(_START, (EventKind.RUN_FINISHED, None, {}), _S1), id="events-after-finish"
        ),
    ],
)
def test_check_ledger_rejects_malformed_histories(events: list[sh.Event]) -> None:
    with pytest.raises(AssertionError):
        check_ledger(events)


def test_check_ledger_accepts_a_crash_cut_attempt() -> None:
    """Attempt 1 started (committed) but its worker died: attempt 2 runs next, no retry event."""
    check_ledger(
        _ledger(
            _START,
            _S1,
            (EventKind.STEP_STARTED, 1, {"name": "s", "attempt": 2}),
            (EventKind.STEP_COMPLETED, 1, {"name": "s", "attempt": 2, "result": 1}),
            (EventKind.RUN_FINISHED, None, {"status": "completed"}),
        )
    )
