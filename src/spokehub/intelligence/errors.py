"""Errors of LLM steps, under spokehub's root, each with a stable ``code``.

::

    SpokehubError
    ├── ConfigurationError
    │   └── LLMConfigurationError  llm_configuration  unknown model alias, missing API key,
    │                                                 bad schema, negative budget, ...
    └── WorkflowError
        ├── ProviderError          llm_provider       the provider failed (after its retries)
        │   ├── ProviderUnavailable llm_unavailable   unreachable, 5xx, or a broken answer
        │   ├── ProviderTimeout    llm_timeout        no answer within the timeout
        │   ├── RateLimited        llm_rate_limited   429 after the Retry-After waits allowed
        │   └── ProviderRejected   llm_rejected       4xx: the request itself is wrong
        ├── OutputInvalid          llm_output_invalid the answer did not fit the schema after
        │                                             every repair (``errors`` lists why)
        ├── BudgetExceeded         llm_budget         the call would cross a run or day budget
        └── GuardrailDenied        llm_guardrail      the policy hook refused an input/output

Inside a workflow these arrive as the step's recorded failure, re-raised as the same class
on replay too (``spokehub.intelligence.llm.complete`` maps them back by name).
"""

from __future__ import annotations

from typing import Any

from spokehub.errors import ConfigurationError, WorkflowError


class LLMConfigurationError(ConfigurationError):
    """An LLM setting is wrong; the message names the setting and how to fix it."""

    code = "llm_configuration"


class ProviderError(WorkflowError):
    """A provider call failed for good (its own retries are spent)."""

    code = "llm_provider"

    def __init__(self, message: str, *, provider: str = "", retry_after: float | None = None):
        super().__init__(message)
        self.provider = provider
        self.retry_after = retry_after


class ProviderUnavailable(ProviderError):
    code = "llm_unavailable"


class ProviderTimeout(ProviderError, TimeoutError):
    code = "llm_timeout"


class RateLimited(ProviderError):
    code = "llm_rate_limited"


class ProviderRejected(ProviderError):
    code = "llm_rejected"


class OutputInvalid(WorkflowError):
    """The model's answer never fit the schema; ``errors`` holds the last validation errors."""

    code = "llm_output_invalid"

    def __init__(self, message: str, *, errors: list[str] | None = None, attempts: int = 0):
        super().__init__(message)
        self.errors = list(errors or [])
        self.attempts = attempts

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "errors": self.errors, "attempts": self.attempts}


class BudgetExceeded(WorkflowError):
    """A call was stopped before it was made: its estimated cost would cross a budget."""

    code = "llm_budget"


class GuardrailDenied(WorkflowError):
    """The policy hook refused an LLM input or output."""

    code = "llm_guardrail"


# By class name: a failed step records only its error's type name and message.
BY_NAME: dict[str, type[Exception]] = {
    cls.__name__: cls
    for cls in (
        LLMConfigurationError,
        ProviderError,
        ProviderUnavailable,
        ProviderTimeout,
        RateLimited,
        ProviderRejected,
        BudgetExceeded,
        GuardrailDenied,
    )
}
