"""``http-cms``: a REST content service; entries upserted by external id with optimistic locking.

Wire contract (what ``spokehub.distribution.demo.cms`` serves, and what a real CMS adapter
maps to): ``GET/PUT/DELETE {baseUrl}/entries/{type}/{id}`` with ``ETag``/``If-Match`` (and
``If-None-Match: *`` to create), an ``Idempotency-Key`` header on every write, the owner in
``meta.managedBy``, ``GET {baseUrl}/entries?space=`` to list and ``GET {baseUrl}/health``.
Keys are ``type/id``; the content is the entry's ``data`` as canonical JSON. Every call goes
through the integrations HTTP connector (``outbound.exchange``): egress guard, breaker, rate
limit, timeouts, size cap.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from spokehub.distribution.adapters.base import (
    BaseAdapter,
    applied,
    capabilities,
    check_precondition,
)
from spokehub.distribution.adapters.outbound import exchange
from spokehub.distribution.errors import AdapterError, PreconditionFailed
from spokehub.distribution.model import (
    Action,
    ApplyContext,
    Health,
    HealthStatus,
    Observed,
    Op,
    OpResult,
    Precondition,
    Scope,
    canonical_json,
)
from spokehub.integrations import Response


class HttpCmsAdapter(BaseAdapter):
    """Upsert entries in a CMS space over HTTP (``config.baseUrl``, ``config.space``)."""

    kind = "http-cms"
    CAPABILITIES = capabilities("read", "delete", "conditional_write", ownership="metadata-field")

    def _configure(self) -> None:
        self.base = self._required(
            "baseUrl", "an http-cms target needs spec.config.baseUrl"
        ).rstrip("/")
        self.space = str(self.config.get("space", "default"))
        self.auth = {"Authorization": f"Bearer {self.credentials}"} if self.credentials else {}

    def canonicalize(self, key: str, data: bytes) -> bytes:
        try:
            return canonical_json(json.loads(data))
        except ValueError as exc:
            raise AdapterError(f"{key}: CMS entries are JSON ({exc})") from exc

    def _url(self, key: str) -> str:
        if key.count("/") != 1:
            raise AdapterError(f"CMS keys are 'type/id', got {key!r}")
        return f"{self.base}/entries/{key}?space={self.space}"

    def _request(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        answers: Sequence[int] = (),
        **request: Any,
    ) -> Response:
        """One exchange; a 4xx in ``answers`` is returned, any other failure is AdapterError."""
        both = {**self.auth, **(headers or {})}
        return exchange(self.config, method, url, headers=both, answers=answers, **request)

    def _observed(self, key: str, body: Any, etag: str | None) -> Observed:
        if not isinstance(body, dict) or "data" not in body:
            raise AdapterError(f"{key}: the CMS answered something that is not an entry")
        meta = body.get("meta") or {}
        return Observed(key, canonical_json(body["data"]), etag=etag, owner=meta.get("managedBy"))

    def read(self, keys: Sequence[str]) -> Mapping[str, Observed | None]:
        out: dict[str, Observed | None] = {}
        for key in keys:
            self.calls["read"] += 1
            resp = self._request("GET", self._url(key), answers=(404,))
            if resp.status == 404:
                out[key] = None
                continue
            if resp.status != 200:
                raise AdapterError(f"GET {key}: HTTP {resp.status}")
            out[key] = self._observed(key, _json(resp, key), resp.headers.get("etag"))
        return out

    def discover(self, scope: Scope) -> Iterable[Observed]:
        self.calls["discover"] += 1
        resp = self._request("GET", f"{self.base}/entries", params={"space": self.space})
        if resp.status != 200:
            raise AdapterError(f"listing entries: HTTP {resp.status}")
        listing = _json(resp, "entries")
        items = listing.get("items", []) if isinstance(listing, dict) else None
        if not isinstance(items, list) or not all(_is_item(it) for it in items):
            raise AdapterError("listing entries: the CMS answered something that is not a list")
        return [
            self._observed(f"{it['type']}/{it['id']}", it, it.get("etag"))
            for it in items
            if f"{it['type']}/{it['id']}".startswith(scope.prefix)
        ]

    def apply(
        self, op: Op, *, idempotency_key: str, expect: Precondition | None, ctx: ApplyContext
    ) -> OpResult:
        current = self.read([op.key])[op.key]
        if check_precondition(op.key, current, op, expect):
            return applied(op, changed=False, detail="already applied")
        headers = {"Idempotency-Key": idempotency_key}
        if current is None:
            headers["If-None-Match"] = "*"
        elif current.etag:
            headers["If-Match"] = current.etag
        if op.action is Action.DELETE:
            resp = self._request("DELETE", self._url(op.key), headers=headers, answers=(412,))
            self.calls["delete"] += 1
        else:
            body = {
                "data": json.loads(op.data or b"null"),
                "meta": {"managedBy": ctx.owner, "release": ctx.release},
            }
            resp = self._request(
                "PUT", self._url(op.key), json=body, headers=headers, answers=(412,)
            )
            self.calls["write"] += 1
        if resp.status == 412:
            raise PreconditionFailed(f"{op.key}: changed at the CMS while applying; plan again")
        if resp.status >= 300:
            raise AdapterError(f"{op.action} {op.key}: HTTP {resp.status} {resp.text[:200]}")
        return applied(op)

    def health(self, results: Sequence[OpResult]) -> Health:
        try:
            resp = self._request("GET", f"{self.base}/health")
            answer = _json(resp, "/health")
        except AdapterError as exc:
            return Health(HealthStatus.DEGRADED, f"health check failed: {exc}")
        if resp.status != 200 or not isinstance(answer, dict) or not answer.get("ok"):
            return Health(
                HealthStatus.DEGRADED, f"/health answered {resp.status} {resp.text[:100]}"
            )
        return Health(HealthStatus.HEALTHY, "CMS /health ok")


def _is_item(item: Any) -> bool:
    return isinstance(item, dict) and "type" in item and "id" in item


def _json(resp: Response, what: str) -> Any:
    try:
        return json.loads(resp.text)
    except ValueError as exc:
        raise AdapterError(f"{what}: the CMS answered non-JSON ({resp.text[:80]!r})") from exc
