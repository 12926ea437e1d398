"""The OpenAI-compatible provider against a real HTTP server on loopback."""

from __future__ import annotations

import asyncio
import socket

import pytest

from spokehub.intelligence import (
    ChatRequest,
    LLMConfigurationError,
    OpenAICompatible,
    ProviderRejected,
    ProviderTimeout,
    ProviderUnavailable,
    RateLimited,
    Secret,
)
from tests.llm.server import Answer, LLMServer, Raw, Status

SCHEMA = {"type": "object", "properties": {"title": {"type": "string"}}, "required": ["title"]}


def ask(provider: OpenAICompatible, **kw: object) -> object:
    request = ChatRequest(model="m1", messages=[{"role": "user", "content": "hi"}], **kw)  # type: ignore[arg-type]
    return asyncio.run(provider.chat(request))


def test_chat_usage_logprobs_and_key(llm_server: LLMServer) -> None:
    lps = [{"token": "ok", "logprob": -0.1, "top_logprobs": [{"token": "ok", "logprob": -0.1}]}]
    llm_server.add(Answer("ok", prompt_tokens=123, completion_tokens=45, logprobs=lps))
    provider = OpenAICompatible(llm_server.url, api_key="sk-test-123456789")
    resp = ask(provider, logprobs=True, top_logprobs=3, max_tokens=50, seed=7)
    assert resp.content == "ok"  # type: ignore[attr-defined]
    assert resp.usage.prompt_tokens == 123
    assert resp.usage.completion_tokens == 45
    assert resp.logprobs[0].token == "ok"
    assert resp.logprobs[0].top == [("ok", -0.1)]
    sent = llm_server.log[0]
    assert sent.headers["authorization"] == "Bearer sk-test-123456789"
    assert sent.body["logprobs"] is True
    assert sent.body["top_logprobs"] == 3
    assert sent.body["max_tokens"] == 50
    assert sent.body["seed"] == 7
    assert "sk-test" not in repr(provider)
    assert "sk-test" not in repr(Secret("sk-test"))


@pytest.mark.parametrize("mode", ["json_schema", "json_object"])
def test_structured_output_dialects(llm_server: LLMServer, mode: str) -> None:
    llm_server.add(Answer({"title": "x"}))
    provider = OpenAICompatible(llm_server.url, structured=mode)  # type: ignore[arg-type]
    ask(provider, schema=SCHEMA, schema_name="post")
    fmt = llm_server.log[0].body["response_format"]
    if mode == "json_schema":
        assert fmt == {"type": "json_schema", "json_schema": {"name": "post", "schema": SCHEMA}}
    else:
        assert fmt == {"type": "json_object", "schema": SCHEMA}


def test_429_waits_retry_after_then_answers(llm_server: LLMServer) -> None:
    llm_server.add(Status(429, retry_after="0.2"), Status(429, retry_after="0"), Answer("fine"))
    resp = ask(OpenAICompatible(llm_server.url))
    assert resp.content == "fine"  # type: ignore[attr-defined]
    assert len(llm_server.log) == 3
    assert llm_server.log[1].at - llm_server.log[0].at >= 0.2


def test_429_past_its_retries_is_rate_limited(llm_server: LLMServer) -> None:
    llm_server.add(*[Status(429, retry_after="0")] * 3)
    with pytest.raises(RateLimited, match="429"):
        ask(OpenAICompatible(llm_server.url, max_429_retries=2))
    assert len(llm_server.log) == 3
    llm_server.add(Status(429, retry_after="3600"))
    with pytest.raises(RateLimited) as info:
        ask(OpenAICompatible(llm_server.url))
    assert info.value.retry_after == 3600


def test_server_errors(llm_server: LLMServer) -> None:
    provider = OpenAICompatible(llm_server.url)
    llm_server.add(Status(500))
    with pytest.raises(ProviderUnavailable, match="500"):
        ask(provider)
    llm_server.add(Raw("this is not json"))
    with pytest.raises(ProviderUnavailable, match="not a chat completion"):
        ask(provider)
    llm_server.add(Status(400, '{"error": "bad model"}'))
    with pytest.raises(ProviderRejected, match="bad model"):
        ask(provider)
    llm_server.add(Status(401))
    with pytest.raises(LLMConfigurationError, match="SPOKEHUB_LLM_API_KEY"):
        ask(provider)


def test_slow_answer_times_out(llm_server: LLMServer) -> None:
    llm_server.add(Answer("late", delay=1.0))
    with pytest.raises(ProviderTimeout, match=r"0\.2s"):
        ask(OpenAICompatible(llm_server.url, timeout=0.2))


def test_unreachable_base_url_names_the_setting() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(ProviderUnavailable, match="SPOKEHUB_LLM_BASE_URL"):
        ask(OpenAICompatible(f"http://127.0.0.1:{port}/v1"))


def test_bad_provider_settings() -> None:
    with pytest.raises(LLMConfigurationError, match="SPOKEHUB_LLM_BASE_URL"):
        OpenAICompatible("api.openai.com/v1")
    with pytest.raises(LLMConfigurationError, match="json_object"):
        OpenAICompatible("http://x/v1", structured="xml")  # type: ignore[arg-type]
    with pytest.raises(LLMConfigurationError, match="timeout"):
        OpenAICompatible("http://x/v1", timeout=0)
