"""An OpenAI-compatible chat-completions client on ``httpx`` (hosted APIs, Ollama, vLLM,
llama.cpp's server). ``httpx`` is imported on the first call, never with spokehub.
"""

from __future__ import annotations

import asyncio
import email.utils
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from spokehub.intelligence.chat import (
    ChatRequest,
    ChatResponse,
    StructuredMode,
    TokenLogprob,
    Usage,
)
from spokehub.intelligence.errors import (
    LLMConfigurationError,
    ProviderRejected,
    ProviderTimeout,
    ProviderUnavailable,
    RateLimited,
)
from spokehub.intelligence.secrets import Secret

if TYPE_CHECKING:
    import httpx


class OpenAICompatible:
    """A provider speaking ``POST {base_url}/chat/completions``.

    Args:
        base_url: e.g. ``https://api.openai.com/v1`` or ``http://127.0.0.1:8080/v1``.
        api_key: sent as a bearer token; never recorded or logged.
        name: the provider's name in the ledger, prices, rate limits and fallbacks.
        structured: ``"json_schema"`` (OpenAI, vLLM, Ollama) sends ``response_format``
            ``{"type": "json_schema", ...}``; ``"json_object"`` sends
            ``{"type": "json_object", "schema": ...}`` as llama.cpp's server wants.
        timeout: seconds for one HTTP call.
        max_429_retries: how many times a 429 is waited out (``Retry-After``) before
            ``RateLimited`` is raised (and a fallback chain moves on).
        max_retry_after: the longest ``Retry-After`` honoured in process; a longer one raises
            ``RateLimited`` at once, so the step's durable retry waits instead.
    """

    def __init__(
        self,
        base_url: str,
        *,
        api_key: Secret | str | None = None,
        name: str = "default",
        structured: StructuredMode = "json_schema",
        timeout: float = 60.0,
        max_429_retries: int = 3,
        max_retry_after: float = 30.0,
    ) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise LLMConfigurationError(
                f"provider {name!r}: base URL {base_url!r} must start with http:// or https:// "
                "(SPOKEHUB_LLM_BASE_URL, e.g. https://api.openai.com/v1)"
            )
        if structured not in ("json_schema", "json_object"):
            raise LLMConfigurationError(
                f"provider {name!r}: structured={structured!r} must be 'json_schema' or "
                "'json_object'"
            )
        if timeout <= 0:
            raise LLMConfigurationError(f"provider {name!r}: timeout must be positive seconds")
        self.base_url = base_url.rstrip("/")
        self.api_key = (
            api_key if isinstance(api_key, Secret) or api_key is None else Secret(api_key)
        )
        self.name = name
        self.structured: StructuredMode = structured
        self.timeout = timeout
        self.max_429_retries = max_429_retries
        self.max_retry_after = max_retry_after
        self._clients: dict[int, tuple[Any, httpx.AsyncClient, Any]] = {}

    def __repr__(self) -> str:
        return f"OpenAICompatible(name={self.name!r}, base_url={self.base_url!r})"

    async def _client(self) -> httpx.AsyncClient:
        # One connection pool per event loop: an AsyncClient must not cross loops.
        loop = asyncio.get_running_loop()
        held = self._clients.get(id(loop))
        if held is not None and held[0] is loop:
            return held[1]
        import httpx

        headers = {"content-type": "application/json"}
        if self.api_key is not None and self.api_key.value:
            headers["authorization"] = f"Bearer {self.api_key.value}"
        client = httpx.AsyncClient(base_url=self.base_url, headers=headers)
        closer = _close_with_loop(client)
        # Started here, the generator is finalised by the loop's shutdown_asyncgens (as
        # asyncio.run does), which closes the pool before the loop goes away.
        await closer.__anext__()
        self._clients = {id(loop): (loop, client, closer)}
        return client

    async def warm(self) -> None:
        """Import ``httpx`` and make this loop's connection pool (no request is sent)."""
        await self._client()

    def body(self, request: ChatRequest) -> dict[str, Any]:
        """The JSON body sent for ``request`` (public for tests and debugging)."""
        body: dict[str, Any] = {
            "model": request.model,
            "messages": request.messages,
            "temperature": request.temperature,
        }
        if request.max_tokens is not None:
            body["max_tokens"] = request.max_tokens
        if request.seed is not None:
            body["seed"] = request.seed
        if request.logprobs:
            body["logprobs"] = True
            if request.top_logprobs:
                body["top_logprobs"] = request.top_logprobs
        if request.schema is not None:
            if self.structured == "json_schema":
                body["response_format"] = {
                    "type": "json_schema",
                    "json_schema": {"name": request.schema_name, "schema": request.schema},
                }
            else:
                body["response_format"] = {"type": "json_object", "schema": request.schema}
        return body

    async def chat(self, request: ChatRequest) -> ChatResponse:
        import httpx

        body = self.body(request)
        timeout = request.timeout or self.timeout
        for tries in range(self.max_429_retries + 1):
            try:
                resp = await (await self._client()).post(
                    "/chat/completions", json=body, timeout=timeout
                )
            except httpx.TimeoutException:
                raise ProviderTimeout(
                    f"provider {self.name!r} ({self.base_url}) did not answer within {timeout}s",
                    provider=self.name,
                ) from None
            except httpx.HTTPError as exc:
                raise ProviderUnavailable(
                    f"cannot reach provider {self.name!r} at {self.base_url} ({exc}); check "
                    "SPOKEHUB_LLM_BASE_URL and that the server runs",
                    provider=self.name,
                ) from None
            if resp.status_code != 429:
                return self._parse(resp)
            wait = _retry_after(resp.headers.get("retry-after"))
            if tries == self.max_429_retries or wait > self.max_retry_after:
                raise RateLimited(
                    f"provider {self.name!r} answered 429 (rate limited) {tries + 1} time(s)",
                    provider=self.name,
                    retry_after=wait,
                )
            await asyncio.sleep(wait)
        raise AssertionError("unreachable")  # pragma: no cover

    def _parse(self, resp: httpx.Response) -> ChatResponse:
        status = resp.status_code
        if status >= 500:
            raise ProviderUnavailable(
                f"provider {self.name!r} answered {status}: {resp.text[:200]}", provider=self.name
            )
        if status in (401, 403):
            raise LLMConfigurationError(
                f"provider {self.name!r} refused the API key ({status}); set a valid "
                "SPOKEHUB_LLM_API_KEY"
            )
        if status >= 400:
            raise ProviderRejected(
                f"provider {self.name!r} rejected the request ({status}): {resp.text[:300]}",
                provider=self.name,
            )
        try:
            data = resp.json()
            choice = data["choices"][0]
            content = choice["message"].get("content") or ""
        except (ValueError, KeyError, IndexError, TypeError, AttributeError):
            raise ProviderUnavailable(
                f"provider {self.name!r} sent a response that is not a chat completion: "
                f"{resp.text[:200]!r}",
                provider=self.name,
            ) from None
        usage = data.get("usage") or {}
        return ChatResponse(
            content=str(content),
            usage=Usage(
                int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)
            ),
            model=str(data.get("model") or ""),
            finish_reason=choice.get("finish_reason"),
            logprobs=_logprobs(choice.get("logprobs")),
            id=data.get("id"),
        )

    async def aclose(self) -> None:
        for _, client, _ in self._clients.values():
            await client.aclose()
        self._clients = {}


async def _close_with_loop(client: httpx.AsyncClient) -> AsyncIterator[None]:
    try:
        yield
    finally:
        await client.aclose()


def _logprobs(raw: Any) -> list[TokenLogprob] | None:
    if not isinstance(raw, dict) or not isinstance(raw.get("content"), list):
        return None
    tokens = []
    for item in raw["content"]:
        top = [(str(t["token"]), float(t["logprob"])) for t in item.get("top_logprobs") or []]
        tokens.append(TokenLogprob(str(item["token"]), float(item["logprob"]), top))
    return tokens


def _retry_after(value: str | None) -> float:
    """Seconds from a ``Retry-After`` header (delta seconds or an HTTP date); 1 if absent."""
    if not value:
        return 1.0
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return 1.0
    return max(0.0, when.timestamp() - time.time())
