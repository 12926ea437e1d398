"""Annotations: facts an interceptor records in a run's ledger while a step attempt runs.

A policy decision taken before a step, for instance, belongs in the run's ledger next to the
step it judged. The driver binds a sink for each attempt and stores the attempt's annotations
as ``notes`` (``[{"kind": ..., "data": ...}]``) on the event that records the attempt's outcome
(``step_completed``, ``retry_scheduled`` or ``step_failed``): no extra ledger row per step, and
replay, which reads only results, is unchanged. Outside a run there is no sink and ``annotate``
says so by returning False. (At a run's start, annotations are events of their own kind, after
``run_started``; see ``StartRunInput.annotations``.)
"""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

from spokehub.engine.events import EventKind

ANNOTATION_KINDS = frozenset({EventKind.POLICY_DECIDED})

Sink = Callable[[EventKind, dict[str, Any]], Any]

_sink: ContextVar[Sink | None] = ContextVar("spokehub_annotations", default=None)


def bind_annotations(sink: Sink | None) -> None:
    """Set where annotations of the current task go (the driver does this per attempt)."""
    _sink.set(sink)


def annotate(kind: EventKind, data: dict[str, Any]) -> bool:
    """Record ``data`` as a ``kind`` event of the running attempt's step; False outside a run.

    Raises:
        ValueError: ``kind`` is not an annotation kind (it would change replay).
    """
    if kind not in ANNOTATION_KINDS:
        raise ValueError(f"{kind.value} is not an annotation kind: use one of {ANNOTATION_KINDS}")
    sink = _sink.get()
    if sink is None:
        return False
    sink(kind, data)
    return True
