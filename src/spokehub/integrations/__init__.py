"""Integrations: the engine's disciplined edges to the outside world.

This layer owns the HTTP connector (durable HTTP steps with retries, an egress guard against
SSRF, per-host circuit breakers and rate limits shared across workers on PostgreSQL, timeouts
and a response size cap) and contracts (named, versioned request/response shapes checked at
the edges, and a compatibility diff). It sits above governance and observability and below
intelligence; it needs the ``integrations`` extra (``pip install 'spokehub[integrations]'``).

Example:
    >>> from spokehub.integrations import http, contract
    >>> http.configure(allow=["10.0.0.0/8"])       # reach an internal service on purpose
    >>> @workflow
    ... async def notify(order_id: str) -> int:
    ...     answer = await http.post("https://api.example.com/notify", json={"id": order_id})
    ...     return answer.status
"""

from spokehub.integrations.breaker import BreakerPolicy, BreakerState
from spokehub.integrations.connector import (
    DEFAULT_RETRY,
    ConnectorConfig,
    Credential,
    HttpConnector,
    Timeouts,
)
from spokehub.integrations.contracts import (
    CONTRACTS,
    Contract,
    ContractRegistry,
    contract,
    load_contract_file,
)
from spokehub.integrations.egress import EgressPolicy
from spokehub.integrations.errors import (
    CircuitOpen,
    ClientStatusError,
    ContractError,
    ContractViolation,
    EgressDenied,
    HttpStatusError,
    IntegrationError,
    RateLimited,
    ResponseTooLarge,
)
from spokehub.integrations.exchange import ConnectionFailed, Response
from spokehub.integrations.hoststate import (
    HostState,
    HostStatus,
    InProcessHostState,
    PostgresHostState,
)
from spokehub.integrations.ratelimit import RateLimit

http = HttpConnector()
"""The default connector: ``from spokehub.integrations import http``."""

__all__ = [
    "CONTRACTS",
    "DEFAULT_RETRY",
    "BreakerPolicy",
    "BreakerState",
    "CircuitOpen",
    "ClientStatusError",
    "ConnectionFailed",
    "ConnectorConfig",
    "Contract",
    "ContractError",
    "ContractRegistry",
    "ContractViolation",
    "Credential",
    "EgressDenied",
    "EgressPolicy",
    "HostState",
    "HostStatus",
    "HttpConnector",
    "HttpStatusError",
    "InProcessHostState",
    "IntegrationError",
    "PostgresHostState",
    "RateLimit",
    "RateLimited",
    "Response",
    "ResponseTooLarge",
    "Timeouts",
    "contract",
    "http",
    "load_contract_file",
]
