"""A Python client for the HTTP API of ``spokehub serve`` (needs the ``client`` extra: httpx).

``RemoteClient`` (sync) and ``AsyncRemoteClient`` share everything but the transport: each
operation is described once as a ``Call`` (method, path, query, body, how to decode the answer)
by ``Calls``; the two clients only send it with ``httpx.Client`` or ``httpx.AsyncClient``.
Errors come back as the spokehub exceptions they are on the server (``RunNotFound``,
``RunIdConflict``, ``InvalidRunState``, ...) or as ``RemoteError`` with the status and code.

Example:
    >>> with RemoteClient("http://127.0.0.1:8321", token="shk_...") as api:  # doctest: +SKIP
    ...     run = api.start("order_saga", {"order_id": "o-1"}, run_id="order-o-1")
    ...     api.get_run(run.id).status
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar
from urllib.parse import quote, unquote

import httpx

from spokehub.engine.validation import check_payload
from spokehub.errors import (
    ApprovalClosed,
    ApprovalForbidden,
    DuplicateVote,
    InputTooLarge,
    InvalidInput,
    InvalidRunState,
    RunIdConflict,
    RunNotFound,
    SerializationError,
    SpokehubError,
    WorkflowNotFound,
)
from spokehub.types import JSON, RunStatus

__all__ = ["AsyncRemoteClient", "Call", "Calls", "RemoteClient", "RemoteError", "RemoteRun"]

T = TypeVar("T")


class RemoteError(SpokehubError):
    """An error answer of the server that has no spokehub exception of its own."""

    code = "remote"

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class RemoteRun:
    """A run as the API returns it; ``data`` holds every field (and, from ``get_run``, the
    ``steps``, ``run_events`` and raw ``events`` of its ledger)."""

    id: str
    workflow: str
    status: RunStatus
    result: JSON
    error: dict[str, Any] | None
    created_at: float
    finished_at: float | None
    data: dict[str, Any] = field(repr=False)

    @classmethod
    def from_json(cls, data: Any) -> RemoteRun:
        return cls(
            id=data["id"],
            workflow=data["workflow"],
            status=RunStatus(data["status"]),
            result=data.get("result"),
            error=data.get("error"),
            created_at=data["created_at"],
            finished_at=data.get("finished_at"),
            data=data,
        )


@dataclass(frozen=True, slots=True)
class Call(Generic[T]):
    """One request to make, and how to turn its JSON answer into the result."""

    method: str
    path: str
    decode: Callable[[Any], T]
    params: dict[str, Any] | None = None
    body: Any = None

    def __post_init__(self) -> None:
        # Text that cannot be sent as UTF-8 JSON fails here with the server's error, not
        # deep in httpx; the size limit is the server's to apply (it answers 413).
        if self.body is not None:
            check_payload(self.body, "the request body", max_bytes=None)


def _runs(data: Any) -> list[RemoteRun]:
    return [RemoteRun.from_json(item) for item in data]


def _raw(data: Any) -> Any:
    return data


def _none(data: Any) -> None:
    return None


def _decision(data: Any) -> str:
    name: str = data["name"]
    return name


class Calls:
    """The API's operations as ``Call`` values (shared by the sync and async clients)."""

    @staticmethod
    def start(
        workflow: str, input: Mapping[str, JSON] | None, run_id: str | None
    ) -> Call[RemoteRun]:
        body = {"workflow": workflow, "input": dict(input or {}), "run_id": run_id}
        return Call("POST", "/api/v1/runs", RemoteRun.from_json, body=body)

    @staticmethod
    def get_run(run_id: str) -> Call[RemoteRun]:
        return Call("GET", f"/api/v1/runs/{_segment(run_id)}", RemoteRun.from_json)

    @staticmethod
    def list_runs(
        *,
        status: RunStatus | str | None,
        workflow: str | None,
        limit: int,
        created_after: float | None,
        created_before: float | None,
        search: str | None,
    ) -> Call[list[RemoteRun]]:
        params = {
            "status": None if status is None else RunStatus(status).value,
            "workflow": workflow,
            "limit": limit,
            "created_after": created_after,
            "created_before": created_before,
            "search": search,
        }
        kept = {k: v for k, v in params.items() if v is not None}
        return Call("GET", "/api/v1/runs", _runs, params=kept)

    @staticmethod
    def send_signal(run_id: str, name: str, payload: JSON) -> Call[None]:
        body = {"name": name, "payload": payload}
        return Call("POST", f"/api/v1/runs/{_segment(run_id)}/signals", _none, body=body)

    @staticmethod
    def decide(run_id: str, verb: str, name: str | None, comment: str | None) -> Call[str]:
        body = {"name": name, "comment": comment}
        return Call("POST", f"/api/v1/runs/{_segment(run_id)}/{verb}", _decision, body=body)

    @staticmethod
    def cancel(run_id: str) -> Call[RemoteRun]:
        return Call("POST", f"/api/v1/runs/{_segment(run_id)}/cancel", RemoteRun.from_json)

    @staticmethod
    def fork(run_id: str, from_step: int, new_run_id: str | None) -> Call[RemoteRun]:
        body = {"from_step": from_step, "new_run_id": new_run_id}
        path = f"/api/v1/runs/{_segment(run_id)}/fork"
        return Call("POST", path, RemoteRun.from_json, body=body)

    @staticmethod
    def listing(what: str) -> Call[list[dict[str, Any]]]:
        """``queues``, ``workers`` or ``workflows``."""
        return Call("GET", f"/api/v1/{what}", _raw)


