"""LLM configuration: providers, model aliases and fallback chains, prices, budgets, limits.

Read from the environment by default (``LLMConfig.from_env``):

==============================  ==========================================================
``SPOKEHUB_LLM_BASE_URL``       the default provider's OpenAI-compatible base URL
``SPOKEHUB_LLM_API_KEY``        its API key (a secret: never recorded or logged)
``SPOKEHUB_LLM_STRUCTURED``     ``json_schema`` (default) or ``json_object`` (llama.cpp)
``SPOKEHUB_LLM_TIMEOUT``        seconds per HTTP call (default 60)
``SPOKEHUB_LLM_MODEL``          the model used when a call names none
``SPOKEHUB_LLM_MODELS``         aliases: ``fast=gpt-4o-mini,smart=gpt-4o|backup:llama3.2``
``SPOKEHUB_LLM_PRICES``         a TOML price table overriding the shipped one
``SPOKEHUB_LLM_RUN_BUDGET``     USD per run, for every workflow
``SPOKEHUB_LLM_DAY_BUDGET``     USD per workflow per (UTC) day
``SPOKEHUB_LLM_BUDGET_WARN``    the fraction of a budget that logs a warning (default 0.8)
``SPOKEHUB_LLM_RPM`` / ``_TPM``  the default provider's requests / tokens per minute
==============================  ==========================================================

More providers, per-workflow budgets and per-provider limits are given in code:
``configure(LLMConfig(...))``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from spokehub.intelligence.errors import LLMConfigurationError
from spokehub.intelligence.guardrails import PolicyHook
from spokehub.intelligence.prices import PriceTable
from spokehub.intelligence.provider import Provider
from spokehub.intelligence.secrets import Secret

if TYPE_CHECKING:
    from spokehub.intelligence.chat import StructuredMode

DEFAULT_FALLBACK_ON = ("ProviderUnavailable", "ProviderTimeout", "RateLimited")
_LOOPBACK = ("localhost", "127.0.0.1", "::1")


@dataclass(frozen=True, slots=True)
class Target:
    """One link of a model's chain: a provider by name and that provider's model name."""

    provider: str
    model: str

    def __str__(self) -> str:
        return f"{self.provider}:{self.model}"


@dataclass(frozen=True, slots=True, kw_only=True)
class Budget:
    """Spending limits in USD; None means no limit.

    Attributes:
        run: the most one run may spend on LLM calls.
        day: the most all runs of one workflow may spend per UTC day.
        warn_at: the fraction of a limit past which each call logs a warning.
    """

    run: float | None = None
    day: float | None = None
    warn_at: float = 0.8

    def __post_init__(self) -> None:
        for name in ("run", "day"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int | float) or value < 0):
                raise LLMConfigurationError(
                    f"Budget({name}={value!r}): a budget is USD >= 0 (SPOKEHUB_LLM_"
                    f"{name.upper()}_BUDGET or LLMConfig(budgets=...))"
                )
        if not 0 < self.warn_at <= 1:
            raise LLMConfigurationError(
                f"Budget(warn_at={self.warn_at!r}) is a fraction in (0, 1] "
                "(SPOKEHUB_LLM_BUDGET_WARN)"
            )

    @property
    def limited(self) -> bool:
        return self.run is not None or self.day is not None


@dataclass(frozen=True, slots=True, kw_only=True)
class RateLimit:
    """At most ``requests`` calls and ``tokens`` tokens per ``per`` seconds, per provider,
    counted in the database, so all workers on it share the limit.
    """

    requests: int | None = None
    tokens: int | None = None
    per: float = 60.0
    max_wait: float = 300.0  # longer than this in line: RateLimited (the step retries later)

    def __post_init__(self) -> None:
        for name in ("requests", "tokens"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise LLMConfigurationError(f"RateLimit({name}={value!r}) must be at least 1")
        if self.per <= 0:
            raise LLMConfigurationError("RateLimit(per=...) is a positive number of seconds")


@dataclass(frozen=True, kw_only=True)
class LLMConfig:
    """Everything LLM steps need; see the module docstring for the environment variables.

    Attributes:
        providers: by name; the one named ``default`` serves plain model names.
        models: aliases to a fallback chain (``"fast": ["gpt-4o-mini", "backup:llama3.2"]``;
            ``provider:model`` picks a provider, a bare name means the default provider).
        default_model: used when a call names no model.
        prices: the price table.
        budgets: by workflow name; ``"*"`` applies to workflows not listed.
        rate_limits: by provider name.
        fallback_on: error class names on which a chain moves to its next link.
        policy: the guardrail hook asked about every input and output.
    """

    providers: Mapping[str, Provider] = field(default_factory=dict)
    models: Mapping[str, Sequence[str]] = field(default_factory=dict)
    default_model: str | None = None
    prices: PriceTable = field(default_factory=PriceTable.defaults)
    budgets: Mapping[str, Budget] = field(default_factory=dict)
    rate_limits: Mapping[str, RateLimit] = field(default_factory=dict)
    fallback_on: tuple[str, ...] = DEFAULT_FALLBACK_ON
    policy: PolicyHook | None = None
    problem: str | None = None  # why no default provider could be built (said at the call)

    def budget_for(self, workflow: str | None) -> Budget | None:
        if workflow is not None and workflow in self.budgets:
            return self.budgets[workflow]
        return self.budgets.get("*")

    def resolve(self, model: str | None) -> list[Target]:
        """The chain of targets for ``model`` (an alias, ``provider:model`` or a model name)."""
        ref = model or self.default_model
        if not ref:
            raise LLMConfigurationError("no model given: pass model=... or set SPOKEHUB_LLM_MODEL")
        if ref in self.models:
            return [self._target(link, ref) for link in self.models[ref]]
        if ":" in ref or self.prices.get("default", ref) is not None:
            return [self._target(ref, ref)]
        known = ", ".join(sorted(self.models)) or "none"
        raise LLMConfigurationError(
            f"unknown model alias {ref!r} (aliases: {known}); define it in SPOKEHUB_LLM_MODELS "
            f"(e.g. `{ref}=gpt-4o-mini`), name a provider (`default:{ref}`), or price it in "
            "SPOKEHUB_LLM_PRICES"
        )

    def _target(self, link: str, alias: str) -> Target:
        provider, sep, name = link.partition(":")
        target = Target(provider, name) if sep else Target("default", link)
        if target.provider not in self.providers:
            hint = self.problem or f"configure a provider named {target.provider!r}"
            raise LLMConfigurationError(
                f"model {alias!r} needs provider {target.provider!r}: {hint}"
            )
        return target

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> LLMConfig:
        """Build the configuration from ``SPOKEHUB_LLM_*`` variables (see the module doc)."""
        env = os.environ if env is None else env
        get = _Reader(env)
        prices = PriceTable.defaults()
        if get.text("SPOKEHUB_LLM_PRICES"):
            prices = PriceTable.from_file(get.text("SPOKEHUB_LLM_PRICES") or "")
        providers, problem = _default_provider(get)
        budget = Budget(
            run=get.number("SPOKEHUB_LLM_RUN_BUDGET"),
            day=get.number("SPOKEHUB_LLM_DAY_BUDGET"),
            warn_at=get.number("SPOKEHUB_LLM_BUDGET_WARN") or 0.8,
        )
        rpm, tpm = get.number("SPOKEHUB_LLM_RPM"), get.number("SPOKEHUB_LLM_TPM")
        limits = {}
        if rpm or tpm:
            limits["default"] = RateLimit(
                requests=int(rpm) if rpm else None, tokens=int(tpm) if tpm else None
            )
        return cls(
            providers=providers,
            models=parse_aliases(get.text("SPOKEHUB_LLM_MODELS") or ""),
            default_model=get.text("SPOKEHUB_LLM_MODEL"),
            prices=prices,
            budgets={"*": budget} if budget.limited else {},
            rate_limits=limits,
            problem=problem,
        )


class _Reader:
    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env

    def text(self, var: str) -> str | None:
        value = self.env.get(var, "").strip()
        return value or None

    def number(self, var: str) -> float | None:
        raw = self.text(var)
        if raw is None:
            return None
        try:
            value = float(raw)
        except ValueError:
            raise LLMConfigurationError(f"{var}={raw!r} is not a number; fix or unset it") from None
        if value < 0:
            raise LLMConfigurationError(f"{var}={raw!r} must not be negative; fix or unset it")
        return value


def _default_provider(get: _Reader) -> tuple[dict[str, Provider], str | None]:
    from spokehub.intelligence.openai import OpenAICompatible

    base_url = get.text("SPOKEHUB_LLM_BASE_URL")
    if base_url is None:
        return {}, (
            "set SPOKEHUB_LLM_BASE_URL (e.g. https://api.openai.com/v1 or a local server), or "
            "configure providers in code with spokehub.intelligence.configure(...)"
        )
    if not base_url.startswith(("http://", "https://")):
        raise LLMConfigurationError(
            f"SPOKEHUB_LLM_BASE_URL={base_url!r} must start with http:// or https:// "
            "(e.g. https://api.openai.com/v1 or http://127.0.0.1:8080/v1)"
        )
    key = get.text("SPOKEHUB_LLM_API_KEY")
    if key is not None and key.startswith("secret://"):
        from spokehub.governance import resolve_reference

        key = resolve_reference(key)  # and masked by value wherever spokehub writes text
    host = urlsplit(base_url).hostname or ""
    if key is None and host not in _LOOPBACK:
        return {}, (
            f"SPOKEHUB_LLM_API_KEY is not set, and {base_url} is not a local server; set it "
            "(the key is a secret: it is never recorded or logged)"
        )
    structured: Any = get.text("SPOKEHUB_LLM_STRUCTURED") or "json_schema"
    mode: StructuredMode = structured
    timeout = get.number("SPOKEHUB_LLM_TIMEOUT") or 60.0
    provider = OpenAICompatible(
        base_url,
        api_key=Secret(key) if key else None,
        structured=mode,
        timeout=timeout,
    )
    return {"default": provider}, None


def parse_aliases(text: str) -> dict[str, list[str]]:
    """``"fast=gpt-4o-mini|backup:llama3.2,smart=gpt-4o"`` to ``{alias: [links]}``."""
    aliases: dict[str, list[str]] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        alias, sep, chain = item.partition("=")
        links = [link.strip() for link in chain.split("|") if link.strip()]
        if not sep or not alias.strip() or not links:
            raise LLMConfigurationError(
                f"SPOKEHUB_LLM_MODELS: {item!r} is not `alias=model` or "
                "`alias=model|provider:model` (a fallback chain)"
            )
        aliases[alias.strip()] = links
    return aliases
