"""The ``Provider`` protocol: anything that answers a ``ChatRequest``."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from spokehub.intelligence.chat import ChatRequest, ChatResponse


@runtime_checkable
class Provider(Protocol):
    """A source of chat completions (an HTTP API, a local model, a scripted fake).

    ``name`` identifies it in the ledger, the price table's ``provider:model`` keys, rate
    limits and fallback chains. ``chat`` raises ``ProviderError`` subclasses: the fallback
    chain moves on for the classes it is told to (unavailable, timeout, rate-limited).

    A provider may also have ``async def warm()``: it is awaited before a call's rate-limit
    slot is taken, for slow first-time set-up (imports, connection pools).

    Example:
        >>> class Echo:
        ...     name = "echo"
        ...     async def chat(self, request: ChatRequest) -> ChatResponse:
        ...         text = request.messages[-1]["content"]
        ...         return ChatResponse(content=text, usage=Usage(1, 1), model="echo")
    """

    name: str

    async def chat(self, request: ChatRequest) -> ChatResponse: ...
