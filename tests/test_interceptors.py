"""Interceptors: the seam for tracing, metrics, cost accounting and policy."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

import spokehub as sh
from spokehub import (
    Client,
    EventsCommittedInput,
    ExecuteStepInput,
    Interceptor,
    RetryPolicy,
    Settings,
    StartRunInput,
    step,
    workflow,
)
from spokehub.testing import FakeClock, run_until_idle


def ic_undo(result: int, x: int) -> None:
    pass


@step(compensate=ic_undo, retry=RetryPolicy(max_attempts=1))
async def ic_double(x: int) -> int:
    return 2 * x


@step(retry=RetryPolicy(max_attempts=1))
async def ic_fail() -> None:
    raise RuntimeError("nope")


@workflow
async def ic_flow(x: int, fail: bool = False) -> int:
    y = await ic_double(x)
    if fail:
        await ic_fail()
    return y


class Recorder(Interceptor):
    def __init__(self, tag: str, log: list[str]) -> None:
        self.tag = tag
        self.log = log
        self.committed: list[EventsCommittedInput] = []

    async def execute_step(
        self, input: ExecuteStepInput, call_next: Callable[[ExecuteStepInput], Awaitable[Any]]
    ) -> Any:
        kind = "undo" if input.compensation else "step"
        self.log.append(f"{self.tag} {kind} {input.context.name} #{input.context.step}")
        return await call_next(input)

    def events_committed(self, input: EventsCommittedInput) -> None:
        self.committed.append(input)


class AddTen(Interceptor):
    async def execute_step(
        self, input: ExecuteStepInput, call_next: Callable[[ExecuteStepInput], Awaitable[Any]]
    ) -> Any:
        if input.context.name == "ic_double":
            input = input.replace(kwargs={"x": input.kwargs["x"] + 10})
        return await call_next(input)


class Policy(Interceptor):
    async def start_run(
        self, input: StartRunInput, call_next: Callable[[StartRunInput], Awaitable[Any]]
    ) -> Any:
        if input.input.get("x", 0) > 100:
            raise sh.InvalidRunState("policy: x above 100 needs a human")
        return await call_next(input.replace(priority=7))


class Broken(Interceptor):
    def events_committed(self, input: EventsCommittedInput) -> None:
        raise RuntimeError("observer bug")


def make(tmp_path: Path, interceptors: list[Interceptor]) -> Client:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'ic.db'}")
    return Client(settings=settings, clock=FakeClock(), interceptors=interceptors)


@pytest.fixture
def log() -> list[str]:
    return []


def test_chain_order_and_arguments_can_be_changed(tmp_path: Path, log: list[str]) -> None:
    outer, inner = Recorder("outer", log), Recorder("inner", log)
    with make(tmp_path, [outer, AddTen(), inner, Broken()]) as client:
        handle = client.start(ic_flow, 1)
        run_until_idle(client)
        assert handle.result() == 22  # the interceptor changed the argument
    assert log == ["outer step ic_double #1", "inner step ic_double #1"]
    kinds = [e.kind.value for c in outer.committed for e in c.events]
    assert kinds == ["run_started", "step_started", "step_completed", "run_finished"]
    assert {c.run_id for c in outer.committed} == {handle.id}


def test_compensations_go_through_the_chain(tmp_path: Path, log: list[str]) -> None:
    with make(tmp_path, [Recorder("r", log)]) as client:
        handle = client.start(ic_flow, 1, fail=True)
        run_until_idle(client)
        assert handle.status() is sh.RunStatus.FAILED
    assert log == ["r step ic_double #1", "r step ic_fail #2", "r undo ic_double.compensate #1"]


def test_start_can_be_refused_or_changed(tmp_path: Path) -> None:
    with make(tmp_path, [Policy()]) as client:
        with pytest.raises(sh.InvalidRunState, match="policy"):
            client.start(ic_flow, 500)
        assert client.list_runs() == []  # nothing stored
        handle = client.start(ic_flow, 5)
        assert client.get_run(handle.id).priority == 7
