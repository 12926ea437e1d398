"""Workflows the dashboard tests run: real runs that retry, wait, get approved and compensate.

Loaded by path by ``spokehub serve --app`` in the browser tests, and imported by the unit tests.
Names are prefixed ``dash_`` because workflow names are global in a process.
"""

from __future__ import annotations

from spokehub import RetryPolicy, approval, sleep, step, step_context, wait_for_signal, workflow

QUICK_RETRY = RetryPolicy(max_attempts=3, initial_delay=0.01, jitter=0.0)
HOSTILE = "<script>alert('x')</script> & \"quotes\""


def _release(result: str, item: str, flaky: bool = False) -> None:
    """Undo of ``dash_reserve``: nothing to do outside; the ledger records it ran."""


@step(retry=QUICK_RETRY, compensate=_release)
async def dash_reserve(item: str, flaky: bool = False) -> str:
    if flaky and step_context().attempt == 1:
        raise TimeoutError("inventory timed out")
    return f"res-{item}"


@step(retry=QUICK_RETRY)
async def dash_ship(item: str, carrier_down: bool) -> str:
    if carrier_down:
        raise ConnectionError("carrier API returned 503")
    return f"ship-{item}"


@step(name=HOSTILE)
async def dash_hostile(token: str) -> dict[str, str]:
    return {"api_key": token, "note": "kept"}


@workflow
async def dash_order(item: str = "mug", flaky: bool = False, carrier_down: bool = False) -> str:
    """Reserve (maybe after a retry), then ship; a failed shipment releases the reservation."""
    reservation = await dash_reserve(item, flaky)
    return f"{reservation}/{await dash_ship(item, carrier_down)}"


@workflow
async def dash_review(doc: str = "spec", password: str = "hunter2") -> str:
    """Waits for an editor's approval, then finishes."""
    decision = await approval(
        "editor", subject={"doc": doc}, assignees=["ann", "bo", "role:approver"]
    )
    return f"{doc} approved by {decision.by or 'someone'}"


@workflow
async def dash_wait(seconds: float = 0.0) -> str:
    """Sleeps, then waits for the signal ``go``."""
    await sleep(seconds)
    value = await wait_for_signal("go")
    return f"went {value}"


@workflow
async def dash_nasty(token: str = "s3cr3t") -> dict[str, str]:
    """A step whose name is markup, and a result holding a secret."""
    return await dash_hostile(token)
