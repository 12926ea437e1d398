"""spokehub's intelligence layer: LLM calls as durable, costed, budgeted, validated steps, and
decisions routed to humans by confidence.

It owns: the ``Provider`` protocol and an OpenAI-compatible HTTP provider, configuration
(aliases, fallback chains, prices, budgets, shared rate limits), ``llm.complete`` (a durable
step per model call, structured output with repairs, a cross-run cache), ``decide``
(confidence from log-probabilities or agreement, approval below a threshold) and calibration.
It sits above integrations and below patterns; the governance layer's policy engine plugs in
as a hook (``LLMConfig(policy=...)``). ``httpx``, pydantic and Jinja2 load on first use.

Example:
    >>> from spokehub import workflow
    >>> from spokehub.intelligence import decide, llm
    >>> @workflow
    ... async def triage(ticket: str) -> str:
    ...     d = await decide("Which team?", labels=["billing", "tech"], context=ticket)
    ...     return d.label
"""

from __future__ import annotations

import importlib
import typing

from spokehub.intelligence import llm
from spokehub.intelligence.calibration import Calibration, calibrate, calibration
from spokehub.intelligence.chat import ChatRequest, ChatResponse, TokenLogprob, Usage
from spokehub.intelligence.config import Budget, LLMConfig, RateLimit, Target
from spokehub.intelligence.decide import LabelDecision, decide
from spokehub.intelligence.errors import (
    BudgetExceeded,
    GuardrailDenied,
    LLMConfigurationError,
    OutputInvalid,
    ProviderError,
    ProviderRejected,
    ProviderTimeout,
    ProviderUnavailable,
    RateLimited,
)
from spokehub.intelligence.guardrails import GuardrailCheck, GuardrailVerdict, PolicyHook, redact
from spokehub.intelligence.llm import Completion
from spokehub.intelligence.prices import Price, PriceTable
from spokehub.intelligence.prompts import Prompt, PromptTemplate, get_template
from spokehub.intelligence.provider import Provider
from spokehub.intelligence.runtime import configure
from spokehub.intelligence.secrets import Secret

if typing.TYPE_CHECKING:
    from spokehub.intelligence.local import LlamaCppProvider
    from spokehub.intelligence.openai import OpenAICompatible

_LAZY = {
    "OpenAICompatible": "spokehub.intelligence.openai",
    "LlamaCppProvider": "spokehub.intelligence.local",
}


def __getattr__(name: str) -> typing.Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'spokehub.intelligence' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "Budget",
    "BudgetExceeded",
    "Calibration",
    "ChatRequest",
    "ChatResponse",
    "Completion",
    "GuardrailCheck",
    "GuardrailDenied",
    "GuardrailVerdict",
    "LLMConfig",
    "LLMConfigurationError",
    "LabelDecision",
    "LlamaCppProvider",
    "OpenAICompatible",
    "OutputInvalid",
    "PolicyHook",
    "Price",
    "PriceTable",
    "Prompt",
    "PromptTemplate",
    "Provider",
    "ProviderError",
    "ProviderRejected",
    "ProviderTimeout",
    "ProviderUnavailable",
    "RateLimit",
    "RateLimited",
    "Secret",
    "Target",
    "TokenLogprob",
    "Usage",
    "calibrate",
    "calibration",
    "configure",
    "decide",
    "get_template",
    "llm",
    "redact",
]
