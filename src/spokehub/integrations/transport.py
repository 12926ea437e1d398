"""httpx clients whose every TCP connection passes the egress guard.

The guard sits in httpcore's network backend, the one place that sees the address a
connection is really opened to: the host is resolved here (through a resolver that tests
can replace), each address is checked, and the connection goes to the first allowed one by
address, so DNS cannot answer differently between the check and the connect. A redirect
opens a new connection and is checked the same way. A refused request opens no socket.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import httpcore
import httpx

from spokehub.integrations.egress import EgressPolicy, IPAddress, parse_address

Resolver = Callable[[str, int], Sequence[str]]
"""``(host, port) -> addresses``: how host names are resolved (a seam for tests)."""


def system_resolver(host: str, port: int) -> list[str]:
    """Resolve with the operating system (``getaddrinfo``)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def _choose(policy: EgressPolicy, host: str, found: Iterable[str]) -> str:
    """The first address of ``found`` the policy allows; EgressDenied names the first refused."""
    first_refusal: Exception | None = None
    for text in found:
        address: IPAddress | None = parse_address(text)
        if address is None:
            continue
        try:
            policy.check(host, address)
        except Exception as exc:
            first_refusal = first_refusal or exc
            continue
        return str(address)
    if first_refusal is not None:
        raise first_refusal
    raise OSError(f"{host!r} did not resolve to any address")


class GuardedAsyncBackend(httpcore.AsyncNetworkBackend):
    """An async network backend that resolves and checks before it connects."""

    def __init__(
        self,
        policy: EgressPolicy,
        resolver: Resolver | None = None,
        inner: httpcore.AsyncNetworkBackend | None = None,
    ) -> None:
        self.policy = policy
        self.resolver = resolver
        self.inner = inner or httpcore.AnyIOBackend()

    async def _addresses(self, host: str, port: int) -> Sequence[str]:
        literal = parse_address(host)
        if literal is not None:
            return [str(literal)]
        if self.resolver is not None:
            return self.resolver(host, port)
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
        return [str(info[4][0]) for info in infos]

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        address = _choose(self.policy, host, await self._addresses(host, port))
        return await self.inner.connect_tcp(
            address,
            port,
            timeout=timeout,
            local_address=local_address,
            socket_options=socket_options,
        )

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.AsyncNetworkStream:  # pragma: no cover - never configured
        raise OSError("the guarded connector does not connect to unix sockets")

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


class GuardedSyncBackend(httpcore.NetworkBackend):
    """The blocking twin of ``GuardedAsyncBackend`` (for sync workflows' steps)."""

    def __init__(
        self,
        policy: EgressPolicy,
        resolver: Resolver | None = None,
        inner: httpcore.NetworkBackend | None = None,
    ) -> None:
        self.policy = policy
        self.resolver = resolver or system_resolver
        self.inner = inner or httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        literal = parse_address(host)
        found = [str(literal)] if literal is not None else self.resolver(host, port)
        address = _choose(self.policy, host, found)
        return self.inner.connect_tcp(
            address,
            port,
            timeout=timeout,
            local_address=local_address,
            socket_options=socket_options,
        )

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.NetworkStream:  # pragma: no cover - never configured
        raise OSError("the guarded connector does not connect to unix sockets")

    def sleep(self, seconds: float) -> None:
        self.inner.sleep(seconds)


def _pool_options(keepalive: bool = True) -> dict[str, Any]:
    limits = httpx.Limits()
    return {
        "ssl_context": httpx.create_ssl_context(),
        "max_connections": limits.max_connections,
        "max_keepalive_connections": limits.max_keepalive_connections if keepalive else 0,
        "keepalive_expiry": limits.keepalive_expiry,
    }


def async_client(
    backend: GuardedAsyncBackend, *, timeout: httpx.Timeout, max_redirects: int, keepalive: bool
) -> httpx.AsyncClient:
    """An AsyncClient whose connections all go through ``backend``.

    Environment proxies are ignored (``trust_env=False``): a proxy would connect on the
    request's behalf and the guard would only ever see the proxy's address. Without
    ``keepalive`` each connection closes after its response: a pooled connection outlives
    the event loop that opened it unless someone closes the client on that loop.
    """
    transport = httpx.AsyncHTTPTransport(trust_env=False)
    # httpx has no public knob for httpcore's network backend; its pool is swapped for one
    # with the guarded backend (same options as httpx's defaults).
    transport._pool = httpcore.AsyncConnectionPool(
        network_backend=backend, **_pool_options(keepalive)
    )
    return httpx.AsyncClient(
        transport=transport,
        timeout=timeout,
        follow_redirects=True,
        max_redirects=max_redirects,
        trust_env=False,
    )


def sync_client(
    backend: GuardedSyncBackend, *, timeout: httpx.Timeout, max_redirects: int
) -> httpx.Client:
    """The blocking twin of ``async_client``."""
    transport = httpx.HTTPTransport(trust_env=False)
    transport._pool = httpcore.ConnectionPool(network_backend=backend, **_pool_options())
    return httpx.Client(
        transport=transport,
        timeout=timeout,
        follow_redirects=True,
        max_redirects=max_redirects,
        trust_env=False,
    )
