"""The ASGI application: ``create_app(config)`` wires the API, webhooks, health and metrics.

Layout: ``/api/v1`` (REST, spec at ``/api/v1/openapi.json``, docs at ``/api/v1/docs``),
``/hooks/{name}`` (webhooks), ``/ui`` (dashboard), ``/healthz``, ``/readyz``, ``/metrics``.

Example:
    >>> config = ServerConfig(secret=load_secret(settings), settings=settings)  # doctest: +SKIP
    >>> uvicorn.run(create_app(config), host=config.host, port=config.port)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator
from typing import Annotated, Literal, cast
from urllib.parse import quote

from fastapi import APIRouter, Depends, FastAPI, Request, Response
from fastapi.responses import JSONResponse, RedirectResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from spokehub import __version__
from spokehub.governance.wiring import govern
from spokehub.integrations import http, starts
from spokehub.integrations.metrics import ConnectorMetrics
from spokehub.integrations.outbox import install_outbox, outbox_from_env
from spokehub.integrations.webhooks import WEBHOOKS
from spokehub.observability import Observability, configure_logging
from spokehub.ops.hooks import load_hooks
from spokehub.ops.tokens import Permission
from spokehub.runtime.client import Client
from spokehub.runtime.definitions import REGISTRY
from spokehub.runtime.loader import import_app
from spokehub.runtime.worker import Worker
from spokehub.server import ai, api, approval_links, audit, dashboard, hooks, integrations_api
from spokehub.server import distribution as dist_routes
from spokehub.server.auth import LoginRequired, Principal, public, require
from spokehub.server.config import ServerConfig
from spokehub.server.errors import ERROR_RESPONSES, error_response, install_error_handlers
from spokehub.server.headers import SecurityHeadersMiddleware
from spokehub.server.limits import BodyLimitMiddleware
from spokehub.server.models import Health
from spokehub.server.ratelimit import LoginLimiter
from spokehub.server.state import MetricsRenderer, ServerState, StateDep

__all__ = ["HostCheckMiddleware", "create_app", "create_app_from_env"]

log = logging.getLogger("spokehub.server")


def create_app(
    config: ServerConfig,
    *,
    client: Client | None = None,
    metrics: MetricsRenderer | None = None,
) -> FastAPI:
    """The server's ASGI app.

    Args:
        config: where it listens, its secret, hooks file and whether it runs a worker.
        client: the client to use (then the caller closes it); by default one is opened on
            ``config.settings``, instrumented with ``Observability`` (traces, metrics), and
            closed at shutdown.
        metrics: what ``/metrics`` serves (default: that ``Observability``, when the app opens
            its own client; none otherwise).
    """
    owned = client is None
    if client is None:
        client = Client(settings=config.settings)
        if metrics is None:
            # Before any worker or start: the interceptors must see every run from its start.
            obs = Observability()
            obs.instrument(client)
            ConnectorMetrics(obs.metrics.registry).attach(http)  # breakers on /metrics
            metrics = obs
        govern(client)  # policies of SPOKEHUB_POLICY_DIR, when set
        starts.enable(client)  # wf.options(debounce=..., throttle=...) through the API
        http.use_database(config.settings.database_url)  # the hosts it shows are shared
        if outbox_from_env():  # runs started here write their domain events too
            install_outbox(client)
            WEBHOOKS.bind(client)
    metrics = ai.llm_metrics(metrics, client)
    state = ServerState(
        client=client,
        config=config,
        hooks=load_hooks(config.hooks_file) if config.hooks_file else {},
        metrics=metrics,
        login_limiter=LoginLimiter(attempts=config.login_attempts, window=config.login_window),
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await state.client.ensure_schema()
        await audit.record_server_start(state)
        worker_task = _start_worker(state.client) if config.worker else None
        try:
            yield
        finally:
            if worker_task is not None:
                await _stop_worker(*worker_task)
            if owned:
                await state.client.close_async()

    app = FastAPI(
        title="spokehub",
        version=__version__,
        summary="Start, inspect and steer durable workflow runs.",
        openapi_url="/api/v1/openapi.json",
        docs_url="/api/v1/docs",
        redoc_url=None,
        swagger_ui_oauth2_redirect_url=None,
        lifespan=lifespan,
    )
    app.state.spokehub = state
    install_error_handlers(app)
    app.add_exception_handler(LoginRequired, _on_login_required)
    app.add_middleware(BodyLimitMiddleware, max_bytes=config.settings.max_input_bytes)
    app.add_middleware(HostCheckMiddleware, names=config.host_names())
    app.add_middleware(SecurityHeadersMiddleware)
    app.include_router(api.router)
    app.include_router(hooks.router)
    app.include_router(integrations_api.router)
    app.include_router(_probes)
    app.include_router(dashboard.router)
    app.include_router(audit.api_router)
    app.include_router(audit.ui_router)
    app.include_router(approval_links.router)
    app.include_router(ai.router)
    app.include_router(dist_routes.api_router)
    app.include_router(dist_routes.ui_router)
    return app


def create_app_from_env() -> FastAPI:
    """The app configured by ``SPOKEHUB_SERVER_*`` variables (see ``ServerConfig.from_env``).

    ``SPOKEHUB_SERVER_APPS`` (comma-separated modules or .py files) is imported first, so that
    the workflows are registered before the app and its worker start.
    """
    log_format = os.environ.get("SPOKEHUB_SERVER_LOG_FORMAT", "")
    if log_format in ("json", "text"):
        level = os.environ.get("SPOKEHUB_SERVER_LOG_LEVEL", "") or "INFO"
        configure_logging(cast(Literal["json", "text"], log_format), level.upper())
    for ref in os.environ.get("SPOKEHUB_SERVER_APPS", "").split(","):
        if ref.strip():
            import_app(ref.strip())
    return create_app(ServerConfig.from_env())


def _start_worker(client: Client) -> tuple[Worker, asyncio.Task[None]] | None:
    queues = sorted({wf.queue for wf in REGISTRY.workflows.values()})
    if not queues:
        log.warning("no workflows are registered, so the embedded worker is not started")
        return None
    worker = Worker(client, queues=queues)
    return worker, asyncio.create_task(worker.run(), name="spokehub-worker")


async def _stop_worker(worker: Worker, task: asyncio.Task[None]) -> None:
    worker.stop()
    try:
        await asyncio.wait_for(task, timeout=10)
    except (TimeoutError, asyncio.CancelledError):  # runs in flight resume from their ledger
        task.cancel()


async def _on_login_required(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, LoginRequired)
    return RedirectResponse(f"{exc.login_url}?next={quote(exc.next_path)}", status_code=303)


class HostCheckMiddleware:
    """Refuse a ``Host`` header that is not ours (DNS rebinding), with the JSON error body."""

    def __init__(self, app: ASGIApp, *, names: frozenset[str]) -> None:
        self.app = app
        self.names = names

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        host = ""
        for key, value in scope["headers"]:
            if key == b"host":
                host = value.decode("latin-1").lower()
                break
        name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
        if name in self.names:
            await self.app(scope, receive, send)
            return
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})  # policy violation
            return
        response = error_response(
            400,
            "host_not_allowed",
            f"Host {host!r} is not served here; add it with `spokehub serve --allowed-host NAME` "
            "if this server really answers to that name",
            scope.get("path", ""),
        )
        await response(scope, receive, send)


_probes = APIRouter(tags=["health"], responses=ERROR_RESPONSES)


@_probes.get("/healthz", response_model=Health, dependencies=[Depends(public("liveness probe"))])
async def healthz() -> Health:
    """The process is up."""
    return Health(status="ok")


@_probes.get(
    "/readyz",
    response_model=Health,
    dependencies=[Depends(public("readiness probe"))],
    responses={503: {"model": Health, "description": "The database is not reachable"}},
)
async def readyz(state: StateDep) -> Response:
    """The database answers and its schema is current."""
    try:
        await state.client.store.schema_version()
    except Exception as exc:  # any failure means "not ready"; the reason goes to the log
        log.warning("readiness check failed: %s", exc)
        return JSONResponse({"status": "unavailable"}, status_code=503)
    return JSONResponse({"status": "ok"})


@_probes.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}, "description": "Prometheus exposition"}},
)
async def metrics(
    state: StateDep, _: Annotated[Principal, Depends(require(Permission.READ))]
) -> Response:
    """Prometheus metrics (scrape with a viewer token: ``authorization: credentials``)."""
    if state.metrics is None:
        return error_response(
            404, "not_found", "metrics are not enabled in this server", "/metrics"
        )
    body, media_type = await state.metrics.render()
    return Response(body, media_type=media_type)
