"""A scripted provider for tests: answers, usage, log-probabilities and errors chosen by the
test, in process (public as ``spokehub.testing.ScriptedProvider``).
"""

from __future__ import annotations

import asyncio
import json
import math
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from spokehub.intelligence.chat import ChatRequest, ChatResponse, TokenLogprob, Usage


@dataclass(frozen=True, slots=True)
class Reply:
    """One scripted answer. A dict or list ``content`` is sent as JSON text.

    Example:
        >>> Reply({"label": "spam", "rationale": "a prize"}, usage=Usage(120, 30))
    """

    content: Any
    usage: Usage = field(default_factory=lambda: Usage(10, 5))
    logprobs: list[TokenLogprob] | None = None
    model: str | None = None
    delay: float = 0.0  # seconds before answering (a slow model)

    @property
    def text(self) -> str:
        if isinstance(self.content, str):
            return self.content
        return json.dumps(self.content)


Script = Reply | BaseException | Callable[[ChatRequest], "Reply | BaseException"]


class ScriptedProvider:
    """Answers from a script, in order; ``requests`` keeps every request it got.

    Args:
        script: replies, exceptions (raised), or callables of the request that return one.
        default: what to answer once the script is used up (else an AssertionError, so a
            test notices a call it did not expect).
        name: the provider's name.
    """

    def __init__(
        self,
        script: Iterable[Script] = (),
        *,
        default: Script | None = None,
        name: str = "default",
    ) -> None:
        self.name = name
        self.script: deque[Script] = deque(script)
        self.default = default
        self.requests: list[ChatRequest] = []

    def add(self, *items: Script) -> None:
        self.script.extend(items)

    async def chat(self, request: ChatRequest) -> ChatResponse:
        self.requests.append(request)
        if self.script:
            item = self.script.popleft()
        elif self.default is not None:
            item = self.default
        else:
            raise AssertionError(
                f"ScriptedProvider {self.name!r}: call {len(self.requests)} has no scripted "
                "reply; add one (or a default)"
            )
        if callable(item) and not isinstance(item, Reply | BaseException):
            item = item(request)
        if isinstance(item, BaseException):
            raise item
        if item.delay:
            await asyncio.sleep(item.delay)
        return ChatResponse(
            content=item.text,
            usage=item.usage,
            model=item.model or request.model,
            finish_reason="stop",
            logprobs=item.logprobs,
        )


def label_logprobs(content: str, label: str, probs: dict[str, float]) -> list[TokenLogprob]:
    """Token log-probabilities for ``content`` in which the token where ``label`` starts
    had the alternatives ``probs`` (label -> probability), as a provider would report them.

    The content is split into three tokens: before the label, the label, and after it.
    """
    start = content.index(label)
    end = start + len(label)
    top = [(name, math.log(p)) for name, p in probs.items() if p > 0]
    return [
        TokenLogprob(content[:start], 0.0, [(content[:start], 0.0)]),
        TokenLogprob(label, math.log(probs.get(label, 1.0)), top),
        TokenLogprob(content[end:], 0.0, [(content[end:], 0.0)]),
    ]
