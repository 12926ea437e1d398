"""Behaviour of the durable runtime, through the public API, on real SQLite files."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime

import pytest
from pydantic import BaseModel

import spokehub as sh
from spokehub import Client, RetryPolicy, RunStatus, step, workflow
from spokehub.engine.events import EventKind
from spokehub.testing import FakeClock, run_until_idle

executed: Counter[str] = Counter()


@pytest.fixture(autouse=True)
def _fresh_counters() -> None:
    executed.clear()  # each test (and each backend) counts its own executions


FAST = RetryPolicy(max_attempts=3, initial_delay=10, multiplier=2, jitter=0)


def kinds(client: Client, run_id: str) -> list[str]:
    return [e.kind.value for e in client.events(run_id)]


# -- sequential steps, models, contexts ------------------------------------------------------
class Order(BaseModel):
    id: str
    cents: int


class Receipt(BaseModel):
    order_id: str
    key: str
    attempt: int


@step
async def rt_charge(order: Order) -> Receipt:
    executed[f"charge:{order.id}"] += 1
    ctx = sh.step_context()
    return Receipt(order_id=order.id, key=ctx.idempotency_key, attempt=ctx.attempt)


@workflow
async def rt_checkout(order: Order) -> Receipt:
    receipt = await rt_charge(order)
    assert isinstance(receipt, Receipt)
    await sh.sleep(30)
    return receipt


def test_models_round_trip_and_steps_run_once(client: Client) -> None:
    handle = client.start(rt_checkout, Order(id="o1", cents=500))
    run_until_idle(client)
    receipt = handle.result()
    assert isinstance(receipt, Receipt)
    assert receipt.key == f"{handle.id}:1"
    assert receipt.attempt == 1
    assert executed["charge:o1"] == 1  # replayed after the sleep, not executed again
    assert kinds(client, handle.id) == [
        "run_started",
        "step_started",
        "step_completed",
        "timer_set",
        "timer_fired",
        "run_finished",
    ]
    run = handle.get()
    assert run.version == rt_checkout.version
    assert run.input == {"order": {"id": "o1", "cents": 500}}


# -- fan-out ---------------------------------------------------------------------------------
@step
async def rt_square(x: int) -> int:
    executed[f"square:{x}"] += 1
    await asyncio.sleep(0.001 * (5 - x))  # finish out of call order
    return x * x


@workflow
async def rt_fanout(n: int) -> int:
    first = await asyncio.gather(*(rt_square(i) for i in range(n)))
    await sh.sleep(1)
    second = await asyncio.gather(*(rt_square(i + 10) for i in range(n)))
    return sum(first) + sum(second)


def test_gather_replays_in_recorded_order(client: Client) -> None:
    handle = client.start(rt_fanout, 5)
    run_until_idle(client)
    assert handle.result() == sum(i * i for i in range(5)) + sum((i + 10) ** 2 for i in range(5))
    assert all(executed[f"square:{i}"] == 1 for i in [*range(5), *range(10, 15)])


# -- retries ---------------------------------------------------------------------------------
class Flaky(Exception):
    pass


@step(retry=FAST)
async def rt_flaky(key: str, failures: int) -> str:
    executed[f"flaky:{key}"] += 1
    if executed[f"flaky:{key}"] <= failures:
        raise Flaky(f"try {executed[f'flaky:{key}']}")
    return f"ok after {executed[f'flaky:{key}']}"


@workflow
async def rt_retrying(key: str, failures: int) -> str:
    try:
        return await rt_flaky(key, failures)
    except sh.StepFailed as exc:
        return f"gave up: {exc.error_type} after {exc.attempts}"


def test_retry_backoff_is_durable_and_follows_policy(client: Client, clock: FakeClock) -> None:
    start = clock.now()
    handle = client.start(rt_retrying, "a", 2)
    run_until_idle(client)
    assert handle.result() == "ok after 3"
    events = client.events(handle.id)
    retries = [e for e in events if e.kind is EventKind.RETRY_SCHEDULED]
    assert [e.data["attempt"] for e in retries] == [1, 2]
    assert [round(e.data["retry_at"] - start) for e in retries] == [10, 30]  # 10 s, then 20 s
    assert [e.data["error"]["type"] for e in retries] == ["Flaky", "Flaky"]
    done = next(e for e in events if e.kind is EventKind.STEP_COMPLETED)
    assert done.data["attempt"] == 3


def test_retries_exhausted_raise_step_failed_in_workflow(client: Client) -> None:
    handle = client.start(rt_retrying, "b", 99)
    run_until_idle(client)
    assert handle.result() == "gave up: Flaky after 3"
    assert executed["flaky:b"] == 3


@step(retry=RetryPolicy(max_attempts=5, non_retryable=(ValueError,)))
async def rt_invalid() -> None:
    executed["invalid"] += 1
    raise ValueError("bad card")


@workflow
async def rt_non_retryable() -> None:
    await rt_invalid()


def test_non_retryable_error_fails_at_once(client: Client) -> None:
    handle = client.start(rt_non_retryable)
    run_until_idle(client)
    with pytest.raises(sh.RunFailed) as info:
        handle.result()
    assert info.value.error["type"] == "StepFailed"
    assert "bad card" in info.value.error["message"]
    assert "traceback" in info.value.error
    assert executed["invalid"] == 1


@step(timeout=0.05, retry=RetryPolicy(max_attempts=2, initial_delay=0))
async def rt_slow() -> None:
    await asyncio.sleep(5)


@workflow
async def rt_times_out() -> str:
    try:
        await rt_slow()
    except sh.StepFailed as exc:
        return exc.error_type
    return "no timeout"


def test_step_timeout_counts_as_a_failed_attempt(client: Client) -> None:
    handle = client.start(rt_times_out)
    run_until_idle(client)
    assert handle.result() == "StepTimeout"


# -- timers, signals, approvals --------------------------------------------------------------
@workflow
async def rt_alarm(when: float) -> str:
    await sh.sleep_until(datetime.fromtimestamp(when, UTC))
    return "rang"


def test_sleep_until_waits_for_the_clock(client: Client, clock: FakeClock) -> None:
    handle = client.start(rt_alarm, clock.now() + 3600)
    run_until_idle(client, advance_time=False)
    assert handle.status() is RunStatus.WAITING
    assert handle.get().wake_at == pytest.approx(clock.now() + 3600)
    run_until_idle(client)
    assert handle.result() == "rang"


@workflow
async def rt_inbox(count: int) -> list[object]:
    got = []
    for _ in range(count):
        got.append(await sh.wait_for_signal("item", timeout=600))
    return got


def test_signals_delivered_once_in_order_even_when_sent_early(client: Client) -> None:
    handle = client.start(rt_inbox, 3)
    client.send_signal(handle.id, "item", {"n": 1})  # before the run even started
    run_until_idle(client, advance_time=False)
    client.send_signal(handle.id, "item", {"n": 2})
    client.send_signal(handle.id, "other", "ignored")
    client.send_signal(handle.id, "item", {"n": 3})
    run_until_idle(client, advance_time=False)
    assert handle.result() == [{"n": 1}, {"n": 2}, {"n": 3}]
    received = [e for e in client.events(handle.id) if e.kind is EventKind.SIGNAL_RECEIVED]
    assert len({e.data["inbox_id"] for e in received}) == 3


def test_signal_timeout_raises_wait_timeout(client: Client) -> None:
    handle = client.start(rt_inbox, 1)
    run_until_idle(client)  # jumps the fake clock to the deadline
    with pytest.raises(sh.RunFailed) as info:
        handle.result()
    assert info.value.error["type"] == "WaitTimeout"


def test_signal_to_finished_or_unknown_run_is_refused(client: Client) -> None:
    with pytest.raises(sh.RunNotFound):
        client.send_signal("nope", "item")
    handle = client.start(rt_inbox, 0)
    run_until_idle(client)
    assert handle.result() == []
    with pytest.raises(sh.InvalidRunState, match="completed"):
        client.send_signal(handle.id, "item")


@workflow
async def rt_review(text: str) -> str:
    try:
        decision = await sh.approval("editor", subject={"text": text}, timeout=3600)
    except sh.ApprovalRejected as exc:
        return f"rejected: {exc.comment}"
    except sh.WaitTimeout:
        return "expired"
    return f"approved by {decision.by}: {decision.comment}"


def test_approval_approve_reject_expire(client: Client) -> None:
    approved = client.start(rt_review, "a")
    rejected = client.start(rt_review, "b")
    expired = client.start(rt_review, "c")
    run_until_idle(client, advance_time=False)
    with pytest.raises(sh.InvalidRunState, match="editor"):
        client.approve(approved.id, name="legal")
    assert client.approve(approved.id, comment="ship it", by="ada") == "editor"
    with pytest.raises(sh.InvalidRunState):  # already decided, waiting to be consumed
        client.approve(approved.id)
    client.reject(rejected.id, comment="too long")
    run_until_idle(client)
    assert approved.result() == "approved by ada: ship it"
    assert rejected.result() == "rejected: too long"
    assert expired.result() == "expired"
    requested = next(
        e for e in client.events(approved.id) if e.kind is EventKind.APPROVAL_REQUESTED
    )
    assert requested.data["subject"] == {"text": "a"}


# -- children --------------------------------------------------------------------------------
@workflow
async def rt_child(x: int) -> int:
    if x < 0:
        raise ValueError("negative")
    await sh.sleep(5)
    return x * 10


@workflow
async def rt_parent(xs: list[int]) -> object:
    try:
        return sum(await asyncio.gather(*(rt_child(x) for x in xs)))
    except sh.ChildRunFailed as exc:
        return f"child {exc.run_id} {exc.status}"


def test_child_runs_are_awaited(client: Client) -> None:
    handle = client.start(rt_parent, [1, 2, 3])
    run_until_idle(client)
    assert handle.result() == 60
    children = [r for r in client.list_runs(workflow="rt_child") if r.parent_id == handle.id]
    assert sorted(r.id for r in children) == [f"{handle.id}.{i}" for i in (1, 2, 3)]
    assert all(r.status is RunStatus.COMPLETED for r in children)


def test_child_failure_reaches_parent(client: Client) -> None:
    handle = client.start(rt_parent, [-1])
    run_until_idle(client)
    assert handle.result() == f"child {handle.id}.1 failed"


# -- sagas and cancellation ------------------------------------------------------------------
undo_log: list[str] = []


def rt_unbook(result: str, item: str) -> None:
    undo_log.append(f"undo {item} ({result})")


@step(compensate=rt_unbook)
def rt_book(item: str) -> str:
    if item == "boom":
        raise RuntimeError("no room")
    return f"booked {item}"


@step(retry=RetryPolicy(max_attempts=1))
def rt_book_fails(item: str) -> str:
    raise RuntimeError(f"cannot book {item}")


@workflow
def rt_trip(items: list[str], wait: bool) -> list[str]:
    booked = [rt_book(item) for item in items]
    if wait:
        sh.wait_for_signal_sync("go")
    rt_book_fails("car")
    return booked


def test_saga_compensates_in_reverse_order(client: Client) -> None:
    undo_log.clear()
    handle = client.start(rt_trip, ["flight", "hotel"], False)
    run_until_idle(client)
    with pytest.raises(sh.RunFailed):
        handle.result()
    assert undo_log == ["undo hotel (booked hotel)", "undo flight (booked flight)"]
    ran = [e for e in client.events(handle.id) if e.kind is EventKind.COMPENSATION_RAN]
    assert [e.seq for e in ran] == [2, 1]
    assert all(e.data["ok"] for e in ran)
    assert kinds(client, handle.id)[-1] == "run_finished"


def test_cancel_waiting_run_compensates_and_ends_cancelled(client: Client) -> None:
    undo_log.clear()
    handle = client.start(rt_trip, ["flight"], True)
    run_until_idle(client)
    assert handle.status() is RunStatus.WAITING
    handle.cancel()
    run_until_idle(client)
    assert handle.status() is RunStatus.CANCELLED
    with pytest.raises(sh.RunCancelledError):
        handle.result()
    assert undo_log == ["undo flight (booked flight)"]
    with pytest.raises(sh.InvalidRunState, match="cancelled"):
        handle.cancel()


def test_cancel_before_any_worker_ends_at_once(client: Client) -> None:
    handle = client.start(rt_trip, ["x"], False)
    handle.cancel()
    assert handle.status() is RunStatus.CANCELLED
    run_until_idle(client)
    assert kinds(client, handle.id) == ["run_started", "run_finished"]


# -- idempotent start, versioning, fork ------------------------------------------------------
@step
async def rt_stage(name: str) -> str:
    executed[f"stage:{name}"] += 1
    return name


STAGE_B = "b"


@workflow
async def rt_stages() -> list[str]:
    out = [await rt_stage("a")]
    await sh.sleep(10)
    out.append(await rt_stage(STAGE_B))
    out.append(await rt_stage("c"))
    return out


def test_same_run_id_gives_same_run_and_other_input_conflicts(client: Client) -> None:
    first = client.start(rt_inbox.options(run_id="fixed"), 1)
    again = client.start(rt_inbox.options(run_id="fixed"), 1)
    assert first.id == again.id == "fixed"
    assert len(client.list_runs(workflow="rt_inbox")) == 1
    with pytest.raises(sh.RunIdConflict, match="different input"):
        client.start(rt_inbox.options(run_id="fixed"), 2)
    with pytest.raises(sh.RunIdConflict, match="different workflow"):
        client.start(rt_stages.options(run_id="fixed"))


def test_changed_code_stops_with_non_determinism_error(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    handle = client.start(rt_stages)
    run_until_idle(client, advance_time=False)  # ran stage a, now sleeping
    monkeypatch.setattr(rt_stage, "name", "renamed_stage")  # a deploy renamed the step
    run_until_idle(client)
    assert handle.status() is RunStatus.FAILED
    error = handle.get().error
    assert error is not None
    assert error["type"] == "NonDeterminismError"
    assert "call #1" in error["message"]
    assert "'rt_stage'" in error["message"]
    assert "'renamed_stage'" in error["message"]
    assert executed["stage:b"] == 0  # nothing ran past the divergence


def test_fork_reexecutes_from_the_given_step(client: Client) -> None:
    global STAGE_B
    handle = client.start(rt_stages)
    run_until_idle(client)
    assert handle.result() == ["a", "b", "c"]
    before = executed.copy()
    STAGE_B = "b2"
    try:
        fork = client.fork(handle.id, from_step=3)
        run_until_idle(client)
        assert fork.result() == ["a", "b2", "c"]
    finally:
        STAGE_B = "b"
    assert executed["stage:a"] == before["stage:a"]  # call 1 replayed from the copied ledger
    assert executed["stage:b2"] == 1
    assert executed["stage:c"] == before["stage:c"] + 1
    with pytest.raises(sh.InvalidRunState):
        client.fork(handle.id, from_step=99)


# -- sync workflows, mixing, bad input -------------------------------------------------------
@step
def rt_sync_double(x: int) -> int:
    return 2 * x


@workflow
async def rt_mixed(x: int) -> int:
    return await sh.call(rt_sync_double, x)


@workflow
async def rt_mixed_wrong(x: int) -> int:
    return rt_sync_double(x)


@workflow
def rt_sync_flow(x: int) -> int:
    y = rt_sync_double(x)
    sh.sleep_sync(3)
    return rt_sync_double(y)


def test_sync_and_mixed_workflows(client: Client) -> None:
    a = client.start(rt_mixed, 4)
    b = client.start(rt_sync_flow, 4)
    c = client.start(rt_mixed_wrong, 4)
    run_until_idle(client)
    assert a.result() == 8
    assert b.result() == 16
    with pytest.raises(sh.RunFailed, match=r"spokehub\.call"):
        c.result()


@workflow
async def rt_real_sleep() -> None:
    await asyncio.sleep(1)


def test_asyncio_sleep_in_workflow_is_refused_clearly(client: Client) -> None:
    handle = client.start(rt_real_sleep)
    run_until_idle(client)
    with pytest.raises(sh.RunFailed, match=r"spokehub\.sleep"):
        handle.result()


def test_bad_inputs_are_clear_errors_at_the_call(client: Client) -> None:
    with pytest.raises(sh.SerializationError, match=r"argument 'order'.*datetime"):
        client.start(rt_checkout, datetime.now(UTC))  # type: ignore[arg-type]
    with pytest.raises(sh.SerializationError, match="missing"):
        client.start(rt_inbox)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="@workflow"):
        client.start(rt_stage, "x")  # type: ignore[arg-type]
    with pytest.raises(sh.SerializationError, match="order"):
        asyncio.run(client.start_input_async(rt_checkout, {"order": {"id": 1}}))
    with pytest.raises(sh.RegistrationError, match="decorates a function"):
        sh.workflow(42)  # type: ignore[call-overload]
    with pytest.raises(sh.RegistrationError, match="two workflows are named"):

        @workflow(name="rt_inbox")
        async def clash() -> None: ...

    assert client.list_runs() == []  # nothing half-stored


def test_workflow_and_step_called_outside_a_run_are_plain_functions() -> None:
    assert rt_sync_double(21) == 42
    assert asyncio.run(rt_stage("plain")) == "plain"
    with pytest.raises(sh.SpokehubError, match="inside a running workflow"):
        asyncio.run(sh.sleep(1))  # type: ignore[arg-type]


def test_result_timeout_and_unknown_handle(client: Client) -> None:
    handle = client.start(rt_inbox, 1)
    with pytest.raises(sh.ResultTimeout):
        handle.result(timeout=0.05)
    with pytest.raises(sh.RunNotFound):
        client.handle("missing").status()


@workflow
def rt_nap(seconds: float) -> str:
    sh.sleep_sync(seconds)
    return "rested"


def test_embedded_run_executes_in_process_with_the_real_clock(db_url: str) -> None:
    with Client(db_url) as real:
        assert real.run(rt_nap, 0.2) == "rested"
        assert real.run(rt_nap, 1.5) == "rested"  # longer than inline_wait: unloads, wakes


# -- fixes found by the examples ---------------------------------------------------------------
def rt_release(result: str, thing: str) -> None:  # other parameter names than the step's
    undo_log.append(f"released {thing} from {result}")


@step(compensate=rt_release)
async def rt_hold(item: str) -> str:
    return f"hold-{item}"


@step(name="rt_hold")  # the same step name in another place must not break the saga above
async def rt_hold_elsewhere(item: str) -> str:
    return item


@workflow
async def rt_hold_then_fail(item: str) -> None:
    await rt_hold(item)
    raise RuntimeError("later failure")


def test_compensation_gets_positional_arguments_and_the_right_step(client: Client) -> None:
    undo_log.clear()
    handle = client.start(rt_hold_then_fail, "seat")
    run_until_idle(client)
    assert handle.status() is RunStatus.FAILED
    assert undo_log == ["released seat from hold-seat"]


def test_compensation_signature_is_checked_at_import() -> None:
    def wrong_undo(result: str) -> None: ...

    with pytest.raises(sh.RegistrationError, match=r"undo\(result, a, b\)"):

        @step(compensate=wrong_undo)
        async def two(a: int, b: int) -> None: ...


@workflow
async def rt_parent_waits(n: int) -> object:
    return await rt_inbox(n)


def test_cancelling_a_parent_cancels_its_children(client: Client) -> None:
    handle = client.start(rt_parent_waits, 1)
    run_until_idle(client, advance_time=False)
    child = client.get_run(f"{handle.id}.1")
    assert child.status is RunStatus.WAITING
    handle.cancel()
    run_until_idle(client, advance_time=False)
    assert handle.status() is RunStatus.CANCELLED
    assert client.get_run(child.id).status is RunStatus.CANCELLED


def test_a_late_approval_is_refused_not_lost(client: Client, clock: FakeClock) -> None:
    handle = client.start(rt_review, "late")
    run_until_idle(client, advance_time=False)
    clock.advance(7200)  # past the one-hour deadline, before the run woke up
    with pytest.raises(sh.InvalidRunState, match="expired"):
        client.approve(handle.id, by="eve")
    run_until_idle(client)
    assert handle.result() == "expired"


def test_fork_onto_an_existing_id_is_a_conflict(client: Client) -> None:
    a = client.start(rt_stages.options(run_id="fa"))
    client.start(rt_inbox.options(run_id="fb"), 0)
    run_until_idle(client)
    with pytest.raises(sh.RunIdConflict, match="already exists"):
        client.fork(a.id, from_step=1, new_run_id="fb")
    assert client.get_run("fb").workflow == "rt_inbox"


def test_settings_from_a_bad_environment_say_what_to_fix() -> None:
    with pytest.raises(sh.ConfigurationError, match="SPOKEHUB_LEASE_SECONDS='soon'"):
        sh.Settings.from_env({"SPOKEHUB_LEASE_SECONDS": "soon"})
    with pytest.raises(sh.ConfigurationError, match="sqlite_synchronous"):
        sh.Settings.from_env({"SPOKEHUB_SQLITE_SYNCHRONOUS": "sometimes"})
    with pytest.raises(sh.ConfigurationError, match="positive"):
        sh.Settings(poll_interval=0)
    assert sh.Settings.from_env({"SPOKEHUB_LEASE_SECONDS": "5"}).lease_seconds == 5.0


@pytest.mark.parametrize("level", ["OFF", "normal"])
def test_unsafe_sqlite_durability_needs_the_unsafe_flag(level: str) -> None:
    """Like PostgreSQL's fsync=off: refused unless the user says the database is throwaway."""
    env = {"SPOKEHUB_SQLITE_SYNCHRONOUS": level}
    with pytest.raises(sh.ConfigurationError, match="SPOKEHUB_UNSAFE_DURABILITY=1"):
        sh.Settings.from_env(env)
    with pytest.raises(sh.ConfigurationError, match="power loss"):
        sh.Settings(sqlite_synchronous=level)
    allowed = sh.Settings.from_env({**env, "SPOKEHUB_UNSAFE_DURABILITY": "1"})
    assert allowed.sqlite_synchronous == level
    assert sh.Settings.from_env({"SPOKEHUB_SQLITE_SYNCHRONOUS": "EXTRA"}).unsafe_durability is False


