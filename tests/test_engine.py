"""The pure engine: no database, no clock, no fixtures."""

from __future__ import annotations

import asyncio
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel

from spokehub.engine.events import CURRENT_VERSION, CallKind, Event, EventKind, upgrade
from spokehub.engine.history import History, Replay, fork_events
from spokehub.engine.loop import WorkflowLoop
from spokehub.engine.retry import RetryPolicy
from spokehub.engine.serde import Codec, canonical, dumps, to_json
from spokehub.errors import NonDeterminismError, SerializationError, WorkflowSandboxError


# -- retry -----------------------------------------------------------------------------------
def test_delays_grow_and_cap() -> None:
    p = RetryPolicy(initial_delay=1, multiplier=3, max_delay=20, jitter=0)
    assert [p.delay(a, seed="k") for a in (1, 2, 3, 4)] == [1, 3, 9, 20]


@given(attempt=st.integers(1, 30), seed=st.text(max_size=20), jitter=st.floats(0, 1))
def test_jitter_is_bounded_and_deterministic(attempt: int, seed: str, jitter: float) -> None:
    p = RetryPolicy(initial_delay=2, multiplier=2, max_delay=100, jitter=jitter)
    base = min(100, 2 * 2 ** (attempt - 1))
    d = p.delay(attempt, seed=seed)
    assert d == p.delay(attempt, seed=seed)  # replay computes the same wait
    assert base * (1 - jitter) - 1e-9 <= d <= base * (1 + jitter) + 1e-9


def test_retry_decisions() -> None:
    p = RetryPolicy(max_attempts=3, non_retryable=(KeyError,))
    assert p.retries(ValueError(), 1)
    assert not p.retries(ValueError(), 3)
    assert not p.retries(KeyError(), 1)
    for bad in ({"max_attempts": 0}, {"multiplier": 0.5}, {"jitter": 2}, {"initial_delay": -1}):
        with pytest.raises(ValueError, match=r"must|fraction"):
            RetryPolicy(**bad)  # type: ignore[arg-type]


# -- serde -----------------------------------------------------------------------------------
class Item(BaseModel):
    sku: str
    qty: int = 1


def take(item: Item, count: int, note: str = "") -> Item:
    return item


def test_codec_binds_validates_and_rebuilds_models() -> None:
    codec = Codec(take, "step 'take'")
    data = codec.bind((Item(sku="a"), 2), {})
    assert data == {"item": {"sku": "a", "qty": 1}, "count": 2}
    args, kwargs = codec.call_args(data)
    assert args == []
    assert kwargs == {"item": Item(sku="a"), "count": 2}
    assert codec.decode_result({"sku": "b", "qty": 3}) == Item(sku="b", qty=3)
    with pytest.raises(SerializationError, match="unknown argument"):
        codec.validate_input({"item": {"sku": "a"}, "count": 1, "colour": "red"})
    with pytest.raises(SerializationError, match="missing argument 'count'"):
        codec.validate_input({"item": {"sku": "a"}})
    with pytest.raises(SerializationError, match=r"argument 'count'.*integer"):
        codec.validate_input({"item": {"sku": "a"}, "count": "many"})
    with pytest.raises(SerializationError, match="unexpected keyword"):
        codec.bind((Item(sku="a"), 1), {"nope": 1})


@pytest.mark.parametrize("bad", [{1, 2}, object(), math.nan, b"bytes", {"k": math.inf}])
def test_non_json_values_are_refused_with_the_fix(bad: object) -> None:
    with pytest.raises(SerializationError, match="JSON"):
        dumps(bad, what="argument 'x'")


def test_json_forms() -> None:
    assert to_json((1, "a", None)) == [1, "a", None]
    assert to_json({"m": Item(sku="s")}) == {"m": {"sku": "s", "qty": 1}}
    assert canonical({"b": 1, "a": [2]}) == '{"a":[2],"b":1}'


# -- events and history ----------------------------------------------------------------------
def ev(position: int, kind: EventKind, seq: int | None = None, **data: object) -> Event:
    return Event(position, kind, 0.0, seq, dict(data))


HISTORY = [
    ev(0, EventKind.RUN_STARTED),
    ev(1, EventKind.STEP_STARTED, 1, name="a", attempt=1),
    ev(2, EventKind.STEP_STARTED, 2, name="b", attempt=1),
    ev(3, EventKind.STEP_COMPLETED, 2, name="b", result=2),
    ev(4, EventKind.STEP_COMPLETED, 1, name="a", result=1),
    ev(5, EventKind.TIMER_SET, 3, name="sleep", due=10.0),
    ev(6, EventKind.TIMER_FIRED, 3, name="sleep"),
    ev(7, EventKind.SIGNAL_WAITING, 4, name="go"),
]


def test_history_indexes_calls_and_resolution_order() -> None:
    h = History(HISTORY)
    assert [e.seq for e in h.resolutions] == [2, 1, 3]  # the order the live run saw them
    assert h.calls[4].resolution is None
    assert h.calls[1].attempts_made == 1
    assert h.next_position == 8


def test_replay_reports_divergence_with_expected_and_found() -> None:
    replay = Replay(History(HISTORY), "run 'r' of workflow 'w'")
    assert replay.check(1, CallKind.STEP, "a") is not None
    assert replay.check(9, CallKind.STEP, "new") is None
    with pytest.raises(NonDeterminismError, match=r"call #2.*step 'b'.*step 'c'"):
        replay.check(2, CallKind.STEP, "c")
    with pytest.raises(NonDeterminismError, match=r"timer 'sleep'.*signal 'go'"):
        replay.check(3, CallKind.SIGNAL, "go")
    err = replay.stuck({1})
    assert "call #2" in str(err)


def test_newer_payload_versions_are_refused() -> None:
    assert upgrade(EventKind.STEP_COMPLETED, 1, {"x": 1}) == (1, {"x": 1})
    with pytest.raises(ValueError, match="upgrade spokehub"):
        upgrade(EventKind.STEP_COMPLETED, CURRENT_VERSION[EventKind.STEP_COMPLETED] + 1, {})


def test_fork_keeps_calls_before_the_step_and_renumbers() -> None:
    done = [*HISTORY, ev(8, EventKind.RUN_FINISHED, status="completed")]
    forked = fork_events(done, 3, "src", 99.0)
    assert [e.position for e in forked] == list(range(len(forked)))
    assert forked[0].data == {"forked_from": "src", "from_step": 3}
    assert {e.seq for e in forked[1:]} == {1, 2}
    assert all(e.kind is not EventKind.RUN_FINISHED for e in forked)


# -- the workflow loop -----------------------------------------------------------------------
def test_loop_runs_tasks_to_quiescence_and_refuses_real_timers() -> None:
    loop = WorkflowLoop()  # type: ignore[abstract]
    gate = loop.create_future()
    seen: list[str] = []

    async def branch(name: str) -> str:
        seen.append(f"start {name}")
        await gate
        seen.append(f"end {name}")
        return name

    async def main() -> list[str]:
        return list(await asyncio.gather(branch("a"), branch("b")))

    task = loop.create_task(main())
    loop.run_until_quiescent()
    assert seen == ["start a", "start b"]
    assert not task.done()
    gate.set_result(None)
    loop.run_until_quiescent()
    assert task.result() == ["a", "b"]
    with pytest.raises(WorkflowSandboxError, match=r"spokehub\.sleep"):
        loop.call_later(1, lambda: None)
    loop.close()
