"""Memory in three tiers: working (the run itself), session (versioned key-value) and long-term
(texts with embeddings, searched by cosine similarity).

Working memory needs nothing here: a run's local variables and step results are already
durable. Session and long-term memory live in the spokehub database, so every worker sees
the same memory on SQLite and on PostgreSQL.

From workflow code use the step functions at the bottom (``session_get``, ``session_put``,
``remember``, ``recall``): each is a step, so a replay reads the recorded answer and never
writes twice, and a step that ran twice after a crash writes once (writes carry the step's
idempotency key).

Search is brute force over float32 unit vectors held in an in-process index per namespace,
refreshed incrementally (only entries with a higher ``seq`` are loaded): exact results, and
fast enough up to about 100,000 entries per namespace (see ``benchmarks/``).
"""

from __future__ import annotations

import json
import threading
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from spokehub.errors import SpokehubError, StoreError
from spokehub.intelligence.embeddings import Embedder, _require, default_embedder
from spokehub.runtime.client import Client
from spokehub.runtime.context import current_client as _current_client
from spokehub.runtime.context import step_context
from spokehub.runtime.definitions import step
from spokehub.store.base import Tx
from spokehub.types import JSON

T = TypeVar("T")

if TYPE_CHECKING:
    from numpy import ndarray

__all__ = [
    "Hit",
    "LongTermMemory",
    "MemoryUsageError",
    "SessionMemory",
    "UnknownNamespace",
    "Versioned",
    "recall",
    "remember",
    "session_get",
    "session_put",
]


class MemoryUsageError(SpokehubError):
    """A memory call was given something it cannot use."""

    code = "memory_error"


class UnknownNamespace(MemoryUsageError):
    code = "unknown_namespace"


def _check_name(value: str, what: str) -> None:
    if not isinstance(value, str) or not value.strip() or len(value) > 200:
        raise MemoryUsageError(f"a memory {what} is a non-empty string of at most 200 characters")


# -- session memory -------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Versioned:
    key: str
    version: int
    value: JSON
    written_at: float
    run_id: str | None


class SessionMemory:
    """Durable key-value memory per namespace (a session, a customer), with every version kept."""

    def __init__(self, client: Client) -> None:
        self._client = client

    async def _tx(self, fn: Callable[[Tx], T], *, write: bool = True) -> T:
        await self._client.ensure_schema()
        return await self._client.store.transact(fn, write=write)

    async def get(
        self, namespace: str, key: str, *, version: int | None = None
    ) -> Versioned | None:
        _check_name(namespace, "namespace")
        _check_name(key, "key")

        def select(tx: Tx) -> Versioned | None:
            if version is None:
                row = tx.execute(
                    "SELECT version, value, written_at, run_id FROM memory_kv WHERE namespace = ? "
                    "AND key = ? ORDER BY version DESC LIMIT 1",
                    (namespace, key),
                ).fetchone()
            else:
                row = tx.execute(
                    "SELECT version, value, written_at, run_id FROM memory_kv WHERE namespace = ? "
                    "AND key = ? AND version = ?",
                    (namespace, key, version),
                ).fetchone()
            if row is None:
                return None
            return Versioned(key, int(row[0]), json.loads(row[1]), float(row[2]), row[3])

        return await self._tx(select, write=False)

    async def history(self, namespace: str, key: str) -> list[Versioned]:
        _check_name(namespace, "namespace")

        def select(tx: Tx) -> list[Versioned]:
            rows = tx.execute(
                "SELECT version, value, written_at, run_id FROM memory_kv WHERE namespace = ? "
                "AND key = ? ORDER BY version",
                (namespace, key),
            ).fetchall()
            return [Versioned(key, int(r[0]), json.loads(r[1]), float(r[2]), r[3]) for r in rows]

        return await self._tx(select, write=False)

    async def put(
        self,
        namespace: str,
        key: str,
        value: JSON,
        *,
        write_id: str | None = None,
        run_id: str | None = None,
    ) -> int:
        """Write a new version; returns its number. The same ``write_id`` writes once."""
        _check_name(namespace, "namespace")
        _check_name(key, "key")
        text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
        now = self._client.clock.now()
        wid = write_id or f"{namespace}:{key}:{now}:{id(text)}"

        def insert(tx: Tx) -> int:
            seen = tx.execute("SELECT version FROM memory_kv WHERE write_id = ?", (wid,)).fetchone()
            if seen is not None:
                return int(seen[0])
            row = tx.execute(
                "SELECT COALESCE(MAX(version), 0) FROM memory_kv WHERE namespace = ? AND key = ?",
                (namespace, key),
            ).fetchone()
            version = int(row[0]) + 1
            tx.execute(
                "INSERT INTO memory_kv (namespace, key, version, value, write_id, run_id, "
                "written_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (namespace, key, version, text, wid, run_id, now),
            )
            return version

        # Two writers on PostgreSQL can pick the same next version; the primary key refuses
        # the second, which then reads again.
        for attempt in range(5):
            try:
                return await self._tx(insert)
            except StoreError:
                if attempt == 4:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover


