"""An agent workflow for the SIGKILL test: its tool writes a journal outside the database
(``SPOKEHUB_TEST_AGENT_JOURNAL``), so the test can see every execution, including the ones
a kill cut short."""

from __future__ import annotations

import asyncio
import os
import time

from spokehub import step_context, workflow
from spokehub.intelligence import LLMConfig, OpenAICompatible, Price, PriceTable
from spokehub.intelligence import agent as agents
from spokehub.intelligence import configure as configure_llm
from spokehub.intelligence.tools import tool


def configure() -> None:
    configure_llm(
        LLMConfig(
            providers={"default": OpenAICompatible(os.environ["SPOKEHUB_TEST_LLM_PRIMARY"])},
            prices=PriceTable({"planner": Price(0, 0)}),
            default_model="planner",
        )
    )


def _journal(line: str) -> None:
    fd = os.open(os.environ["SPOKEHUB_TEST_AGENT_JOURNAL"], os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    try:
        os.write(fd, (line + "\n").encode())
    finally:
        os.close(fd)


@tool
async def publish_page(page: int) -> str:
    """Publish one page of the catalogue."""
    key = step_context().idempotency_key
    _journal(f"start {key} {time.time():.6f}")
    await asyncio.sleep(0.15)
    _journal(f"end {key} {time.time():.6f}")
    return f"page {page} published"


@workflow
async def agent_publish(pages: int) -> int:
    result = await agents.run(
        f"publish pages 1 to {pages}", tools=[publish_page], approve_plan="never", max_steps=20
    )
    return len(result.calls)


# Isolation processes import this module only: configure at import (see llm_app).
if "SPOKEHUB_TEST_LLM_PRIMARY" in os.environ:
    configure()
