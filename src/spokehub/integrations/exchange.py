"""One HTTP exchange, in pieces shared by the async and the sync path.

``prepare`` (checks and headers) and ``finish`` (status, body, contract) are plain functions;
only sending differs between the two paths, so no logic is written twice.
"""

from __future__ import annotations

import hashlib
import json as jsonlib
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel

from spokehub.integrations.contracts import Contract
from spokehub.integrations.egress import EgressPolicy
from spokehub.integrations.errors import (
    ClientStatusError,
    ContractViolation,
    HttpStatusError,
    IntegrationError,
)
from spokehub.runtime.context import current_step


class Response(BaseModel):
    """A completed HTTP exchange as recorded in the ledger.

    Attributes:
        status: the final status (after redirects).
        url: the final URL.
        headers: response headers (lower-case names).
        text: the body as text.
        body: the body parsed as JSON when it is JSON (validated by the contract if one is
            given), else None.
    """

    status: int
    url: str
    headers: dict[str, str]
    text: str
    body: Any = None


class ConnectionFailed(IntegrationError):
    """The request did not complete: connection refused or reset, a timeout (retried)."""

    code = "http_connection"


@dataclass(frozen=True, slots=True)
class Prepared:
    method: str
    url: str
    authority: str  # host:port, the key of the breaker and the rate limit
    host: str
    headers: dict[str, str]
    body: Any
    params: dict[str, str] | None
    contract: Contract | None
    content: str | bytes | None = None  # a body sent as is (instead of ``body`` as JSON)

    def payload(self) -> dict[str, Any]:
        """httpx's keyword for the body: exact text or bytes, or JSON."""
        if isinstance(self.content, str):
            return {"content": self.content.encode()}
        if self.content is not None:
            return {"content": self.content}
        return {"json": self.body}


@dataclass(frozen=True, slots=True)
class Raw:
    status: int
    url: str
    headers: dict[str, str]
    content: bytes


def split_authority(url: str) -> tuple[str, str]:
    """(host, host:port) of an http(s) URL; ValueError for anything else."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{url!r} is not an http(s) URL with a host")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise ValueError(f"{url!r} has an invalid port") from None
    return parts.hostname.lower(), f"{parts.hostname.lower()}:{port}"


def prepare(
    method: str,
    url: str,
    *,
    body: Any,
    params: dict[str, str] | None,
    headers: dict[str, str] | None,
    contract: Contract | None,
    auth_header: tuple[str, str] | None,
    policy: EgressPolicy,
    content: str | bytes | None = None,
) -> Prepared:
    """Check the request (egress of a literal address, contract) and build its headers."""
    try:
        host, authority = split_authority(url)
    except ValueError as exc:
        raise ClientStatusError(method, url, 0, str(exc)) from None
    policy.check_host(host)  # a literal internal address is refused before anything else
    if contract is not None and body is not None:
        body = contract.validate("request", body)
    out = {k.lower(): v for k, v in (headers or {}).items()}
    ctx = current_step()
    if ctx is not None:
        out.setdefault("idempotency-key", ctx.idempotency_key)
    if "traceparent" not in out:
        out.update(
            _trace_headers(ctx.run_id if ctx else None, ctx.idempotency_key if ctx else None)
        )
    if auth_header is not None:
        out[auth_header[0].lower()] = auth_header[1]
    return Prepared(method.upper(), url, authority, host, out, body, params, contract, content)


def _trace_headers(run_id: str | None, key: str | None) -> dict[str, str]:
    """The current OpenTelemetry context if tracing is on, else one derived from the run.

    Derived ids are stable for a step (trace per run, span per step), so the far side can
    group the attempts of one step and the steps of one run even without a tracer.
    """
    carrier: dict[str, str] = {}
    try:
        from opentelemetry import propagate
    except ImportError:  # the server extra is not installed
        pass
    else:
        propagate.inject(carrier)
    if "traceparent" in carrier or run_id is None:
        return carrier
    trace_id = hashlib.blake2b(run_id.encode(), digest_size=16).hexdigest()
    span_id = hashlib.blake2b((key or run_id).encode(), digest_size=8).hexdigest()
    return {"traceparent": f"00-{trace_id}-{span_id}-01"}


def retry_after(value: str | None, now: float) -> float | None:
    """Seconds a ``Retry-After`` header asks to wait (delta-seconds or an HTTP date)."""
    if not value:
        return None
    text = value.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - now)


def finish(req: Prepared, raw: Raw, now: float) -> Response:
    """Turn a received answer into a Response, or the error the retry policy acts on."""
    text = raw.content.decode("utf-8", errors="replace")
    if raw.status == 429 or raw.status >= 500:
        wait = retry_after(raw.headers.get("retry-after"), now)
        raise HttpStatusError(req.method, req.url, raw.status, text, retry_after=wait)
    if raw.status >= 400:
        raise ClientStatusError(req.method, req.url, raw.status, text)
    body = _parse(raw, text)
    if req.contract is not None and req.contract.response is not None:
        if body is _NOT_JSON:
            raise ContractViolation(req.contract.ref, "response", "$", "the body is not JSON")
        body = req.contract.validate("response", body)
    return Response(
        status=raw.status,
        url=raw.url,
        headers=raw.headers,
        text=text,
        body=None if body is _NOT_JSON else body,
    )


_NOT_JSON: Any = object()


def _parse(raw: Raw, text: str) -> Any:
    kind = raw.headers.get("content-type", "")
    if not raw.content or ("json" not in kind and not text.lstrip().startswith(("{", "["))):
        return _NOT_JSON
    try:
        return jsonlib.loads(text)
    except ValueError:
        return _NOT_JSON
