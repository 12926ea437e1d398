"""``emit(name, payload)``: a custom domain event from workflow code.

It is a durable step: the event is recorded once in the ledger (replay does not emit it
again) and, with the outbox installed, lands in the outbox in the same transaction.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable
from typing import Any

from spokehub.integrations.outbox import EMIT_STEP
from spokehub.runtime.definitions import StepDefinition

_NAME = re.compile(r"^[A-Za-z0-9_\-]+(\.[A-Za-z0-9_\-]+)*$")


def _check(name: str) -> None:
    if not _NAME.match(name) or len(name) > 200:
        raise ValueError(
            f"event name {name!r}: use dot-separated words of letters, digits, _ and -, "
            "e.g. 'order.shipped' (it is the routing key)"
        )


async def _record(event: str, payload: Any = None) -> dict[str, Any]:
    return {"event": event, "payload": payload}


def _record_sync(event: str, payload: Any = None) -> dict[str, Any]:
    return {"event": event, "payload": payload}


_ASYNC: StepDefinition[..., Any] = StepDefinition(
    _record, name=EMIT_STEP, retry=None, timeout=None, compensate=None
)
_SYNC: StepDefinition[..., Any] = StepDefinition(
    _record_sync, name=EMIT_STEP, retry=None, timeout=None, compensate=None
)


def emit(name: str, payload: Any = None) -> Awaitable[dict[str, Any]]:
    """Emit a domain event from an async workflow: ``await emit("order.shipped", {...})``."""
    _check(name)
    return _ASYNC(event=name, payload=payload)  # type: ignore[no-any-return]


def emit_sync(name: str, payload: Any = None) -> dict[str, Any]:
    """The sync twin of ``emit``, for sync workflows."""
    _check(name)
    return _SYNC(event=name, payload=payload)  # type: ignore[no-any-return]