# -- long-term memory -------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Hit:
    id: str
    text: str
    metadata: dict[str, JSON]
    score: float


@dataclass(slots=True)
class _Index:
    dim: int = 0
    last_seq: int = 0
    ids: list[str] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    metadata: list[dict[str, JSON]] = field(default_factory=list)
    matrix: Any = None  # numpy (n, dim) float32


class LongTermMemory:
    """Texts with embeddings and metadata per namespace; ``search`` by meaning.

    Args:
        client: where the memory is stored.
        embedder: turns texts into vectors (default: the embedded MiniLM model).
    """

    def __init__(
        self,
        client: Client,
        embedder: Embedder | None = None,
        *,
        indexes: dict[str, _Index] | None = None,
    ) -> None:
        self._client = client
        self._embedder = embedder
        self._np = _require("numpy")
        # Loaded indexes by namespace; steps share one dict per client (see _long_term).
        self._indexes: dict[str, _Index] = {} if indexes is None else indexes
        self._lock = threading.Lock()

    async def _tx(self, fn: Callable[[Tx], T], *, write: bool = True) -> T:
        await self._client.ensure_schema()
        return await self._client.store.transact(fn, write=write)

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            self._embedder = default_embedder()
        return self._embedder

    async def add(
        self,
        namespace: str,
        texts: Sequence[str],
        *,
        metadata: Sequence[Mapping[str, JSON]] | None = None,
        ids: Sequence[str] | None = None,
        vectors: Sequence[Sequence[float]] | None = None,
        run_id: str | None = None,
    ) -> list[str]:
        """Store texts (embedded unless ``vectors`` are given); an id already stored is kept."""
        _check_name(namespace, "namespace")
        items = list(texts)
        metas = [dict(m) for m in metadata] if metadata is not None else [{} for _ in items]
        keys = list(ids) if ids is not None else [_content_id(namespace, t) for t in items]
        if not len(metas) == len(keys) == len(items):
            raise MemoryUsageError("texts, metadata and ids must have the same length")
        matrix = self._vectors(items if vectors is None else None, vectors)
        if matrix.shape[0] != len(items):
            raise MemoryUsageError(f"{len(items)} texts but {matrix.shape[0]} vectors")
        dim = int(matrix.shape[1]) if len(items) else 0
        now = self._client.clock.now()
        rows = [
            (keys[i], namespace, items[i], json.dumps(metas[i], separators=(",", ":")), dim,
             matrix[i].tobytes(), run_id, now)
            for i in range(len(items))
        ]  # fmt: skip

        def insert(tx: Tx) -> None:
            known = _namespace_dim(tx, namespace)
            if known is not None and rows and known != dim:
                raise MemoryUsageError(
                    f"namespace {namespace!r} holds {known}-dimensional vectors; these have {dim}"
                )
            for row in rows:
                tx.execute(
                    "INSERT INTO memory_vectors (id, namespace, text, metadata, dim, vector, "
                    "run_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
                    "ON CONFLICT (id) DO NOTHING",
                    row,
                )

        await self._tx(insert)
        return keys

    def _vectors(
        self, texts: list[str] | None, vectors: Sequence[Sequence[float]] | None
    ) -> ndarray:
        np = self._np
        if vectors is None:
            assert texts is not None
            raw = np.asarray(self.embedder.embed(texts), dtype=np.float32)
        else:
            raw = np.asarray(vectors, dtype=np.float32)
        if raw.ndim != 2:
            raw = raw.reshape(len(texts or vectors or []), -1)
        norms = np.linalg.norm(raw, axis=1, keepdims=True)
        if raw.size and not np.all(norms > 0):
            raise MemoryUsageError("a zero vector cannot be searched by cosine similarity")
        unit: ndarray = (raw / np.clip(norms, 1e-12, None)).astype(np.float32)
        return unit

    async def search(
        self,
        namespace: str,
        query: str | Sequence[float],
        *,
        k: int = 5,
        filter: Mapping[str, JSON] | None = None,
    ) -> list[Hit]:
        """The ``k`` entries most similar to ``query`` (a text or a vector), best first.

        ``filter`` keeps entries whose metadata has every given key with the given value.
        """
        _check_name(namespace, "namespace")
        if k < 1:
            raise MemoryUsageError("k must be at least 1")
        index = await self._refresh(namespace)
        q = self._vectors([query] if isinstance(query, str) else None,
                          None if isinstance(query, str) else [list(query)])[0]  # fmt: skip
        if q.shape[0] != index.dim:
            raise MemoryUsageError(
                f"the query vector has {q.shape[0]} dimensions; namespace {namespace!r} holds "
                f"{index.dim}-dimensional vectors"
            )
        scores = index.matrix @ q
        return self._top(index, scores, k, dict(filter or {}))

    def _top(self, index: _Index, scores: Any, k: int, wanted: dict[str, JSON]) -> list[Hit]:
        np = self._np
        n = scores.shape[0]
        if not wanted and k < n:
            best = np.argpartition(-scores, k)[:k]
            order = best[np.argsort(-scores[best], kind="stable")]
        else:
            order = np.argsort(-scores, kind="stable")
        hits: list[Hit] = []
        for i in order.tolist():
            meta = index.metadata[i]
            if wanted and any(meta.get(key) != value for key, value in wanted.items()):
                continue
            hits.append(Hit(index.ids[i], index.texts[i], meta, round(float(scores[i]), 6)))
            if len(hits) == k:
                break
        return hits

    async def forget(self, namespace: str, ids: Sequence[str]) -> int:
        """Delete entries by id; returns how many were deleted."""
        _check_name(namespace, "namespace")

        def delete(tx: Tx) -> int:
            count = 0
            for key in ids:
                count += tx.execute(
                    "DELETE FROM memory_vectors WHERE namespace = ? AND id = ?", (namespace, key)
                ).rowcount
            return count

        deleted = await self._tx(delete)
        with self._lock:
            self._indexes.pop(namespace, None)
        return deleted

    async def _refresh(self, namespace: str) -> _Index:
        with self._lock:
            index = self._indexes.get(namespace) or _Index()
        since = index.last_seq

        def load(tx: Tx) -> tuple[int, list[Any]]:
            total = tx.execute(
                "SELECT COUNT(*) FROM memory_vectors WHERE namespace = ?", (namespace,)
            ).fetchone()
            rows = tx.execute(
                "SELECT seq, id, text, metadata, dim, vector FROM memory_vectors "
                "WHERE namespace = ? AND seq > ? ORDER BY seq",
                (namespace, since),
            ).fetchall()
            return int(total[0]), rows

        total, rows = await self._tx(load, write=False)
        if total == 0:
            raise UnknownNamespace(
                f"long-term memory has no namespace {namespace!r}; add texts to it first "
                "(remember() or LongTermMemory.add())"
            )
        if total != len(index.ids) + len(rows):  # something was deleted elsewhere: start over
            with self._lock:
                self._indexes.pop(namespace, None)
            if since:
                return await self._refresh(namespace)
        if rows:
            index = self._extend(index, rows)
            with self._lock:
                self._indexes[namespace] = index
        return index

    def _extend(self, index: _Index, rows: list[Any]) -> _Index:
        np = self._np
        fresh = np.stack([np.frombuffer(bytes(r[5]), dtype=np.float32) for r in rows])
        matrix = fresh if index.matrix is None else np.vstack([index.matrix, fresh])
        return _Index(
            dim=int(rows[0][4]),
            last_seq=int(rows[-1][0]),
            ids=index.ids + [r[1] for r in rows],
            texts=index.texts + [r[2] for r in rows],
            metadata=index.metadata + [json.loads(r[3]) for r in rows],
            matrix=matrix,
        )


