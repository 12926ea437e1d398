"""``await llm.complete(...)``: an LLM call that is a durable, costed, budgeted, validated step.

Inside a workflow each call to the model is one ``llm.complete`` step: its request and
response (with usage and cost) are recorded in the ledger (large ones in blobs), so replay and
crash recovery return the recorded answer and never call the model again. With ``schema=``
the answer is validated in workflow code; an invalid answer is sent back with the errors, up
to ``repairs`` times, each attempt its own recorded step. Outside a workflow the same call
goes straight to the provider (nothing is recorded).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from spokehub.engine.retry import RetryPolicy
from spokehub.errors import ConfigurationError, StepFailed
from spokehub.intelligence.chat import TokenLogprob, Usage
from spokehub.intelligence.config import Budget
from spokehub.intelligence.errors import (
    BY_NAME,
    BudgetExceeded,
    GuardrailDenied,
    LLMConfigurationError,
    OutputInvalid,
    ProviderRejected,
)
from spokehub.intelligence.prompts import Prompt, PromptTemplate
from spokehub.intelligence.runtime import runtime
from spokehub.intelligence.structured import Schema, prepare, repair_message
from spokehub.runtime.definitions import step

STEP_NAME = "llm.complete"

# Provider hiccups are retried durably (the backoff is in the ledger); a wrong request, a
# budget or a guardrail will not change on retry.
_RETRY = RetryPolicy(
    max_attempts=3,
    initial_delay=2.0,
    non_retryable=(ConfigurationError, BudgetExceeded, GuardrailDenied, ProviderRejected),
)


@step(name=STEP_NAME, retry=_RETRY)
async def _call_model(request: dict[str, Any]) -> dict[str, Any]:
    return await runtime().execute(request)


@dataclass(frozen=True, slots=True)
class Completion:
    """The answer of ``llm.complete``.

    Attributes:
        text: the model's answer as text (of the last attempt).
        output: the validated value when a schema was given (a model instance, or the JSON
            value for a JSON Schema dict); None otherwise.
        usage: tokens over all attempts; ``cost``: USD over all attempts (0 for cache hits).
        model, provider: who answered the last attempt (after fallbacks).
        attempts: calls made (1 + repairs used).
        cache_hit: the last attempt came from the cross-run cache.
        logprobs: token log-probabilities of the last attempt, when asked for and given.
        records: each attempt's recorded result, as in the ledger.
    """

    text: str
    output: Any
    usage: Usage
    cost: float
    model: str
    provider: str
    attempts: int
    cache_hit: bool
    logprobs: list[TokenLogprob] | None
    records: list[dict[str, Any]] = field(repr=False)


async def complete(
    prompt: str | Sequence[dict[str, str]] | Prompt,
    *,
    model: str | None = None,
    schema: Any = None,
    system: str | None = None,
    temperature: float = 0.0,
    max_tokens: int | None = None,
    repairs: int = 2,
    cache_ttl: float | None = None,
    logprobs: bool = False,
    top_logprobs: int | None = None,
    seed: int | None = None,
    budget: Budget | None = None,
    timeout: float | None = None,
) -> Completion:
    """Ask a model; inside a workflow, as durable steps.

    Args:
        prompt: a string (one user message), a list of ``{"role", "content"}`` messages,
            or a rendered ``PromptTemplate`` (its ``name@version`` and digest are recorded).
        model: an alias (``SPOKEHUB_LLM_MODELS``), ``provider:model`` or a priced model name;
            default ``SPOKEHUB_LLM_MODEL``.
        schema: a pydantic model class or a JSON Schema dict: the answer must be JSON that
            validates, else it is repaired (re-asked with the errors) up to ``repairs`` times,
            then ``OutputInvalid`` is raised.
        cache_ttl: seconds an identical call (model chain, messages, parameters, schema) may
            be answered from the cross-run cache; a hit is recorded as one and costs 0.
        logprobs, top_logprobs: ask for token log-probabilities.
        budget: overrides the configured budget for this call.
        timeout: seconds for one HTTP call.

    Raises:
        OutputInvalid, BudgetExceeded, GuardrailDenied, ProviderError (after retries and
        fallbacks), LLMConfigurationError.

    Example:
        >>> class Post(BaseModel):
        ...     title: str
        ...     body: str
        >>> @workflow
        ... async def write(topic: str) -> str:
        ...     post = await llm.complete(f"Write a post about {topic}", schema=Post)
        ...     return post.output.title
    """
    if repairs < 0:
        raise LLMConfigurationError(f"llm.complete(repairs={repairs}): give 0 or more")
    if cache_ttl is not None and cache_ttl <= 0:
        raise LLMConfigurationError(f"llm.complete(cache_ttl={cache_ttl}): give seconds > 0")
    prepared = prepare(schema)
    messages, template = _messages(prompt, system)
    base: dict[str, Any] = {
        "model": model,
        "params": _params(temperature, max_tokens, logprobs, top_logprobs, seed),
        "schema": prepared.json_schema if prepared else None,
        "schema_name": prepared.name if prepared else None,
        "cache_ttl": cache_ttl,
        "budget": _budget(budget),
        "template": template,
        "timeout": timeout,
    }
    return await _attempts(base, messages, prepared, repairs)


async def _attempts(
    base: dict[str, Any], messages: list[dict[str, str]], schema: Schema | None, repairs: int
) -> Completion:
    records: list[dict[str, Any]] = []
    errors: tuple[str, ...] = ()
    for attempt in range(1, repairs + 2):
        record = await _invoke({**base, "messages": messages, "attempt": attempt})
        records.append(record)
        if schema is None:
            return _completion(records, None)
        checked = schema.validate(str(record.get("content", "")))
        if checked.ok:
            return _completion(records, checked.value)
        errors = checked.errors
        messages = [
            *messages,
            {"role": "assistant", "content": str(record.get("content", ""))},
            {"role": "user", "content": repair_message(errors)},
        ]
    raise OutputInvalid(
        f"the answer of {base.get('model') or 'the default model'} did not match schema "
        f"{base['schema_name']!r} after {len(records)} attempt(s): {'; '.join(errors[:5])}",
        errors=list(errors),
        attempts=len(records),
    )


async def _invoke(request: dict[str, Any]) -> dict[str, Any]:
    try:
        return await _call_model(request)
    except StepFailed as exc:
        # The ledger keeps only the error's type name: give workflow code (live and replayed
        # alike) the same class back, so `except BudgetExceeded` works.
        cls = BY_NAME.get(exc.error_type)
        if cls is None:
            raise
        raise cls(exc.message) from None


def _completion(records: list[dict[str, Any]], output: Any) -> Completion:
    last = records[-1]
    prompt_tokens = sum(int(r.get("usage", {}).get("prompt_tokens", 0)) for r in records)
    completion_tokens = sum(int(r.get("usage", {}).get("completion_tokens", 0)) for r in records)
    lps = last.get("logprobs")
    return Completion(
        text=str(last.get("content", "")),
        output=output,
        usage=Usage(prompt_tokens, completion_tokens),
        cost=round(sum(float(r.get("cost", 0.0)) for r in records), 10),
        model=str(last.get("model", "")),
        provider=str(last.get("provider", "")),
        attempts=len(records),
        cache_hit=bool(last.get("cache_hit")),
        logprobs=None if lps is None else [TokenLogprob.from_dict(t) for t in lps],
        records=records,
    )


def _messages(
    prompt: str | Sequence[dict[str, str]] | Prompt, system: str | None
) -> tuple[list[dict[str, str]], dict[str, str] | None]:
    template = None
    if isinstance(prompt, PromptTemplate):
        raise LLMConfigurationError(
            f"llm.complete got the template {prompt.ref!r} itself; pass template.render(...)"
        )
    if isinstance(prompt, Prompt):
        messages = list(prompt.messages)
        if prompt.template is not None:
            template = {"ref": prompt.template, "digest": prompt.digest or ""}
    elif isinstance(prompt, str):
        messages = [{"role": "user", "content": prompt}]
    else:
        messages = [dict(m) for m in prompt]
        for m in messages:
            if not isinstance(m.get("content"), str) or m.get("role") not in (
                "system",
                "user",
                "assistant",
                "tool",
            ):
                raise LLMConfigurationError(
                    f"llm.complete: a message is {{'role': system|user|assistant, 'content': "
                    f"str}}, got {m!r}"
                )
    if not messages:
        raise LLMConfigurationError("llm.complete: the prompt has no messages")
    if system is not None:
        messages.insert(0, {"role": "system", "content": system})
    return messages, template


def _params(
    temperature: float,
    max_tokens: int | None,
    logprobs: bool,
    top_logprobs: int | None,
    seed: int | None,
) -> dict[str, Any]:
    if not 0 <= temperature <= 2:
        raise LLMConfigurationError(f"llm.complete(temperature={temperature}): give 0 to 2")
    params: dict[str, Any] = {"temperature": temperature}
    if max_tokens is not None:
        params["max_tokens"] = max_tokens
    if logprobs:
        params["logprobs"] = True
        if top_logprobs:
            params["top_logprobs"] = top_logprobs
    if seed is not None:
        params["seed"] = seed
    return params


def _budget(budget: Budget | None) -> dict[str, Any] | None:
    if budget is None:
        return None
    return {"run": budget.run, "day": budget.day, "warn_at": budget.warn_at}
