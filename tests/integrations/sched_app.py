"""A schedule every 2 seconds, for the test with 3 worker processes."""

from __future__ import annotations

from spokehub import workflow


@workflow(name="itest.tick", schedule="* * * * * */2", catchup="skip")
async def tick() -> str:
    return "tick"
