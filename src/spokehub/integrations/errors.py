"""The errors the integrations layer raises inside steps (codes are stable for API and CLI).

::

    SpokehubError
    └── IntegrationError          integration        base of the errors below
        ├── EgressDenied          egress_denied      the address is internal and not allow-listed
        ├── CircuitOpen           circuit_open       the host's breaker is open (retry_after set)
        ├── RateLimited           rate_limited       the host's token bucket is empty (retry_after)
        ├── HttpStatusError       http_status        the server answered 4xx/5xx
        ├── ResponseTooLarge      response_too_large the body passed the size cap
        ├── ContractViolation     contract_violation a body does not match its contract
        └── ContractError         contract           a contract is unknown or does not load

``retry_after`` (seconds) on an error is the least wait before the next attempt; the runtime
honours it for durable retries. Non-retryable errors are listed in ``NON_RETRYABLE``.
"""

from __future__ import annotations

from typing import Any

from spokehub.errors import SpokehubError


class IntegrationError(SpokehubError):
    """Base of the integrations layer's errors."""

    code = "integration"
    retry_after: float | None = None


class EgressDenied(IntegrationError):
    """A request would reach an internal address (SSRF guard); nothing was sent."""

    code = "egress_denied"

    def __init__(self, host: str, address: str, reason: str) -> None:
        super().__init__(
            f"egress to {host!r} ({address}, {reason}) is denied: internal addresses are "
            "refused by default; allow it with HttpConnector(allow=[...]) or "
            "http.configure(allow=[...]) (a host name or a CIDR such as '10.0.0.0/8')"
        )
        self.host = host
        self.address = address
        self.reason = reason
        self.details: dict[str, Any] = {"host": host, "address": address, "reason": reason}


class CircuitOpen(IntegrationError):
    """The host's circuit breaker is open: fail fast, retry after ``retry_after`` seconds."""

    code = "circuit_open"

    def __init__(self, host: str, retry_after: float) -> None:
        super().__init__(
            f"circuit breaker for {host!r} is open; the next probe is allowed in "
            f"{retry_after:.1f}s (the step's retry waits for it durably)"
        )
        self.host = host
        self.retry_after = retry_after
        self.details: dict[str, Any] = {"host": host, "retry_after": retry_after}


class RateLimited(IntegrationError):
    """The host's rate limit has no token now; retry after ``retry_after`` seconds."""

    code = "rate_limited"

    def __init__(self, host: str, retry_after: float) -> None:
        super().__init__(
            f"rate limit for {host!r} reached; next request allowed in {retry_after:.2f}s"
        )
        self.host = host
        self.retry_after = retry_after


class HttpStatusError(IntegrationError):
    """The server answered with an error status (429 and 5xx are retried, other 4xx not)."""

    code = "http_status"

    def __init__(
        self, method: str, url: str, status: int, body: str, retry_after: float | None = None
    ) -> None:
        snippet = body[:200]
        super().__init__(f"{method} {url} answered {status}: {snippet}")
        self.method = method
        self.url = url
        self.status = status
        self.body = body
        self.retry_after = retry_after
        self.details: dict[str, Any] = {"status": status, "url": url}

    @property
    def retryable(self) -> bool:
        return self.status == 429 or self.status >= 500


class ClientStatusError(HttpStatusError):
    """A 4xx other than 429: the request itself is wrong, so retrying cannot help."""

    code = "http_client_status"


class ResponseTooLarge(IntegrationError):
    code = "response_too_large"

    def __init__(self, url: str, limit: int) -> None:
        super().__init__(
            f"the response of {url} is larger than the cap of {limit} bytes; raise it with "
            "HttpConnector(max_response_bytes=...) if the body is expected to be that large"
        )
        self.details: dict[str, Any] = {"url": url, "limit": limit}


class ContractViolation(IntegrationError):
    """A request or response body does not match its contract (never retried)."""

    code = "contract_violation"

    def __init__(self, contract: str, direction: str, path: str, message: str) -> None:
        super().__init__(f"{direction} violates contract {contract} at {path}: {message}")
        self.contract = contract
        self.direction = direction
        self.path = path
        self.details: dict[str, Any] = {
            "contract": contract,
            "direction": direction,
            "path": path,
            "message": message,
        }


class ContractError(IntegrationError):
    """A contract is unknown, or its file does not load."""

    code = "contract"


NON_RETRYABLE: tuple[type[BaseException], ...] = (
    EgressDenied,
    ClientStatusError,
    ResponseTooLarge,
    ContractViolation,
    ContractError,
)
