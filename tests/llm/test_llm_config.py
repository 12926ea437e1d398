"""Configuration and bad input: each mistake is a clear error naming the setting to fix."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from pydantic import BaseModel

from spokehub.errors import RegistrationError
from spokehub.intelligence import (
    Budget,
    LLMConfig,
    LLMConfigurationError,
    OpenAICompatible,
    Price,
    PriceTable,
    PromptTemplate,
    RateLimit,
    Usage,
    configure,
    get_template,
    llm,
    redact,
)
from spokehub.intelligence.config import parse_aliases
from spokehub.testing import Reply, ScriptedProvider
from tests.llm.server import Answer, LLMServer


def test_env_configuration(tmp_path: Path, llm_server: LLMServer) -> None:
    prices = tmp_path / "prices.toml"
    prices.write_text('[models."house-model"]\ninput = 1.0\noutput = 2.0\n')
    config = LLMConfig.from_env(
        {
            "SPOKEHUB_LLM_BASE_URL": llm_server.url,
            "SPOKEHUB_LLM_MODEL": "fast",
            "SPOKEHUB_LLM_MODELS": "fast=house-model, smart=gpt-4o|default:house-model",
            "SPOKEHUB_LLM_PRICES": str(prices),
            "SPOKEHUB_LLM_RUN_BUDGET": "0.5",
            "SPOKEHUB_LLM_DAY_BUDGET": "10",
            "SPOKEHUB_LLM_RPM": "60",
            "SPOKEHUB_LLM_STRUCTURED": "json_object",
        }
    )
    assert [str(t) for t in config.resolve(None)] == ["default:house-model"]
    assert [str(t) for t in config.resolve("smart")] == ["default:gpt-4o", "default:house-model"]
    assert config.prices.get("default", "house-model") == Price(1.0, 2.0)
    assert config.prices.get("default", "gpt-4o-mini") is not None  # shipped defaults stay
    assert config.budget_for("anything") == Budget(run=0.5, day=10)
    assert config.rate_limits["default"] == RateLimit(requests=60)
    provider = config.providers["default"]
    assert isinstance(provider, OpenAICompatible)
    assert provider.structured == "json_object"
    assert provider.api_key is None  # a loopback server needs no key


def test_missing_api_key_is_named_at_the_call() -> None:
    config = LLMConfig.from_env({"SPOKEHUB_LLM_BASE_URL": "https://api.example.com/v1"})
    with pytest.raises(LLMConfigurationError, match="SPOKEHUB_LLM_API_KEY is not set"):
        config.resolve("gpt-4o-mini")
    none = LLMConfig.from_env({})
    with pytest.raises(LLMConfigurationError, match="SPOKEHUB_LLM_BASE_URL"):
        none.resolve("gpt-4o-mini")
    with pytest.raises(LLMConfigurationError, match="SPOKEHUB_LLM_MODEL"):
        none.resolve(None)
    keyed = LLMConfig.from_env(
        {"SPOKEHUB_LLM_BASE_URL": "https://api.example.com/v1", "SPOKEHUB_LLM_API_KEY": "sk-x"}
    )
    assert "sk-x" not in repr(keyed.providers["default"].api_key)  # type: ignore[attr-defined]


def test_the_api_key_can_be_a_secret_reference(monkeypatch: pytest.MonkeyPatch) -> None:
    from spokehub.governance import REDACTOR

    monkeypatch.setenv("LLM_TEST_KEY", "sk-from-the-secret-store")
    config = LLMConfig.from_env(
        {
            "SPOKEHUB_LLM_BASE_URL": "https://api.example.com/v1",
            "SPOKEHUB_LLM_API_KEY": "secret://LLM_TEST_KEY",
        }
    )
    key = config.providers["default"].api_key  # type: ignore[attr-defined]
    assert key.value == "sk-from-the-secret-store"
    assert "sk-from-the-secret-store" not in REDACTOR.text("sent sk-from-the-secret-store")


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"SPOKEHUB_LLM_RUN_BUDGET": "-1"}, "SPOKEHUB_LLM_RUN_BUDGET='-1' must not be negative"),
        ({"SPOKEHUB_LLM_DAY_BUDGET": "lots"}, "SPOKEHUB_LLM_DAY_BUDGET='lots' is not a number"),
        ({"SPOKEHUB_LLM_MODELS": "fast"}, "SPOKEHUB_LLM_MODELS"),
        ({"SPOKEHUB_LLM_PRICES": "/nonexistent.toml"}, "SPOKEHUB_LLM_PRICES"),
        ({"SPOKEHUB_LLM_BASE_URL": "localhost:8080"}, "SPOKEHUB_LLM_BASE_URL"),
    ],
)
def test_bad_settings(env: dict[str, str], message: str) -> None:
    with pytest.raises(LLMConfigurationError, match=message):
        LLMConfig.from_env(env)


def test_bad_price_files(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("this is = = not toml")
    with pytest.raises(LLMConfigurationError, match="not valid TOML"):
        PriceTable.from_file(bad)
    bad.write_text('[models."m"]\ninput = "cheap"\n')
    with pytest.raises(LLMConfigurationError, match="needs numbers"):
        PriceTable.from_file(bad)
    with pytest.raises(LLMConfigurationError, match="negative"):
        Price(-1, 0)
    assert PriceTable({"m": Price(1, 1)}).cost("p", "unknown", Usage(10, 10)) == 0.0


def test_bad_budgets_and_limits() -> None:
    with pytest.raises(LLMConfigurationError, match="warn_at"):
        Budget(run=1, warn_at=0)
    with pytest.raises(LLMConfigurationError, match="at least 1"):
        RateLimit(requests=0)
    with pytest.raises(LLMConfigurationError, match="seconds"):
        RateLimit(requests=1, per=0)
    assert parse_aliases("") == {}


def test_bad_call_arguments() -> None:
    configure(
        LLMConfig(providers={"default": ScriptedProvider()}, prices=PriceTable({"m": Price(0, 0)}))
    )

    def call(**kw: object) -> object:
        return asyncio.run(llm.complete("hi", model="m", **kw))  # type: ignore[arg-type]

    with pytest.raises(LLMConfigurationError, match="pydantic model class"):
        call(schema=str)
    with pytest.raises(LLMConfigurationError, match="pydantic model class"):
        call(schema={"nothing": 1})
    with pytest.raises(LLMConfigurationError, match="not a valid JSON Schema"):
        call(schema={"type": "no-such-type"})
    with pytest.raises(LLMConfigurationError, match="repairs"):
        call(repairs=-1)
    with pytest.raises(LLMConfigurationError, match="cache_ttl"):
        call(cache_ttl=0)
    with pytest.raises(LLMConfigurationError, match="temperature"):
        call(temperature=5)
    with pytest.raises(LLMConfigurationError, match="role"):
        asyncio.run(llm.complete([{"role": "robot", "content": "x"}], model="m"))
    with pytest.raises(LLMConfigurationError, match="no messages"):
        asyncio.run(llm.complete([], model="m"))
    template = PromptTemplate("cfg-t@1", "Hello {name}")
    with pytest.raises(LLMConfigurationError, match="render"):
        asyncio.run(llm.complete(template, model="m"))  # type: ignore[arg-type]


class Item(BaseModel):
    name: str


def test_outside_a_workflow_the_call_goes_straight_to_the_provider() -> None:
    provider = ScriptedProvider([Reply('```json\n{"name": "fenced"}\n```', usage=Usage(3, 4))])
    configure(LLMConfig(providers={"default": provider}, prices=PriceTable({"m": Price(1e6, 1e6)})))
    done = asyncio.run(llm.complete("name it", model="m", schema=Item, system="Be terse."))
    assert done.output == Item(name="fenced")
    assert done.cost == 7.0
    assert done.usage.total_tokens == 7
    assert provider.requests[0].messages[0] == {"role": "system", "content": "Be terse."}
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    provider.add(Reply({"n": "x"}), Reply("nope"), Reply({"n": 3}))
    answer = asyncio.run(llm.complete("count", model="m", schema=schema, repairs=2))
    assert answer.output == {"n": 3}
    assert answer.attempts == 3


def test_templates() -> None:
    plain = PromptTemplate("cfg-plain@1", "Hi {name}")
    assert get_template("cfg-plain@1") is plain
    with pytest.raises(LLMConfigurationError, match="name"):
        plain.render()
    jinja = PromptTemplate(
        "cfg-jinja@2", "{% for t in tags %}#{{ t }} {% endfor %}", engine="jinja"
    )
    assert jinja.render(tags=["a", "b"]).messages[0]["content"] == "#a #b "
    assert jinja.render(tags=[]).template == "cfg-jinja@2"
    with pytest.raises(LLMConfigurationError, match="undefined"):
        jinja.render()
    # Sandboxed: template text cannot reach into Python internals.
    evil = PromptTemplate("cfg-evil@1", "{{ ''.__class__.__mro__ }}", engine="jinja")
    with pytest.raises(Exception, match=r"unsafe|not safely|access"):
        evil.render()
    with pytest.raises(RegistrationError, match="name@version"):
        PromptTemplate("noversion", "x")
    with pytest.raises(RegistrationError, match="new version"):
        PromptTemplate("cfg-plain@1", "Different text")
    with pytest.raises(LLMConfigurationError, match="no prompt template"):
        get_template("cfg-missing@1")


def test_redaction_masks_personal_data() -> None:
    text = (
        "Mail ada@example.com, call +44 20 7946 0958, key sk-abcdefghijklmnop, "
        "card 4111 1111 1111 1111"
    )
    clean = redact(text)
    for secret in ("ada@example.com", "7946", "sk-abcdefghijklmnop", "4111"):
        assert secret not in clean
    assert redact("x" * 500).endswith("(300 more chars)")


def test_prompt_and_answer_are_logged_only_redacted(
    llm_server: LLMServer, caplog: pytest.LogCaptureFixture
) -> None:
    configure(
        LLMConfig(
            providers={"default": OpenAICompatible(llm_server.url)},
            prices=PriceTable({"m": Price(0, 0)}),
        )
    )
    llm_server.add(Answer("reply to bob@example.org"))
    with caplog.at_level("INFO", logger="spokehub.llm"):
        asyncio.run(llm.complete("write to ada@example.com", model="m"))
    logged = caplog.text
    assert "[email]" in logged
    assert "ada@example.com" not in logged
    assert "bob@example.org" not in logged
