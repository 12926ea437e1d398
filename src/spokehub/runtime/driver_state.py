"""What a run's driver keeps between calls: waits that are not running steps, ledger events
not yet committed, and how long an error asks the next attempt to wait."""

from __future__ import annotations

from dataclasses import dataclass, field

from spokehub.engine.events import Event
from spokehub.runtime.scope import Call
from spokehub.store.base import NewRun

# A server asking for more than a day is not honoured beyond it: the run would look stuck.
MAX_RETRY_AFTER = 86_400.0


@dataclass(slots=True)
class Wait:
    """Something a call waits for that is not a running step."""

    call: Call
    due: float | None = None  # timer due, retry time, or wait deadline
    attempt: int = 0  # for a step in retry backoff: the attempt to run next
    child_id: str | None = None


@dataclass(slots=True)
class _Pending:
    """Ledger events not yet committed, and what commits with them."""

    events: list[Event] = field(default_factory=list)
    consumed: list[int] = field(default_factory=list)
    children: list[NewRun] = field(default_factory=list)


def _retry_after(exc: BaseException) -> float:
    """The least wait an error asks for (``retry_after`` seconds: an HTTP ``Retry-After``, an
    open circuit breaker), so that the next attempt does not come before the far side allows.
    """
    hint = getattr(exc, "retry_after", None)
    if isinstance(hint, int | float) and not isinstance(hint, bool) and hint > 0:
        return min(float(hint), MAX_RETRY_AFTER)
    return 0.0
