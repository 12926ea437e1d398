"""What goes to a provider and what comes back: plain, JSON-round-trippable records."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Role = Literal["system", "user", "assistant", "tool"]
StructuredMode = Literal["json_schema", "json_object"]


@dataclass(frozen=True, slots=True, kw_only=True)
class ChatRequest:
    """One chat completion request, for one provider's model.

    Attributes:
        model: the provider's own model name (aliases are resolved before this).
        messages: ``[{"role": ..., "content": ...}, ...]``.
        schema: a JSON Schema the answer must follow (structured output), or None.
        schema_name: the schema's name, for providers that want one.
        logprobs: ask for token log-probabilities; ``top_logprobs`` alternatives per token.
        timeout: seconds for the whole call; None uses the provider's own.
    """

    model: str
    messages: list[dict[str, str]]
    temperature: float = 0.0
    max_tokens: int | None = None
    schema: dict[str, Any] | None = None
    schema_name: str = "answer"
    logprobs: bool = False
    top_logprobs: int | None = None
    seed: int | None = None
    timeout: float | None = None


@dataclass(frozen=True, slots=True)
class Usage:
    """Tokens a call was billed for, as the provider reported them."""

    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def to_dict(self) -> dict[str, int]:
        return {"prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens}


@dataclass(frozen=True, slots=True)
class TokenLogprob:
    """One generated token, its log-probability, and the most likely alternatives."""

    token: str
    logprob: float
    top: list[tuple[str, float]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"token": self.token, "logprob": self.logprob, "top": [list(t) for t in self.top]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TokenLogprob:
        return cls(
            str(data["token"]),
            float(data["logprob"]),
            [(str(t), float(lp)) for t, lp in data.get("top", [])],
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class ChatResponse:
    """A provider's answer."""

    content: str
    usage: Usage
    model: str
    finish_reason: str | None = None
    logprobs: list[TokenLogprob] | None = None
    id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "content": self.content,
            "usage": self.usage.to_dict(),
            "model": self.model,
            "finish_reason": self.finish_reason,
            "logprobs": None if self.logprobs is None else [t.to_dict() for t in self.logprobs],
            "id": self.id,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ChatResponse:
        lps = data.get("logprobs")
        usage = data.get("usage") or {}
        return cls(
            content=str(data.get("content", "")),
            usage=Usage(int(usage.get("prompt_tokens", 0)), int(usage.get("completion_tokens", 0))),
            model=str(data.get("model", "")),
            finish_reason=data.get("finish_reason"),
            logprobs=None if lps is None else [TokenLogprob.from_dict(t) for t in lps],
            id=data.get("id"),
        )


def estimate_tokens(messages: list[dict[str, str]]) -> int:
    """A provider-neutral guess of a prompt's tokens: about 4 characters per token.

    Used before a call (budgets, rate limits), never for billing, which uses reported usage.
    """
    chars = sum(len(m.get("content", "")) for m in messages)
    return (chars + 3) // 4 + 4 * len(messages)
