"""OpenTelemetry spans for runs and steps: one trace per run, however it is executed.

The trace of a run is fixed when it starts: the ``spokehub.start`` span (a child of whatever
span the starter is in, e.g. an HTTP request carrying ``traceparent``) is recorded as a W3C
carrier in the run's ``run_started`` event. Every step attempt and compensation, on whichever
worker and in whichever activation, becomes a child of that recorded context, and the
``spokehub.run`` span, emitted when the run finishes, covers the run from start to end.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from functools import partial
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode, TracerProvider
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from opentelemetry.util.types import AttributeValue

from spokehub.engine.events import EventKind
from spokehub.observability.runs import RunDirectory, RunInfo
from spokehub.runtime.interceptors import (
    EventsCommittedInput,
    ExecuteStepInput,
    Interceptor,
    StartRunInput,
)
from spokehub.store.base import StartResult

INSTRUMENTATION = "spokehub"

# The ledger keeps W3C trace context whatever propagator the process is configured with:
# a persisted format must not depend on today's settings.
_W3C = TraceContextTextMapPropagator()


def run_context(info: RunInfo) -> otel_context.Context:
    """The OpenTelemetry context that a run's spans are children of."""
    return _W3C.extract(dict(info.trace))


def _seconds_to_ns(seconds: float) -> int:
    return int(seconds * 1_000_000_000)


class TracingInterceptor(Interceptor):
    """Spans ``spokehub.start <workflow>``, ``spokehub.step <step>`` (one per attempt),
    ``spokehub.compensate <step>`` and ``spokehub.run <workflow>``.
    """

    def __init__(self, runs: RunDirectory, tracer_provider: TracerProvider | None = None) -> None:
        self.runs = runs
        self.tracer_provider = tracer_provider
        self.tracer = trace.get_tracer(INSTRUMENTATION, tracer_provider=tracer_provider)

    async def start_run(
        self, input: StartRunInput, call_next: Callable[[StartRunInput], Awaitable[Any]]
    ) -> Any:
        attributes = {
            "spokehub.run_id": input.run_id,
            "spokehub.workflow": input.workflow,
            "spokehub.queue": input.queue,
        }
        with self.tracer.start_as_current_span(
            f"spokehub.start {input.workflow}", kind=SpanKind.PRODUCER, attributes=attributes
        ) as span:
            carrier: dict[str, str] = {}
            _W3C.inject(carrier)  # the start span is current: the run's spans descend from it
            result: StartResult = await call_next(input.replace(trace=carrier or input.trace))
            span.set_attribute("spokehub.run.created", result.created)
            return result

    async def execute_step(
        self, input: ExecuteStepInput, call_next: Callable[[ExecuteStepInput], Awaitable[Any]]
    ) -> Any:
        ctx = input.context
        info = await self.runs.resolve(ctx.run_id)
        kind = "compensate" if input.compensation else "step"
        attributes: dict[str, AttributeValue] = {
            "spokehub.run_id": ctx.run_id,
            "spokehub.workflow": ctx.workflow,
            "spokehub.step.name": ctx.name,
            "spokehub.step.seq": ctx.step,
            "spokehub.step.attempt": ctx.attempt,
            "spokehub.step.compensation": input.compensation,
        }
        with self.tracer.start_as_current_span(
            f"spokehub.{kind} {ctx.name}",
            context=run_context(info),
            attributes=attributes,
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            try:
                result = await call_next(input)
            except Exception as exc:
                span.set_attribute("spokehub.step.outcome", "error")
                span.set_attribute("error.type", type(exc).__name__)
                span.record_exception(exc)
                span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
                raise
            except BaseException:  # cancelled: the worker stopped or lost the lease
                span.set_attribute("spokehub.step.outcome", "interrupted")
                raise
            span.set_attribute("spokehub.step.outcome", "ok")
            return result

    def events_committed(self, input: EventsCommittedInput) -> None:
        for event in input.events:
            if event.kind is EventKind.RUN_FINISHED:
                emit = partial(
                    self._run_span, workflow=input.workflow, data=event.data, at=event.at
                )
                self.runs.with_info(input.run_id, emit)

    def _run_span(
        self, info: RunInfo, *, workflow: str, data: Mapping[str, Any], at: float
    ) -> None:
        status = str(data.get("status", "unknown"))
        started_at = info.started_at if info.started_at is not None else at
        span = self.tracer.start_span(
            f"spokehub.run {workflow}",
            context=run_context(info),
            attributes={
                "spokehub.run_id": info.run_id,
                "spokehub.workflow": workflow,
                "spokehub.run.status": status,
            },
            start_time=_seconds_to_ns(started_at),
        )
        error = data.get("error")
        if status != "completed" and isinstance(error, dict):
            span.set_attribute("error.type", str(error.get("type", "unknown")))
            span.set_status(Status(StatusCode.ERROR, str(error.get("message", status))))
        span.end(end_time=_seconds_to_ns(at))
