"""Workflows and LLM wiring for the worker processes of the LLM crash and scale-out tests.

The providers come from the environment so the test decides where they point:
``SPOKEHUB_TEST_LLM_PRIMARY`` (required), ``SPOKEHUB_TEST_LLM_BACKUP`` (a fallback), and
``SPOKEHUB_TEST_LLM_RATE`` = ``requests/seconds`` for the primary (shared in the database).
"""

from __future__ import annotations

import os

from spokehub import workflow
from spokehub.intelligence import LLMConfig, OpenAICompatible, Price, PriceTable, RateLimit, llm
from spokehub.intelligence import configure as configure_llm

PRICES = PriceTable({"m1": Price(0.5, 1.5), "m2": Price(0.25, 0.75)})


def configure() -> None:
    providers = {"default": OpenAICompatible(os.environ["SPOKEHUB_TEST_LLM_PRIMARY"], timeout=30)}
    models = {"main": ["m1"]}
    backup = os.environ.get("SPOKEHUB_TEST_LLM_BACKUP")
    if backup:
        providers["backup"] = OpenAICompatible(backup, timeout=30)
        models = {"main": ["m1", "backup:m2"]}
    limits = {}
    rate = os.environ.get("SPOKEHUB_TEST_LLM_RATE")
    if rate:
        n, per = rate.split("/")
        limits["default"] = RateLimit(requests=int(n), per=float(per))
    configure_llm(LLMConfig(providers=providers, models=models, prices=PRICES, rate_limits=limits))


@workflow
async def ai_twenty(tag: str) -> float:
    total = 0.0
    for i in range(20):
        done = await llm.complete(f"{tag} item {i}", model="main")
        total += done.cost
    return total


@workflow
async def ai_one(tag: str) -> str:
    done = await llm.complete(f"{tag}", model="main")
    return done.provider


# Poison isolation runs a suspect run in a child process that imports this module and nothing
# else: configuration has to happen at import, as an application's module would do it.
if "SPOKEHUB_TEST_LLM_PRIMARY" in os.environ:
    configure()
