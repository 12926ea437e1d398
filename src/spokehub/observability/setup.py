"""One object that instruments a client: traces, metrics, and the run facts they share."""

from __future__ import annotations

from opentelemetry.trace import TracerProvider
from prometheus_client import CollectorRegistry

from spokehub.errors import SpokehubError
from spokehub.observability.metrics import Metrics
from spokehub.observability.runs import RunDirectory
from spokehub.observability.tracing import TracingInterceptor
from spokehub.runtime.client import Client
from spokehub.runtime.interceptors import Interceptor


class Observability:
    """Tracing and metrics for the runs a client starts and its workers execute.

    Args:
        tracer_provider: where spans go (default: OpenTelemetry's global provider, which
            the application configures with its exporter).
        registry: where metrics go (default: a new ``CollectorRegistry`` of its own).

    Example:
        >>> obs = Observability()
        >>> client = Client("sqlite:///app.db")  # doctest: +SKIP
        >>> obs.instrument(client)  # before workers start
        >>> body, content_type = await obs.render()  # for GET /metrics
    """

    def __init__(
        self,
        *,
        tracer_provider: TracerProvider | None = None,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.runs = RunDirectory()
        self.tracing = TracingInterceptor(self.runs, tracer_provider)
        self.metrics = Metrics(self.runs, registry)
        self._client: Client | None = None

    @property
    def interceptors(self) -> tuple[Interceptor, ...]:
        """The directory first: it must know a new run before the others observe it."""
        return (self.runs, self.tracing, self.metrics)

    def instrument(self, client: Client) -> Client:
        """Add the interceptors to ``client`` (outermost) and read run facts from its store."""
        if self._client is not None:
            raise SpokehubError("this Observability already instruments a client; make another")
        self._client = client
        self.runs.store = client.store
        client.interceptors = (*self.interceptors, *client.interceptors)
        return client

    async def render(self) -> tuple[bytes, str]:
        """The Prometheus exposition (bytes) and its content type, gauges fresh from the store."""
        if self._client is None:
            raise SpokehubError("call obs.instrument(client) before rendering metrics")
        await self._client.ensure_schema()
        return await self.metrics.render(self._client.store, self._client.clock.now())

    async def settle(self) -> None:
        """Wait for observations that still wait on a store read (at shutdown, in tests)."""
        await self.runs.settle()