def _segment(text: str) -> str:
    """A run id as one path segment (ids may hold ``?`` or ``#``)."""
    return quote(text, safe="")


_ERRORS: dict[str, Callable[[str, Call[Any]], SpokehubError]] = {
    "run_id_conflict": lambda message, _: RunIdConflict(message),
    "invalid_state": lambda message, _: InvalidRunState(message),
    "approval_closed": lambda message, _: ApprovalClosed(message),
    "duplicate_vote": lambda message, _: DuplicateVote(message),
    "approval_forbidden": lambda message, _: ApprovalForbidden(message),
    "workflow_not_found": lambda message, _: WorkflowNotFound(message),
    "serialization": lambda message, _: SerializationError(message),
    "invalid_input": lambda message, _: InvalidInput(message),
    "too_large": lambda message, _: InputTooLarge(message),
}


def _result(response: httpx.Response, call: Call[T]) -> T:
    """The decoded answer, or the error it carries raised as a spokehub exception."""
    if response.is_success:
        return call.decode(response.json() if response.content else None)
    try:
        error = response.json()["error"]
        code, message = str(error["code"]), str(error["message"])
    except (ValueError, KeyError, TypeError):
        code, message = f"http_{response.status_code}", response.text[:500]
    if code == "run_not_found":
        raise RunNotFound(_run_id_of(call.path))
    factory = _ERRORS.get(code)
    if factory is not None:
        raise factory(message, call)
    raise RemoteError(response.status_code, code, message)


def _run_id_of(path: str) -> str:
    parts = path.split("/")
    return unquote(parts[4]) if len(parts) > 4 else ""


class _Base:
    def __init__(self, url: str, token: str) -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"{url!r} is not an http(s) URL, e.g. http://127.0.0.1:8321")
        self.url = url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}


