"""Workflows the CLI tests run, loaded by path (``tests/apps/cli_flows.py:NAME``).

Names are prefixed ``cli_`` because workflow names are global in a process.
"""

from __future__ import annotations

from spokehub import RetryPolicy, approval, sleep, step, wait_for_signal, workflow

NO_WAIT = RetryPolicy(max_attempts=2, initial_delay=0.0, jitter=0.0)


@step
async def cli_add(a: int, b: int) -> int:
    return a + b


@step(retry=NO_WAIT)
async def cli_explode(message: str) -> int:
    raise ValueError(message)


def _unbook(result: str, name: str) -> None:
    UNDONE.append(result)


UNDONE: list[str] = []


@step(compensate=_unbook)
async def cli_book(name: str) -> str:
    return f"booking-{name}"


@step
async def cli_publish(doc: str, editor: str | None) -> str:
    return f"published {doc} ({editor or 'nobody'})"


@workflow
async def cli_sum(a: int, b: int = 1) -> int:
    first = await cli_add(a, b)
    return await cli_add(first, 10)


@workflow
async def cli_fail(message: str = "boom") -> int:
    await cli_book("trip")
    return await cli_explode(message)


@workflow
async def cli_review(doc: str) -> str:
    decision = await approval("editor", subject={"doc": doc})
    return await cli_publish(doc, decision.by)


@workflow
async def cli_wait_signal() -> int:
    value = await wait_for_signal("go")
    return int(value) * 2


@workflow
async def cli_nap() -> str:
    await sleep(0)
    return "rested"


not_a_workflow = 42
