"""Sending a prepared request: pooled guarded clients, timeouts and the response size cap."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import httpx

from spokehub.integrations.egress import EgressPolicy
from spokehub.integrations.errors import ClientStatusError, ResponseTooLarge
from spokehub.integrations.exchange import ConnectionFailed, Prepared, Raw
from spokehub.integrations.transport import (
    GuardedAsyncBackend,
    GuardedSyncBackend,
    Resolver,
    async_client,
    sync_client,
)


class Sender:
    """Owns the connection pools (one async client per event loop, one sync client)."""

    def __init__(
        self,
        policy: EgressPolicy,
        resolver: Resolver | None,
        timeouts: Any,
        max_redirects: int,
        max_bytes: int,
        keepalive: bool = False,
        network: tuple[Any, Any] | None = None,
    ) -> None:
        self.network = network or (None, None)
        self.keepalive = keepalive
        self.policy = policy
        self.resolver = resolver
        self.timeouts = timeouts
        self.max_redirects = max_redirects
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._async: dict[int, httpx.AsyncClient] = {}
        self._sync: httpx.Client | None = None

    def _timeout(self) -> httpx.Timeout:
        t = self.timeouts
        return httpx.Timeout(t.read, connect=t.connect, pool=t.connect)

    def _async_client(self) -> httpx.AsyncClient:
        loop = id(asyncio.get_running_loop())
        client = self._async.get(loop)
        if client is None or client.is_closed:
            backend = GuardedAsyncBackend(self.policy, self.resolver, self.network[0])
            client = async_client(
                backend,
                timeout=self._timeout(),
                max_redirects=self.max_redirects,
                keepalive=self.keepalive,
            )
            self._async[loop] = client
        return client

    def _sync_client(self) -> httpx.Client:
        with self._lock:
            if self._sync is None:
                backend = GuardedSyncBackend(self.policy, self.resolver, self.network[1])
                self._sync = sync_client(
                    backend, timeout=self._timeout(), max_redirects=self.max_redirects
                )
            return self._sync

    def _check_length(self, req: Prepared, response: httpx.Response) -> None:
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_bytes:
            raise ResponseTooLarge(req.url, self.max_bytes)

    def _add(self, req: Prepared, body: bytearray, chunk: bytes) -> None:
        body += chunk
        if len(body) > self.max_bytes:
            raise ResponseTooLarge(req.url, self.max_bytes)

    async def send_async(self, req: Prepared) -> Raw:
        client = self._async_client()
        try:
            async with asyncio.timeout(self.timeouts.total):
                return await self._exchange_async(client, req)
        except TimeoutError:
            raise ConnectionFailed(
                f"{req.method} {req.url} took longer than the total timeout of "
                f"{self.timeouts.total}s"
            ) from None
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            raise _translate(req, exc) from None

    async def _exchange_async(self, client: httpx.AsyncClient, req: Prepared) -> Raw:
        async with client.stream(
            req.method, req.url, params=req.params, headers=req.headers, **req.payload()
        ) as response:
            self._check_length(req, response)
            body = bytearray()
            async for chunk in response.aiter_bytes():
                self._add(req, body, chunk)
            return _raw(response, body)

    def send_sync(self, req: Prepared) -> Raw:
        client = self._sync_client()
        deadline = time.monotonic() + self.timeouts.total
        try:
            with client.stream(
                req.method, req.url, params=req.params, headers=req.headers, **req.payload()
            ) as response:
                self._check_length(req, response)
                body = bytearray()
                for chunk in response.iter_bytes():
                    self._add(req, body, chunk)
                    if time.monotonic() > deadline:  # a blocking read cannot be cancelled
                        raise httpx.ReadTimeout("total timeout")
                return _raw(response, body)
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            raise _translate(req, exc) from None

    async def aclose(self) -> None:
        """Close the running loop's async client (with ``async_keepalive``, call it at exit)."""
        client = self._async.pop(id(asyncio.get_running_loop()), None)
        if client is not None:
            await client.aclose()

    def close(self) -> None:
        """Close the sync pool and forget the async clients."""
        with self._lock:
            if self._sync is not None:
                self._sync.close()
                self._sync = None
            self._async.clear()


def _raw(response: httpx.Response, body: bytearray) -> Raw:
    headers = {k.lower(): v for k, v in response.headers.items()}
    return Raw(response.status_code, str(response.url), headers, bytes(body))


def _translate(req: Prepared, exc: Exception) -> Exception:
    """httpx's error as ours: a URL or redirect that cannot be sent fails for good; a
    timeout or a broken connection is a retryable ``ConnectionFailed``."""
    what = f"{req.method} {req.url}"
    if isinstance(exc, httpx.InvalidURL | httpx.UnsupportedProtocol | httpx.TooManyRedirects):
        return ClientStatusError(req.method, req.url, 0, f"cannot send: {exc}")
    if isinstance(exc, httpx.TimeoutException):
        return ConnectionFailed(f"{what} timed out ({type(exc).__name__}: {exc})")
    return ConnectionFailed(f"{what} failed: {type(exc).__name__}: {exc}")