@workflow
async def rt_bad_wait(kind: str) -> None:
    if kind == "sleep":
        await sh.sleep(-1)
    elif kind == "naive":
        await sh.sleep_until(datetime(2030, 1, 1))
    elif kind == "signal":
        await sh.wait_for_signal("")
    else:
        sh.sleep_sync(1)


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("sleep", "seconds >= 0"),
        ("naive", "timezone-aware"),
        ("signal", "non-empty"),
        ("sync", r"sleep\(\) there"),
    ],
)
def test_bad_arguments_to_durable_waits_fail_the_run_clearly(
    client: Client, kind: str, message: str
) -> None:
    handle = client.start(rt_bad_wait, kind)
    run_until_idle(client)
    with pytest.raises(sh.RunFailed, match=message):
        handle.result()


@step
async def rt_tick(i: int) -> int:
    await asyncio.sleep(0.001)
    return i


@workflow
async def rt_ticks(n: int) -> int:
    total = 0
    for i in range(n):
        total += await rt_tick(i)
    return total


def test_a_lone_run_commits_on_its_own_thread_and_many_runs_share_commits(db_url: str) -> None:
    with Client(db_url) as real:
        assert real.run(rt_ticks, 5) == 10
        stats = real.store.stats
        assert stats.direct >= 5  # each step's commit ran without a thread hand-off

        async def many() -> tuple[int, int]:
            handles = [await real.start_async(rt_ticks, 5) for _ in range(40)]
            before = stats.commits
            await sh.Worker(real, concurrency=100).run(until_idle=True)
            assert all([await h.result_async() == 10 for h in handles])
            return stats.commits - before, 40 * 5

        commits, steps = asyncio.run(many())
        assert commits < steps / 2, f"{commits} commits for {steps} concurrent steps"
