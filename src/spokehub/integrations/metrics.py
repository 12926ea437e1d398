"""Prometheus metrics of a connector's circuit breakers (needs ``prometheus_client``)."""

from __future__ import annotations

from typing import Any

from spokehub.integrations.connector import HttpConnector

_LEVEL = {"closed": 0.0, "half_open": 1.0, "open": 2.0}


class ConnectorMetrics:
    """``spokehub_http_breaker_state{host}`` (0 closed, 1 half-open, 2 open) and
    ``spokehub_http_breaker_transitions_total{host,state}``, fed by breaker transitions.

    Example:
        >>> ConnectorMetrics(registry).attach(http)  # doctest: +SKIP
    """

    def __init__(self, registry: Any) -> None:
        from prometheus_client import Counter, Gauge

        self.state = Gauge(
            "spokehub_http_breaker_state",
            "Circuit breaker state per host (0 closed, 1 half-open, 2 open).",
            ["host"],
            registry=registry,
        )
        self.transitions = Counter(
            "spokehub_http_breaker_transitions",
            "Circuit breaker state changes seen by this process.",
            ["host", "state"],
            registry=registry,
        )

    def observe(self, host: str, state: str) -> None:
        self.state.labels(host=host).set(_LEVEL.get(state, -1.0))
        self.transitions.labels(host=host, state=state).inc()

    def attach(self, connector: HttpConnector) -> ConnectorMetrics:
        connector.on_transition(self.observe)
        return self
