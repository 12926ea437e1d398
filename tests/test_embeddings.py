"""The embedded embedding model, for real, against full-precision reference vectors."""

from __future__ import annotations

import hashlib
import json
import math
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from spokehub.errors import ConfigurationError
from spokehub.intelligence.embeddings import (
    EmbeddingError,
    LocalEmbedder,
    OpenAIEmbedder,
    default_embedder,
)

REFERENCE = json.loads((Path(__file__).parent / "data" / "minilm_reference.json").read_text())
VOCAB_SHA256 = "07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3"


@pytest.fixture(scope="module")
def embedder() -> LocalEmbedder:
    return default_embedder()


def _cos(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True)) / math.sqrt(
        sum(x * x for x in a) * sum(y * y for y in b)
    )


def test_vendored_vocabulary_is_the_models_own() -> None:
    data = (resources.files("spokehub.intelligence") / "data" / "minilm-vocab.txt").read_bytes()
    assert hashlib.sha256(data).hexdigest() == VOCAB_SHA256
    assert len(data.splitlines()) == 30522


def test_vectors_match_the_full_precision_reference(embedder: LocalEmbedder) -> None:
    items = REFERENCE["items"]
    ours = embedder.embed([item["text"] for item in items])
    cosines = {item["text"]: _cos(v, item["vector"]) for item, v in zip(items, ours, strict=True)}
    mean = sum(cosines.values()) / len(cosines)
    worst = min(cosines, key=cosines.__getitem__)
    # int8 weights cost a little precision; a one-word text has the least to average over
    assert mean >= 0.999, cosines
    assert cosines[worst] >= 0.998, (worst, cosines[worst])
    assert sum(c >= 0.999 for c in cosines.values()) >= len(cosines) - 2


def test_vectors_are_unit_length_and_batch_independent(embedder: LocalEmbedder) -> None:
    texts = ["short", "a much longer sentence that needs more tokens than the other one"]
    batch = embedder.embed(texts)
    alone = [embedder.embed([t])[0] for t in texts]
    for v, w in zip(batch, alone, strict=True):
        assert len(v) == 384
        assert sum(x * x for x in v) == pytest.approx(1.0, abs=1e-5)
        assert _cos(v, w) == pytest.approx(1.0, abs=1e-5)  # padding does not leak in


def test_similar_meanings_are_closer_than_different_ones(embedder: LocalEmbedder) -> None:
    a, b, c = embedder.embed(
        [
            "Roll back the deployment, the canary is failing.",
            "The canary release is unhealthy; revert it.",
            "Our bakery sells fresh croissants every morning.",
        ]
    )
    assert _cos(a, b) > _cos(a, c) + 0.3


def test_bad_input_is_a_clear_error(embedder: LocalEmbedder) -> None:
    with pytest.raises(EmbeddingError, match="list of texts"):
        embedder.embed("not a list")
    with pytest.raises(EmbeddingError, match="text 1 is a int"):
        embedder.embed(["ok", 3])  # type: ignore[list-item]
    assert embedder.embed([]) == []


# -- the provider's /v1/embeddings over real HTTP ------------------------------------------------
class _Provider(BaseHTTPRequestHandler):
    answers: list[tuple[int, Any]] = []
    seen: list[dict[str, Any]] = []

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).seen.append(
            {"path": self.path, "body": body, "auth": self.headers["Authorization"]}
        )
        status, answer = type(self).answers.pop(0)
        data = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def provider() -> Iterator[str]:
    _Provider.answers, _Provider.seen = [], []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Provider)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()


def test_openai_compatible_embeddings(provider: str) -> None:
    _Provider.answers = [
        (200, {"data": [{"index": 1, "embedding": [0.0, 1.0]}, {"index": 0, "embedding": [1, 0]}]}),
        (500, {"error": "boom"}),
        (200, {"data": [{"index": 0, "embedding": [1.0, 0.0, 0.0]}]}),
    ]
    emb = OpenAIEmbedder(provider, "text-embed", dimension=2, api_key="sk-test")
    assert emb.embed(["a", "b"]) == [[1.0, 0.0], [0.0, 1.0]]  # reordered by index
    assert _Provider.seen[0]["path"] == "/v1/embeddings"
    assert _Provider.seen[0]["body"] == {"model": "text-embed", "input": ["a", "b"]}
    assert _Provider.seen[0]["auth"] == "Bearer sk-test"
    with pytest.raises(EmbeddingError, match="answered 500"):
        emb.embed(["a"])
    with pytest.raises(EmbeddingError, match="of 2 floats"):
        emb.embed(["a"])


def test_unreachable_provider_and_bad_url() -> None:
    with pytest.raises(ConfigurationError, match="http"):
        OpenAIEmbedder("ftp://x", "m", dimension=2)
    emb = OpenAIEmbedder("http://127.0.0.1:9/v1", "m", dimension=2, timeout=2)
    with pytest.raises(EmbeddingError, match="failed"):
        emb.embed(["a"])
