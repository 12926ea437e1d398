"""Carrying the current trace across HTTP: ``traceparent`` out, and in.

Outgoing headers use the process's configured propagator (W3C trace context by default), so
a step that calls a service shows that service's spans under the step's span.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Literal, overload

from opentelemetry import propagate, trace
from opentelemetry.trace import Span, SpanKind, TracerProvider

from spokehub.observability.tracing import INSTRUMENTATION

if TYPE_CHECKING:  # httpx is only needed by the code that passes these hooks to it
    import httpx

Headers = MutableMapping[str, str]


def inject_headers(headers: Headers) -> Headers:
    """Add the current trace context (``traceparent``, ``tracestate``) to ``headers``.

    Example:
        >>> headers = inject_headers({"accept": "application/json"})  # doctest: +SKIP
        >>> urllib.request.Request(url, headers=headers)
    """
    propagate.inject(headers)
    return headers


def _inject_request(request: httpx.Request) -> None:
    propagate.inject(request.headers)


async def _inject_request_async(request: httpx.Request) -> None:
    propagate.inject(request.headers)


@overload
def traceparent_hooks(
    *, sync: Literal[False] = False
) -> dict[str, list[Callable[[httpx.Request], Awaitable[None]]]]: ...
@overload
def traceparent_hooks(
    *, sync: Literal[True]
) -> dict[str, list[Callable[[httpx.Request], None]]]: ...
def traceparent_hooks(*, sync: bool = False) -> dict[str, list[Any]]:
    """httpx ``event_hooks`` that send the current trace context with every request.

    Example:
        >>> async with httpx.AsyncClient(event_hooks=traceparent_hooks()) as http:
        ...     await http.post(url, json=body)  # doctest: +SKIP
        >>> httpx.Client(event_hooks=traceparent_hooks(sync=True))  # doctest: +SKIP
    """
    return {"request": [_inject_request if sync else _inject_request_async]}


@contextmanager
def request_span(
    name: str,
    headers: Mapping[str, str],
    *,
    tracer_provider: TracerProvider | None = None,
    attributes: Mapping[str, str | int] | None = None,
) -> Iterator[Span]:
    """A SERVER span for an incoming request, child of the caller's ``traceparent`` if sent.

    Runs started inside it join the caller's trace.
    """
    parent = propagate.extract(dict(headers))
    tracer = trace.get_tracer(INSTRUMENTATION, tracer_provider=tracer_provider)
    with tracer.start_as_current_span(
        name, context=parent, kind=SpanKind.SERVER, attributes=dict(attributes or {})
    ) as span:
        yield span