def _namespace_dim(tx: Tx, namespace: str) -> int | None:
    row = tx.execute(
        "SELECT dim FROM memory_vectors WHERE namespace = ? LIMIT 1", (namespace,)
    ).fetchone()
    return None if row is None else int(row[0])


def _content_id(namespace: str, text: str) -> str:
    import hashlib

    return hashlib.sha256(f"{namespace}\0{text}".encode()).hexdigest()[:32]


def _running_client() -> Client:
    client: Client | None = _current_client()
    if client is None:
        raise SpokehubError("this call works only inside a step of a running workflow")
    return client


# -- in workflows -----------------------------------------------------------------------------
# The loaded indexes of each client, dropped with it: the values hold no reference to the
# client, so the weak key can die (an id() key would outlive the client and be reused).
_indexes: weakref.WeakKeyDictionary[Client, dict[str, _Index]] = weakref.WeakKeyDictionary()


def _long_term(client: Client) -> LongTermMemory:
    return LongTermMemory(client, indexes=_indexes.setdefault(client, {}))


@step(name="spokehub.memory.session_get")
async def session_get(namespace: str, key: str) -> JSON:
    """Read the newest value of ``key`` in session memory (None when unset)."""
    found = await SessionMemory(_running_client()).get(namespace, key)
    return None if found is None else found.value


