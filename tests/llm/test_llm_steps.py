"""LLM steps in workflows, over real HTTP to the loopback server, on SQLite and PostgreSQL."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from pydantic import BaseModel

from spokehub import Client, RunFailed, workflow
from spokehub.engine.events import EventKind
from spokehub.intelligence import (
    Budget,
    BudgetExceeded,
    GuardrailVerdict,
    LLMConfig,
    OpenAICompatible,
    Price,
    PriceTable,
    PromptTemplate,
    configure,
    llm,
)
from spokehub.testing import run_until_idle
from tests.llm.server import Answer, LLMServer, Raw, Status

PRICES = PriceTable({"m1": Price(0.15, 0.60), "m2": Price(3.0, 15.0), "cheap": Price(0.0, 0.0)})


def setup(server: LLMServer, **kw: Any) -> None:
    providers = kw.pop("providers", {"default": OpenAICompatible(server.url)})
    configure(LLMConfig(providers=providers, prices=PRICES, **kw))


def llm_events(client: Client, run_id: str) -> list[dict[str, Any]]:
    return [
        e.data
        for e in client.events(run_id)
        if e.kind is EventKind.STEP_COMPLETED and e.data["name"] == "llm.complete"
    ]


class Post(BaseModel):
    title: str
    words: int


@workflow
async def ai_two_calls(topic: str) -> dict[str, Any]:
    first = await llm.complete(f"Write about {topic}", model="m1")
    second = await llm.complete(
        [{"role": "user", "content": f"Title for {topic}"}], model="m1", schema=Post
    )
    return {"text": first.text, "title": second.output.title, "cost": first.cost + second.cost}


def test_calls_are_recorded_costed_and_never_repeated(
    client: Client, llm_server: LLMServer
) -> None:
    setup(llm_server)
    llm_server.add(
        Answer("a draft", prompt_tokens=1234, completion_tokens=567),
        Answer({"title": "Durable", "words": 3}, prompt_tokens=2000, completion_tokens=1000),
    )
    handle = client.start(ai_two_calls, "spokehub")
    run_until_idle(client)
    result = handle.result()
    assert result["text"] == "a draft"
    assert result["title"] == "Durable"
    # Costs equal the usage the server reported, priced per million tokens, to the cent.
    expected = (
        Decimal("0.15") * 1234
        + Decimal("0.60") * 567
        + Decimal("0.15") * 2000
        + Decimal("0.60") * 1000
    ) / 1_000_000
    assert round(Decimal(str(result["cost"])), 8) == round(expected, 8)
    recorded = llm_events(client, handle.id)
    assert len(recorded) == 2
    call = recorded[0]["result"]
    assert call["request"]["messages"] == [{"role": "user", "content": "Write about spokehub"}]
    assert call["usage"] == {"prompt_tokens": 1234, "completion_tokens": 567}
    assert call["provider"] == "default"
    assert call["model"] == "m1"
    assert recorded[1]["result"]["request"]["schema"]["title"] == "Post"
    assert len(llm_server.log) == 2
    # Replay (a fork of the finished run from after its last call) asks the model nothing.
    fork = client.fork(handle.id, from_step=3)
    run_until_idle(client)
    assert fork.result() == result
    assert len(llm_server.log) == 2


@workflow
async def ai_structured(n: int) -> dict[str, Any]:
    post = await llm.complete("Write", model="m1", schema=Post, repairs=n)
    return {"post": post.output.model_dump(), "attempts": post.attempts, "cost": post.cost}


def test_invalid_answers_are_repaired_with_the_errors(
    client: Client, llm_server: LLMServer
) -> None:
    setup(llm_server)
    llm_server.add(
        Answer("not json at all"),
        Answer({"title": "x", "words": "many"}),
        Answer({"title": "x", "words": 2}),
    )
    handle = client.start(ai_structured, 2)
    run_until_idle(client)
    assert handle.result()["attempts"] == 3
    assert handle.result()["post"] == {"title": "x", "words": 2}
    assert len(llm_events(client, handle.id)) == 3  # every attempt in the ledger
    repair = llm_server.log[2].body["messages"][-1]["content"]
    assert "words" in repair
    assert "integer" in repair
    assert llm_server.log[2].body["messages"][-2] == {
        "role": "assistant",
        "content": '{"title": "x", "words": "many"}',
    }


def test_output_invalid_after_the_last_repair(client: Client, llm_server: LLMServer) -> None:
    setup(llm_server)
    llm_server.add(Answer("nope"), Answer({"title": 1}))
    handle = client.start(ai_structured, 1)
    run_until_idle(client)
    with pytest.raises(RunFailed) as info:
        handle.result()
    assert info.value.error["type"] == "OutputInvalid"
    assert "words" in info.value.error["message"]
    assert "2 attempt" in info.value.error["message"]


@workflow
async def ai_budgeted(calls: int) -> list[float]:
    costs = []
    for i in range(calls):
        try:
            done = await llm.complete("x" * 4000 + str(i), model="m2")
        except BudgetExceeded as exc:
            costs.append(-1.0 if "not made" in str(exc) else -2.0)
            break
        costs.append(done.cost)
    return costs


def test_budget_stops_before_the_call(client: Client, llm_server: LLMServer) -> None:
    # Each prompt is ~1004 tokens: $0.003 estimated at $3/M; each answer costs $0.0105, so
    # after two calls ($0.021) the third one's estimate would cross $0.023.
    setup(llm_server, budgets={"ai_budgeted": Budget(run=0.023)})
    llm_server.responder = lambda body: Answer("ok", prompt_tokens=1000, completion_tokens=500)
    handle = client.start(ai_budgeted, 5)
    run_until_idle(client)
    costs = handle.result()
    assert costs == [0.0105, 0.0105, -1.0]
    assert len(llm_server.log) == 2  # the third call never reached the server


def test_negative_budget_names_the_setting() -> None:
    from spokehub.intelligence import LLMConfigurationError

    with pytest.raises(LLMConfigurationError, match="SPOKEHUB_LLM_RUN_BUDGET"):
        Budget(run=-1)


@workflow
async def ai_cached(topic: str) -> list[Any]:
    one = await llm.complete(f"About {topic}", model="m1", cache_ttl=3600)
    two = await llm.complete(f"About {topic}", model="m1", cache_ttl=3600)
    return [one.text, one.cache_hit, one.cost, two.text, two.cache_hit, two.cost]


def test_cache_across_runs_is_recorded_as_a_hit(client: Client, llm_server: LLMServer) -> None:
    setup(llm_server)
    llm_server.add(Answer("cached answer", prompt_tokens=1000, completion_tokens=1000))
    first = client.start(ai_cached, "t")
    run_until_idle(client)
    assert first.result() == ["cached answer", False, 0.00075, "cached answer", True, 0.0]
    second = client.start(ai_cached, "t")
    run_until_idle(client)
    assert second.result()[1] is True
    assert second.result()[2] == 0.0
    assert len(llm_server.log) == 1
    assert llm_events(client, second.id)[0]["result"]["cache_hit"] is True


SUMMARY = PromptTemplate("ai-summary@3", "Summarise for {audience}: {text}", system="Be brief.")


@workflow
async def ai_templated(text: str) -> str:
    done = await llm.complete(SUMMARY.render(audience="editors", text=text), model="m1")
    return done.text


def test_template_name_and_digest_are_recorded(client: Client, llm_server: LLMServer) -> None:
    setup(llm_server)
    llm_server.add(Answer("short"))
    handle = client.start(ai_templated, "long text")
    run_until_idle(client)
    assert handle.result() == "short"
    request = llm_events(client, handle.id)[0]["result"]["request"]
    assert request["template"] == {"ref": "ai-summary@3", "digest": SUMMARY.digest}
    assert llm_server.log[0].body["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Summarise for editors: long text"},
    ]


@workflow
async def ai_fallback(topic: str) -> list[str]:
    done = await llm.complete(f"About {topic}", model="smart")
    return [done.provider, done.model]


def test_fallback_chain_moves_on_named_errors(client: Client, llm_server: LLMServer) -> None:
    backup = LLMServer()
    try:
        setup(
            llm_server,
            providers={
                "default": OpenAICompatible(llm_server.url),
                "backup": OpenAICompatible(backup.url),
            },
            models={"smart": ["m2", "backup:m1"]},
        )
        llm_server.add(Status(503))
        backup.add(Answer("from backup"))
        handle = client.start(ai_fallback, "x")
        run_until_idle(client)
        assert handle.result() == ["backup", "m1"]
        record = llm_events(client, handle.id)[0]["result"]
        assert record["fallbacks"] == [{"target": "default:m2", "error": "ProviderUnavailable"}]
        assert len(llm_server.log) == 1
        assert len(backup.log) == 1
    finally:
        backup.close()


def test_guardrail_hook_refuses_input(client: Client, llm_server: LLMServer) -> None:
    seen: list[str] = []

    def policy(check: Any) -> GuardrailVerdict | None:
        seen.append(check.stage)
        if "secret plan" in check.text:
            return GuardrailVerdict(False, "confidential")
        return None

    setup(llm_server, policy=policy)
    llm_server.add(Answer("fine"))
    ok = client.start(ai_templated, "public")
    run_until_idle(client)
    assert ok.result() == "fine"
    assert seen == ["input", "output"]
    bad = client.start(ai_templated, "the secret plan")
    run_until_idle(client)
    with pytest.raises(RunFailed, match="confidential"):
        bad.result()
    assert len(llm_server.log) == 1


@workflow
async def ai_model(model: str) -> str:
    return (await llm.complete("hi", model=model)).text


def test_unknown_model_alias_is_a_clear_error(client: Client, llm_server: LLMServer) -> None:
    setup(llm_server, models={"fast": ["m1"]})
    handle = client.start(ai_model, "fastest")
    run_until_idle(client)
    with pytest.raises(RunFailed, match="SPOKEHUB_LLM_MODELS"):
        handle.result()
    assert llm_server.log == []


def test_provider_failures_are_retried_durably(client: Client, llm_server: LLMServer) -> None:
    setup(llm_server)
    llm_server.add(Status(500), Raw("{broken"), Answer("third time"))
    handle = client.start(ai_model, "m1")
    run_until_idle(client)
    assert handle.result() == "third time"
    kinds = [e.kind for e in client.events(handle.id)]
    assert kinds.count(EventKind.RETRY_SCHEDULED) == 2