class RemoteClient(_Base):
    """The HTTP API, synchronously. See the module docstring for an example.

    Args:
        url: the server, e.g. ``http://127.0.0.1:8321``.
        token: an API token (``spokehub tokens create``).
        timeout: seconds per request.
        transport: an httpx transport (tests, proxies).
    """

    def __init__(
        self,
        url: str,
        token: str,
        *,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        super().__init__(url, token)
        self._http = httpx.Client(
            base_url=self.url, headers=self._headers, timeout=timeout, transport=transport
        )

    def _send(self, call: Call[T]) -> T:
        response = self._http.request(call.method, call.path, params=call.params, json=call.body)
        return _result(response, call)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> RemoteClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(
        self, workflow: str, input: Mapping[str, JSON] | None = None, *, run_id: str | None = None
    ) -> RemoteRun:
        """Start a run; idempotent by ``run_id``."""
        return self._send(Calls.start(workflow, input, run_id))

    def get_run(self, run_id: str) -> RemoteRun:
        return self._send(Calls.get_run(run_id))

    def list_runs(
        self,
        *,
        status: RunStatus | str | None = None,
        workflow: str | None = None,
        limit: int = 100,
        created_after: float | None = None,
        created_before: float | None = None,
        search: str | None = None,
    ) -> list[RemoteRun]:
        return self._send(
            Calls.list_runs(
                status=status,
                workflow=workflow,
                limit=limit,
                created_after=created_after,
                created_before=created_before,
                search=search,
            )
        )

    def send_signal(self, run_id: str, name: str, payload: JSON = None) -> None:
        self._send(Calls.send_signal(run_id, name, payload))

    def approve(self, run_id: str, *, name: str | None = None, comment: str | None = None) -> str:
        """Approve the pending approval; returns its name."""
        return self._send(Calls.decide(run_id, "approve", name, comment))

    def reject(self, run_id: str, *, name: str | None = None, comment: str | None = None) -> str:
        return self._send(Calls.decide(run_id, "reject", name, comment))

    def cancel(self, run_id: str) -> RemoteRun:
        return self._send(Calls.cancel(run_id))

    def fork(self, run_id: str, *, from_step: int, new_run_id: str | None = None) -> RemoteRun:
        return self._send(Calls.fork(run_id, from_step, new_run_id))

    def queues(self) -> list[dict[str, Any]]:
        return self._send(Calls.listing("queues"))

    def workers(self) -> list[dict[str, Any]]:
        return self._send(Calls.listing("workers"))

    def workflows(self) -> list[dict[str, Any]]:
        return self._send(Calls.listing("workflows"))


class AsyncRemoteClient(_Base):
    """The async twin of ``RemoteClient``: the same methods, awaited."""

    def __init__(
        self,
        url: str,
        token: str,
        *,
        timeout: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        super().__init__(url, token)
        self._http = httpx.AsyncClient(
            base_url=self.url, headers=self._headers, timeout=timeout, transport=transport
        )

    async def _send(self, call: Call[T]) -> T:
        response = await self._http.request(
            call.method, call.path, params=call.params, json=call.body
        )
        return _result(response, call)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncRemoteClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def start(
        self, workflow: str, input: Mapping[str, JSON] | None = None, *, run_id: str | None = None
    ) -> RemoteRun:
        """Start a run; idempotent by ``run_id``."""
        return await self._send(Calls.start(workflow, input, run_id))

    async def get_run(self, run_id: str) -> RemoteRun:
        return await self._send(Calls.get_run(run_id))

    async def list_runs(
        self,
        *,
        status: RunStatus | str | None = None,
        workflow: str | None = None,
        limit: int = 100,
        created_after: float | None = None,
        created_before: float | None = None,
        search: str | None = None,
    ) -> list[RemoteRun]:
        return await self._send(
            Calls.list_runs(
                status=status,
                workflow=workflow,
                limit=limit,
                created_after=created_after,
                created_before=created_before,
                search=search,
            )
        )

    async def send_signal(self, run_id: str, name: str, payload: JSON = None) -> None:
        await self._send(Calls.send_signal(run_id, name, payload))

    async def approve(
        self, run_id: str, *, name: str | None = None, comment: str | None = None
    ) -> str:
        """Approve the pending approval; returns its name."""
        return await self._send(Calls.decide(run_id, "approve", name, comment))

    async def reject(
        self, run_id: str, *, name: str | None = None, comment: str | None = None
    ) -> str:
        return await self._send(Calls.decide(run_id, "reject", name, comment))

    async def cancel(self, run_id: str) -> RemoteRun:
        return await self._send(Calls.cancel(run_id))

    async def fork(
        self, run_id: str, *, from_step: int, new_run_id: str | None = None
    ) -> RemoteRun:
        return await self._send(Calls.fork(run_id, from_step, new_run_id))

    async def queues(self) -> list[dict[str, Any]]:
        return await self._send(Calls.listing("queues"))

    async def workers(self) -> list[dict[str, Any]]:
        return await self._send(Calls.listing("workers"))

    async def workflows(self) -> list[dict[str, Any]]:
        return await self._send(Calls.listing("workflows"))
