"""HTTP from adapters, analysis and gates: each call is one exchange of the integrations connector.

A call passes the same guards as ``spokehub.integrations.http``: the egress guard, the host's
circuit breaker and rate limit (the state of the process's connector, so shared by every
worker on PostgreSQL), connect/read/total timeouts and the response size cap. It is not a
step of its own: the distribution step around it (``spokehub.dist.apply``, ...) retries.

A target's ``spec.config`` adds two settings:

* ``egressAllow``: host names or CIDRs this target may reach although they are internal
  (``["127.0.0.1"]`` for a CMS on loopback); added to the process connector's ``allow``.
* ``timeout``: seconds for the whole exchange (default 10).
"""

from __future__ import annotations

import threading
from collections.abc import Collection, Mapping
from typing import Any

from spokehub.distribution.errors import AdapterError
from spokehub.integrations import (
    ConnectorConfig,
    EgressDenied,
    HttpConnector,
    HttpStatusError,
    IntegrationError,
    Response,
    Timeouts,
)
from spokehub.integrations import http as process_connector

DEFAULT_TIMEOUT = 10.0

_lock = threading.Lock()
# (allow, timeout) -> (the process connector's config it was derived from, the connector)
_derived: dict[tuple[tuple[str, ...], float], tuple[ConnectorConfig, HttpConnector]] = {}


def allow_list(config: Mapping[str, Any]) -> tuple[str, ...]:
    """The target's ``egressAllow`` entries (one text or a list)."""
    raw = config.get("egressAllow") or ()
    entries = [raw] if isinstance(raw, str) else list(raw)
    return tuple(str(e) for e in entries)


def connector_for(
    config: Mapping[str, Any], default_timeout: float = DEFAULT_TIMEOUT
) -> HttpConnector:
    """The connector a target's calls go through: the process connector's settings plus the
    target's ``egressAllow`` and ``timeout`` (one connector per distinct pair, reused)."""
    base = process_connector.config
    allow = tuple(dict.fromkeys((*base.allow, *allow_list(config))))
    timeout = float(config.get("timeout", default_timeout))
    key = (allow, timeout)
    with _lock:
        found = _derived.get(key)
        if found is not None and found[0] is base:
            return found[1]
        limits = Timeouts(connect=timeout, read=timeout, total=timeout)
        connector = process_connector.derive(allow=allow, timeouts=limits)
        _derived[key] = (base, connector)
    if found is not None:  # the process connector was reconfigured: drop the old pool
        found[1].close()
    return connector


def exchange(
    config: Mapping[str, Any],
    method: str,
    url: str,
    *,
    answers: Collection[int] = (),
    default_timeout: float = DEFAULT_TIMEOUT,
    **request: Any,
) -> Response:
    """Send one request for a target (``request``: ``json``, ``content``, ``params``,
    ``headers``). A 4xx listed in ``answers`` is returned; every other failure (a refused
    address, an open breaker, a timeout, an error status) is an ``AdapterError`` that
    carries the connector's error as its cause."""
    connector = connector_for(config, default_timeout)
    try:
        return connector.send_sync(method, url, **request)
    except HttpStatusError as exc:
        if exc.status in answers:
            return Response(status=exc.status, url=url, headers={}, text=exc.body)
        what = f"HTTP {exc.status} {exc.body[:200]}" if exc.status else exc.body
        raise AdapterError(f"{method} {url}: {what}") from exc
    except IntegrationError as exc:
        raise AdapterError(f"{method} {url}: {explain(exc)}") from exc


def explain(exc: IntegrationError, remedy: str = "") -> str:
    """The connector's error in a target's words: an egress refusal says how to allow it
    (``remedy``; by default the target's ``egressAllow``)."""
    if not isinstance(exc, EgressDenied):
        return str(exc)
    remedy = remedy or (
        "the target lists them in spec.config.egressAllow (a host name or a CIDR, e.g. "
        f"egressAllow: [{exc.address!r}])"
    )
    return (
        f"egress to {exc.host!r} ({exc.address}, {exc.reason}) is denied: internal addresses "
        f"are refused unless {remedy}"
    )
