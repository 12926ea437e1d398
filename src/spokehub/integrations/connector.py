"""The HTTP connector: ``http.post(...)`` and friends as durable steps.

Each call inside a workflow is one step (``http.post``, ``http.get``, ...): its response is
recorded, so replay never sends it again. An attempt passes, in order: the contract check of
the request, the egress guard (again on the address actually connected to, and on every
redirect), the host's circuit breaker and rate limit, then the exchange with connect, read
and total timeouts and a response size cap. Connection errors, 429 and 5xx are retried by the
step's ``RetryPolicy`` with exponential backoff and jitter; ``Retry-After`` and an open
breaker's remaining time set the least wait; the waits are durable (the run unloads).

Example:
    >>> from spokehub.integrations import http
    >>> @workflow
    ... async def sync_order(order: dict) -> int:
    ...     answer = await http.post("https://api.example.com/orders", json=order)
    ...     return answer.status
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypedDict, Unpack

from spokehub.config import Settings
from spokehub.engine.retry import RetryPolicy
from spokehub.integrations.breaker import BreakerPolicy, BreakerStateName
from spokehub.integrations.contracts import CONTRACTS, Contract, ContractRegistry
from spokehub.integrations.egress import EgressPolicy
from spokehub.integrations.errors import (
    NON_RETRYABLE,
    CircuitOpen,
    EgressDenied,
    RateLimited,
    ResponseTooLarge,
)
from spokehub.integrations.exchange import ConnectionFailed, Prepared, Response, finish, prepare
from spokehub.integrations.hoststate import Gate, HostState, HostStatus, state_for
from spokehub.integrations.ratelimit import RateLimit
from spokehub.integrations.sending import Sender
from spokehub.runtime.definitions import StepDefinition

log = logging.getLogger("spokehub.integrations.http")

DEFAULT_RETRY = RetryPolicy(
    max_attempts=5,
    initial_delay=1.0,
    multiplier=2.0,
    max_delay=60.0,
    jitter=0.2,
    non_retryable=NON_RETRYABLE,
)


@dataclass(frozen=True, kw_only=True, slots=True)
class Timeouts:
    """Seconds: to connect, between two reads, and for the whole exchange."""

    connect: float = 5.0
    read: float = 30.0
    total: float = 60.0


@dataclass(frozen=True, kw_only=True)
class ConnectorConfig:
    """A connector's settings; change them with ``HttpConnector.configure(...)``.

    Attributes:
        allow: egress allow-list: host names (``*.corp.example``) and CIDRs (``10.0.0.0/8``).
        resolver: ``(host, port) -> [addresses]`` used instead of the system resolver.
        breaker: when a host's breaker opens and recovers.
        rate_limits: per host (``api.example.com`` or ``host:port``), ``"*"`` for any host.
        timeouts: connect, read and total timeouts.
        max_response_bytes: a larger body fails the attempt (``ResponseTooLarge``).
        max_redirects: redirects followed (each one passes the egress guard).
        retry: the steps' retry policy (callers may pass their own per call).
        state: where breakers and buckets live: a ``HostState``, a database URL
            (PostgreSQL: shared by all workers), or None for ``SPOKEHUB_DATABASE_URL``.
        clock: seconds since the epoch (a seam for tests).
        inline_wait: a rate-limit wait up to this long is slept in the attempt; longer ones
            fail the attempt with ``RateLimited`` and the retry waits durably.
        contracts: where contract references are looked up.
        async_keepalive: keep async connections open between requests; then call
            ``await connector.aclose()`` on the same event loop before it ends.
        network: the httpcore network backends ``(async, sync)`` the guard connects through
            once it allowed an address (a seam for tests; default: real sockets).
    """

    allow: tuple[str, ...] = ()
    resolver: Callable[[str, int], Any] | None = None
    breaker: BreakerPolicy = field(default_factory=BreakerPolicy)
    rate_limits: Mapping[str, RateLimit] = field(default_factory=dict)
    timeouts: Timeouts = field(default_factory=Timeouts)
    max_response_bytes: int = 10 * 1024 * 1024
    max_redirects: int = 5
    retry: RetryPolicy = DEFAULT_RETRY
    state: HostState | str | None = None
    clock: Callable[[], float] = time.time
    inline_wait: float = 1.0
    contracts: ContractRegistry = CONTRACTS
    async_keepalive: bool = False
    network: tuple[Any, Any] | None = None

    def __post_init__(self) -> None:
        if self.max_response_bytes < 1 or self.max_redirects < 0 or self.inline_wait < 0:
            raise ValueError("max_response_bytes >= 1, max_redirects >= 0, inline_wait >= 0")


@dataclass(frozen=True, slots=True)
class Credential:
    """A header whose value is resolved at each attempt, never recorded in the ledger.

    ``value`` is the secret itself or a callable returning it (the seam for a secrets
    manager, e.g. the governance layer's resolver).
    """

    value: str | Callable[[], str]
    header: str = "Authorization"
    scheme: str | None = "Bearer"

    def render(self) -> tuple[str, str]:
        secret = self.value() if callable(self.value) else self.value
        return self.header, f"{self.scheme} {secret}" if self.scheme else secret


Listener = Callable[[str, str], None]  # (host:port, state entered)


class HttpConnector:
    """Durable HTTP steps with egress guard, breaker, rate limit, contracts and retries.

    ``spokehub.integrations.http`` is the process's default connector; build your own for
    different settings. Async workflows ``await http.post(...)``; sync workflows call
    ``http.post_sync(...)``. Outside a run the same calls send once, without durability.
    """

    def __init__(self, **settings: Any) -> None:
        self.config = ConnectorConfig(**settings)
        self._lock = threading.Lock()
        self._credentials: dict[str, Credential] = {}
        self._listeners: list[Listener] = []
        self._steps: dict[tuple[str, bool, RetryPolicy], StepDefinition[..., Any]] = {}
        self._reset()

    def _reset(self) -> None:
        cfg = self.config
        self.policy = EgressPolicy.of(cfg.allow)
        state = cfg.state
        self._auto_state = state is None
        if state is None or isinstance(state, str):
            state = state_for(state or Settings.from_env().database_url)
        self.state: HostState = state
        self.sender = Sender(
            self.policy,
            cfg.resolver,
            cfg.timeouts,
            cfg.max_redirects,
            cfg.max_response_bytes,
            cfg.async_keepalive,
            cfg.network,
        )

    def configure(self, **changes: Any) -> None:
        """Change settings (see ``ConnectorConfig``); open connections are dropped."""
        with self._lock:
            self.config = dataclasses.replace(self.config, **changes)
            self.sender.close()
            self._reset()

    def use_database(self, database_url: str) -> None:
        """Keep breakers and buckets in ``database_url`` (shared on PostgreSQL), unless the
        connector was given a ``state`` of its own. Workers and the server call it with
        their database, which may come from ``--db`` rather than the environment."""
        if not self._auto_state:
            return
        previous, self.state = self.state, state_for(database_url)
        close = getattr(previous, "close", None)
        if close is not None:  # the state it replaces holds a database connection
            close()

    def credential(
        self,
        name: str,
        value: str | Callable[[], str],
        *,
        header: str = "Authorization",
        scheme: str | None = "Bearer",
    ) -> None:
        """Register a named credential; calls pass ``auth=name`` (only the name is recorded)."""
        self._credentials[name] = Credential(value, header, scheme)

    def on_transition(self, listener: Listener) -> None:
        """Call ``listener(host, state)`` whenever a host's breaker changes state."""
        self._listeners.append(listener)

    def hosts(self) -> list[HostStatus]:
        """Every known host's breaker and bucket (shared ones on PostgreSQL)."""
        return self.state.hosts()

    # -- the public verbs ----------------------------------------------------------------
    def request(
        self,
        method: str,
        url: str,
        *,
        json: Any = None,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        contract: str | Contract | None = None,
        auth: str | None = None,
        retry: RetryPolicy | None = None,
        content: str | None = None,
    ) -> Awaitable[Response]:
        """Send one request as a durable step (await it inside an async workflow)."""
        step = self._step(method, True, retry)
        args = _args(method, url, json, params, headers, contract, auth)
        if content is not None:
            args["content"] = content
        return step(**args)  # type: ignore[no-any-return]

    def request_sync(
        self,
        method: str,
        url: str,
        *,
        json: Any = None,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        contract: str | Contract | None = None,
        auth: str | None = None,
        retry: RetryPolicy | None = None,
        content: str | None = None,
    ) -> Response:
        """The sync twin of ``request``, for sync workflows."""
        step = self._step(method, False, retry)
        args = _args(method, url, json, params, headers, contract, auth)
        if content is not None:
            args["content"] = content
        return step(**args)  # type: ignore[no-any-return]

    def get(self, url: str, **kw: Any) -> Awaitable[Response]:
        return self.request("GET", url, **kw)

    def post(self, url: str, **kw: Any) -> Awaitable[Response]:
        return self.request("POST", url, **kw)

    def put(self, url: str, **kw: Any) -> Awaitable[Response]:
        return self.request("PUT", url, **kw)

    def patch(self, url: str, **kw: Any) -> Awaitable[Response]:
        return self.request("PATCH", url, **kw)

    def delete(self, url: str, **kw: Any) -> Awaitable[Response]:
        return self.request("DELETE", url, **kw)

    def get_sync(self, url: str, **kw: Any) -> Response:
        return self.request_sync("GET", url, **kw)

    def post_sync(self, url: str, **kw: Any) -> Response:
        return self.request_sync("POST", url, **kw)

    def put_sync(self, url: str, **kw: Any) -> Response:
        return self.request_sync("PUT", url, **kw)

    def patch_sync(self, url: str, **kw: Any) -> Response:
        return self.request_sync("PATCH", url, **kw)

    def delete_sync(self, url: str, **kw: Any) -> Response:
        return self.request_sync("DELETE", url, **kw)

    async def send(self, method: str, url: str, **body: Unpack[Exchange]) -> Response:
        """One guarded attempt that is not a step of its own, for code already inside a step
        (it retries nothing: the enclosing step's policy does)."""
        return await self._async_attempt(*_attempt_args(method, url, body))

    def send_sync(self, method: str, url: str, **body: Unpack[Exchange]) -> Response:
        """The sync twin of ``send``: one guarded attempt from plain code (a thread a step
        runs, a command); the same guards, no step and no retry of its own."""
        return self._sync_attempt(*_attempt_args(method, url, body))

    def derive(self, **changes: Any) -> HttpConnector:
        """A connector with some settings changed (``allow``, ``timeouts``, ...) that shares
        this one's host state (breakers and buckets, also after ``use_database``), its
        transition listeners and its credentials."""
        settings = {f.name: getattr(self.config, f.name) for f in dataclasses.fields(self.config)}
        other = HttpConnector(**{**settings, **changes, "state": _StateOf(self)})
        other._listeners = self._listeners
        other._credentials = self._credentials
        return other

    # -- the step and its attempt ---------------------------------------------------------
    def _step(
        self, method: str, is_async: bool, retry: RetryPolicy | None
    ) -> StepDefinition[..., Any]:
        policy = retry or self.config.retry
        key = (method.upper(), is_async, policy)
        found = self._steps.get(key)
        if found is None:
            fn = self._async_attempt if is_async else self._sync_attempt
            found = StepDefinition(
                fn, name=f"http.{method.lower()}", retry=policy, timeout=None, compensate=None
            )
            self._steps[key] = found
        return found

    def _prepare(
        self,
        method: str,
        url: str,
        body: Any,
        params: Any,
        headers: Any,
        contract: str | None,
        auth: str | None,
        content: str | bytes | None = None,
    ) -> Prepared:
        found = None if contract is None else self.config.contracts.get(contract)
        auth_header = None
        if auth is not None:
            cred = self._credentials.get(auth)
            if cred is None:
                raise KeyError(
                    f"no credential named {auth!r}; register it with "
                    "http.credential(name, value_or_resolver)"
                )
            auth_header = cred.render()
        return prepare(
            method,
            url,
            body=body,
            params=params,
            headers=headers,
            contract=found,
            auth_header=auth_header,
            policy=self.policy,
            content=content,
        )

    async def _async_attempt(
        self,
        method: str,
        url: str,
        body: Any = None,
        params: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
        contract: str | None = None,
        auth: str | None = None,
        content: str | bytes | None = None,
    ) -> Response:
        req = self._prepare(method, url, body, params, headers, contract, auth, content)
        while True:
            wait = await self._call_state(self._admit, req.authority)
            if wait is None:
                break
            await asyncio.sleep(wait)
        try:
            raw = await self.sender.send_async(req)
        except BaseException as exc:
            if (ok := _healthy(exc)) is not None:
                await self._call_state(self._record, req.authority, ok)
            raise
        await self._call_state(self._record, req.authority, raw.status < 500)
        return finish(req, raw, self.config.clock())

    def _sync_attempt(
        self,
        method: str,
        url: str,
        body: Any = None,
        params: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
        contract: str | None = None,
        auth: str | None = None,
        content: str | bytes | None = None,
    ) -> Response:
        req = self._prepare(method, url, body, params, headers, contract, auth, content)
        while (wait := self._admit(req.authority)) is not None:
            time.sleep(wait)
        try:
            raw = self.sender.send_sync(req)
        except BaseException as exc:
            if (ok := _healthy(exc)) is not None:
                self._record(req.authority, ok)
            raise
        self._record(req.authority, raw.status < 500)
        return finish(req, raw, self.config.clock())

    async def _call_state(self, fn: Callable[..., Any], *args: Any) -> Any:
        if self.state.blocking:  # a database round trip must not stall the event loop
            return await asyncio.to_thread(fn, *args)
        return fn(*args)

    def _limit(self, authority: str) -> RateLimit | None:
        limits = self.config.rate_limits
        host = authority.rsplit(":", 1)[0]
        return limits.get(authority) or limits.get(host) or limits.get("*")

    def _admit(self, authority: str) -> float | None:
        """None when the request may go; else seconds to sleep before asking again."""
        gate = self.state.admit(
            authority, self.config.clock(), self.config.breaker, self._limit(authority)
        )
        if gate.transition is not None:
            self._announce(authority, gate.transition)
        if gate.allowed:
            return None
        if gate.refused_by == "circuit_open":
            raise CircuitOpen(authority, gate.retry_after)
        if gate.retry_after <= self.config.inline_wait:
            return gate.retry_after
        raise RateLimited(authority, gate.retry_after)

    def _record(self, authority: str, ok: bool) -> None:
        entered = self.state.record(authority, ok, self.config.clock(), self.config.breaker)
        if entered is not None:
            self._announce(authority, entered)

    def _announce(self, authority: str, entered: str) -> None:
        log.warning("circuit breaker for %s is now %s", authority, entered)
        for listener in list(self._listeners):
            try:
                listener(authority, entered)
            except Exception:  # an observer must not fail the request
                log.exception("breaker listener %r failed", listener)

    async def aclose(self) -> None:
        """Close this event loop's pooled async connections."""
        await self.sender.aclose()

    def close(self) -> None:
        """Close pooled connections (and the state backend's database connection)."""
        self.sender.close()
        closer = getattr(self.state, "close", None)
        if closer is not None:
            closer()


class Exchange(TypedDict, total=False):
    """What ``send`` and ``send_sync`` take besides method and URL."""

    content: str | bytes | None  # a body sent as is
    json: Any  # a body sent as JSON
    params: dict[str, str] | None
    headers: dict[str, str] | None


def _attempt_args(method: str, url: str, given: Exchange) -> tuple[Any, ...]:
    """The attempt's positional arguments (no contract, no named credential)."""
    return (
        method,
        url,
        given.get("json"),
        given.get("params"),
        given.get("headers"),
        None,
        None,
        given.get("content"),
    )


class _StateOf:
    """The host state of another connector, looked up at each call (``use_database`` may
    replace it)."""

    blocking = True  # it may be a database: keep it off the event loop

    def __init__(self, owner: HttpConnector) -> None:
        self.owner = owner

    def admit(self, host: str, now: float, policy: BreakerPolicy, limit: RateLimit | None) -> Gate:
        return self.owner.state.admit(host, now, policy, limit)

    def record(
        self, host: str, ok: bool, now: float, policy: BreakerPolicy
    ) -> BreakerStateName | None:
        return self.owner.state.record(host, ok, now, policy)

    def hosts(self) -> list[HostStatus]:
        return self.owner.state.hosts()


def _args(
    method: str,
    url: str,
    body: Any,
    params: Mapping[str, str] | None,
    headers: Mapping[str, str] | None,
    contract: str | Contract | None,
    auth: str | None,
) -> dict[str, Any]:
    ref = contract.ref if isinstance(contract, Contract) else contract
    return {
        "method": method.upper(),
        "url": url,
        "body": body,
        "params": dict(params) if params is not None else None,
        "headers": dict(headers) if headers is not None else None,
        "contract": ref,
        "auth": auth,
    }


def _healthy(exc: BaseException) -> bool | None:
    """What a failed send says about the host: down (False), up (True), or nothing (None).

    A refused egress never reached the host; an oversized body came from a host that works.
    """
    if isinstance(exc, EgressDenied):
        return None
    if isinstance(exc, ConnectionFailed):
        return False
    return True if isinstance(exc, ResponseTooLarge) else None