@step(name="spokehub.memory.session_put")
async def session_put(namespace: str, key: str, value: JSON) -> int:
    """Write a new version of ``key``; returns the version number. Written once per call."""
    ctx = step_context()
    return await SessionMemory(_running_client()).put(
        namespace, key, value, write_id=ctx.idempotency_key, run_id=ctx.run_id
    )


@step(name="spokehub.memory.remember")
async def remember(
    namespace: str, texts: list[str], metadata: list[dict[str, JSON]] | None = None
) -> list[str]:
    """Add texts to long-term memory; ids derive from the step, so a retry adds nothing twice."""
    ctx = step_context()
    ids = [f"{ctx.idempotency_key}:{i}" for i in range(len(texts))]
    memory = _long_term(_running_client())
    return await memory.add(namespace, texts, metadata=metadata, ids=ids, run_id=ctx.run_id)


@step(name="spokehub.memory.recall")
async def recall(
    namespace: str, query: str, k: int = 5, filter: dict[str, JSON] | None = None
) -> list[dict[str, Any]]:
    """Search long-term memory; the hits are recorded, so a replay sees the same ones."""
    hits = await _long_term(_running_client()).search(namespace, query, k=k, filter=filter)
    return [{"id": h.id, "text": h.text, "metadata": h.metadata, "score": h.score} for h in hits]
