"""Where each host's breaker and token bucket live: in process, or shared on PostgreSQL.

Both backends run the same pure arithmetic (``breaker.py``, ``ratelimit.py``); they differ
only in where the state is kept and how it is locked. On PostgreSQL one statement creates or
locks the host's row and the update commits in the same transaction, so concurrent workers
see one breaker and one bucket per host.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from typing import Any, Protocol

from spokehub.integrations.breaker import (
    BreakerPolicy,
    BreakerState,
    BreakerStateName,
    admit,
    record,
)
from spokehub.integrations.ratelimit import Bucket, RateLimit, take


@dataclass(frozen=True, slots=True)
class Gate:
    """The verdict on one request: allowed, or refused by the breaker or the rate limit."""

    allowed: bool
    refused_by: str | None  # "circuit_open" | "rate_limited"
    retry_after: float
    transition: BreakerStateName | None


@dataclass(frozen=True, slots=True)
class HostStatus:
    """A host's breaker and bucket as stored (for the API, CLI and dashboard)."""

    host: str
    breaker: BreakerState
    tokens: float | None


class HostState(Protocol):
    """The per-host state backend of a connector."""

    blocking: bool  # True when calls do I/O (run them off the event loop)

    def admit(
        self, host: str, now: float, policy: BreakerPolicy, limit: RateLimit | None
    ) -> Gate: ...

    def record(
        self, host: str, ok: bool, now: float, policy: BreakerPolicy
    ) -> BreakerStateName | None: ...

    def hosts(self) -> list[HostStatus]: ...


def _gate(
    policy: BreakerPolicy,
    limit: RateLimit | None,
    breaker: BreakerState,
    bucket: Bucket | None,
    now: float,
) -> tuple[Gate, BreakerState, Bucket | None]:
    decision = admit(policy, breaker, now)
    if not decision.allowed:
        return Gate(False, "circuit_open", decision.retry_after, None), breaker, bucket
    if limit is not None:
        ok, wait, bucket = take(limit, bucket, now)
        if not ok:  # the probe slot is not spent on a request that does not go out
            return Gate(False, "rate_limited", wait, None), breaker, bucket
    return Gate(True, None, 0.0, decision.transition), decision.state, bucket


class InProcessHostState:
    """State in this process's memory (SQLite deployments, tests, one worker)."""

    blocking = False

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._breakers: dict[str, BreakerState] = {}
        self._buckets: dict[str, Bucket | None] = {}

    def admit(self, host: str, now: float, policy: BreakerPolicy, limit: RateLimit | None) -> Gate:
        with self._lock:
            breaker = self._breakers.get(host) or BreakerState(window_start=now)
            gate, breaker, bucket = _gate(policy, limit, breaker, self._buckets.get(host), now)
            self._breakers[host] = breaker
            self._buckets[host] = bucket
            return gate

    def record(
        self, host: str, ok: bool, now: float, policy: BreakerPolicy
    ) -> BreakerStateName | None:
        with self._lock:
            breaker = self._breakers.get(host) or BreakerState(window_start=now)
            self._breakers[host], transition = record(policy, breaker, ok, now)
            return transition

    def hosts(self) -> list[HostStatus]:
        with self._lock:
            return [
                HostStatus(h, b, None if (k := self._buckets.get(h)) is None else k.tokens)
                for h, b in sorted(self._breakers.items())
            ]


_LOCK_ROW = """
INSERT INTO integration_hosts (host, breaker, updated_at) VALUES (%s, %s, %s)
ON CONFLICT (host) DO UPDATE SET host = EXCLUDED.host
RETURNING breaker, tokens, tokens_at
"""
_SAVE = """
UPDATE integration_hosts SET breaker = %s, tokens = %s, tokens_at = %s, updated_at = %s
WHERE host = %s
"""


class PostgresHostState:
    """State in the ``integration_hosts`` table, shared by every worker on the database.

    The table comes with spokehub's migrations (the worker applies them when it opens the
    store). One connection per backend, used by one thread at a time.
    """

    blocking = True

    def __init__(self, url: str) -> None:
        self.url = url
        self._lock = threading.Lock()
        self._conn: Any = None

    def _connection(self) -> Any:
        if self._conn is None or self._conn.closed:
            import psycopg

            self._conn = psycopg.connect(self.url, autocommit=True, connect_timeout=10)
        return self._conn

    def _locked(self, cur: Any, host: str, now: float) -> tuple[BreakerState, Bucket | None]:
        fresh = json.dumps(BreakerState(window_start=now).to_json())
        cur.execute(_LOCK_ROW, (host, fresh, now))
        breaker_json, tokens, tokens_at = cur.fetchone()
        bucket = None if tokens is None else Bucket(float(tokens), float(tokens_at))
        return BreakerState.from_json(json.loads(breaker_json)), bucket

    def _save(
        self, cur: Any, host: str, now: float, breaker: BreakerState, bucket: Bucket | None
    ) -> None:
        tokens = None if bucket is None else bucket.tokens
        tokens_at = None if bucket is None else bucket.updated_at
        cur.execute(_SAVE, (json.dumps(breaker.to_json()), tokens, tokens_at, now, host))

    def admit(self, host: str, now: float, policy: BreakerPolicy, limit: RateLimit | None) -> Gate:
        with self._lock:
            conn = self._connection()
            with conn.transaction(), conn.cursor() as cur:
                breaker, bucket = self._locked(cur, host, now)
                gate, breaker, bucket = _gate(policy, limit, breaker, bucket, now)
                self._save(cur, host, now, breaker, bucket)
            return gate

    def record(
        self, host: str, ok: bool, now: float, policy: BreakerPolicy
    ) -> BreakerStateName | None:
        with self._lock:
            conn = self._connection()
            with conn.transaction(), conn.cursor() as cur:
                breaker, bucket = self._locked(cur, host, now)
                breaker, transition = record(policy, breaker, ok, now)
                self._save(cur, host, now, breaker, bucket)
            return transition

    def hosts(self) -> list[HostStatus]:
        with self._lock:
            conn = self._connection()
            with conn.transaction(), conn.cursor() as cur:
                cur.execute("SELECT host, breaker, tokens FROM integration_hosts ORDER BY host")
                rows = cur.fetchall()
        return [
            HostStatus(h, BreakerState.from_json(json.loads(b)), None if t is None else float(t))
            for h, b, t in rows
        ]

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


def state_for(database_url: str) -> HostState:
    """Shared state on PostgreSQL, in-process state otherwise."""
    if database_url.startswith(("postgresql://", "postgres://")):
        return PostgresHostState(database_url)
    return InProcessHostState()
