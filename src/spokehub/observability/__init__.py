"""Observability: OpenTelemetry traces, Prometheus metrics and structured logs.

Needs the ``server`` extra (``pip install 'spokehub[server]'``); ``import spokehub`` alone
never imports OpenTelemetry or prometheus_client.

Example:
    >>> from spokehub.observability import Observability, configure_logging
    >>> configure_logging(fmt="json")
    >>> obs = Observability()
    >>> obs.instrument(client)  # doctest: +SKIP
"""

from spokehub.observability.logs import configure_logging
from spokehub.observability.metrics import Metrics
from spokehub.observability.propagation import inject_headers, request_span, traceparent_hooks
from spokehub.observability.setup import Observability
from spokehub.observability.tracing import TracingInterceptor

__all__ = [
    "Metrics",
    "Observability",
    "TracingInterceptor",
    "configure_logging",
    "inject_headers",
    "request_span",
    "traceparent_hooks",
]
