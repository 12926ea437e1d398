"""``/api/v1/schedules`` and ``/api/v1/integrations/hosts``: the integrations layer over HTTP."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, status
from pydantic import BaseModel, Field

from spokehub.integrations import http, outbox, schedule_store, webhooks
from spokehub.integrations.schedules import Schedule
from spokehub.ops.tokens import Permission
from spokehub.server.auth import Principal, require
from spokehub.server.errors import ERROR_RESPONSES
from spokehub.server.state import StateDep

__all__ = ["router"]

router = APIRouter(prefix="/api/v1", responses=ERROR_RESPONSES)

Reader = Annotated[Principal, Depends(require(Permission.READ))]
Operator = Annotated[Principal, Depends(require(Permission.OPERATE))]
NamePath = Annotated[str, Path(min_length=1, max_length=200)]


class ScheduleIn(BaseModel):
    """A schedule to add or change (checked before anything is stored: 422 when invalid)."""

    name: str = Field(min_length=1, max_length=200)
    workflow: str = Field(min_length=1, max_length=200)
    cron: str = Field(min_length=1, max_length=200, examples=["*/5 * * * *"])
    timezone: str = Field(default="UTC", max_length=100)
    input: dict[str, Any] = Field(default_factory=dict)
    catchup: Literal["skip", "latest", "all"] = "skip"
    max_catchup: int = Field(default=10, ge=1, le=10_000)


class ScheduleOut(ScheduleIn):
    paused: bool
    next_fire_at: float | None
    next_fire_times: list[float]
    last_fire_at: float | None
    source: str


class HostOut(BaseModel):
    host: str
    state: str
    consecutive_failures: int
    changed_at: float
    tokens: float | None


@router.get("/schedules", response_model=list[ScheduleOut], tags=["schedules"])
async def list_schedules(state: StateDep, _: Reader) -> list[dict[str, Any]]:
    """Every schedule with its next fire times."""
    await state.client.ensure_schema()
    return [r.to_dict() for r in await schedule_store.list_all(state.client.store)]


@router.post(
    "/schedules",
    status_code=status.HTTP_201_CREATED,
    response_model=ScheduleOut,
    tags=["schedules"],
)
async def add_schedule(body: ScheduleIn, state: StateDep, _: Operator) -> dict[str, Any]:
    """Add or change a schedule; an invalid cron or time zone is refused with 422."""
    schedule = Schedule(**body.model_dump())
    await state.client.ensure_schema()
    row = await schedule_store.save(state.client.store, schedule, state.client.clock.now(), "api")
    return row.to_dict()


@router.post("/schedules/{name}/pause", response_model=ScheduleOut, tags=["schedules"])
async def pause_schedule(name: NamePath, state: StateDep, _: Operator) -> dict[str, Any]:
    row = await schedule_store.set_paused(state.client.store, name, True, state.client.clock.now())
    return row.to_dict()


@router.post("/schedules/{name}/resume", response_model=ScheduleOut, tags=["schedules"])
async def resume_schedule(name: NamePath, state: StateDep, _: Operator) -> dict[str, Any]:
    row = await schedule_store.set_paused(state.client.store, name, False, state.client.clock.now())
    return row.to_dict()


@router.delete("/schedules/{name}", status_code=status.HTTP_204_NO_CONTENT, tags=["schedules"])
async def remove_schedule(name: NamePath, state: StateDep, _: Operator) -> None:
    await schedule_store.remove(state.client.store, name)


class OutboxEventOut(BaseModel):
    seq: int
    id: str
    name: str
    payload: dict[str, Any]


@router.get("/events", response_model=list[OutboxEventOut], tags=["events"])
async def list_events(
    state: StateDep,
    _: Reader,
    after: Annotated[int, Query(ge=0, le=2**62, description="The last sequence number read")] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[dict[str, Any]]:
    """Domain events from the outbox, oldest first: how SQLite-only deployments read them
    (poll with ``after`` = the last ``seq`` seen). Empty unless the outbox is on
    (``SPOKEHUB_OUTBOX=1`` or an event bus URL)."""
    await state.client.ensure_schema()
    return [m.to_dict() for m in await outbox.read(state.client.store, after=after, limit=limit)]


class SubscriptionIn(BaseModel):
    url: str = Field(min_length=1, max_length=2000, examples=["https://example.com/hooks/x"])
    events: list[str] = Field(min_length=1, max_length=100, examples=[["run.failed", "order.*"]])
    secret: str | None = Field(
        default=None, max_length=200, description="whsec_...; a new one if left out"
    )


class SubscriptionOut(BaseModel):
    id: str
    events: list[str]
    url: str
    created_at: float
    secret: str | None = None


class OutboundAttemptOut(BaseModel):
    attempt: int
    at: float
    ok: bool
    error: dict[str, Any] | None = None
    status: int | None = None


class OutboundDeliveryOut(BaseModel):
    run_id: str
    subscription: str
    event_id: str | None
    event: str | None
    status: str
    attempts: list[OutboundAttemptOut]


@router.get(
    "/outbound-webhooks/subscriptions", response_model=list[SubscriptionOut], tags=["webhooks"]
)
async def list_subscriptions(state: StateDep, _: Reader) -> list[dict[str, Any]]:
    await state.client.ensure_schema()
    return [s.to_dict() for s in await webhooks.subscriptions(state.client.store)]


@router.post(
    "/outbound-webhooks/subscriptions",
    status_code=status.HTTP_201_CREATED,
    response_model=SubscriptionOut,
    tags=["webhooks"],
)
async def add_subscription(body: SubscriptionIn, state: StateDep, _: Operator) -> dict[str, Any]:
    """Subscribe a URL to event patterns; the answer shows the signing secret once."""
    await state.client.ensure_schema()
    sub = await webhooks.subscribe(
        state.client.store,
        body.url,
        body.events,
        secret=body.secret,
        now=state.client.clock.now(),
    )
    return {**sub.to_dict(), "secret": sub.secret}


@router.delete(
    "/outbound-webhooks/subscriptions/{sub_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    tags=["webhooks"],
)
async def remove_subscription(sub_id: NamePath, state: StateDep, _: Operator) -> None:
    await state.client.ensure_schema()
    await webhooks.unsubscribe(state.client.store, sub_id)


@router.get(
    "/outbound-webhooks/deliveries", response_model=list[OutboundDeliveryOut], tags=["webhooks"]
)
async def list_outbound_deliveries(
    state: StateDep, _: Reader, limit: Annotated[int, Query(ge=1, le=500)] = 50
) -> list[dict[str, Any]]:
    """Newest deliveries first, each with its attempts (from the delivery run's ledger)."""
    from spokehub import ops

    runs = await ops.list_runs(state.client, workflow=webhooks.DELIVERY_WORKFLOW, limit=limit)
    out = []
    for run in runs:
        events = await state.client.events_async(run.id)
        message = run.input.get("message") if isinstance(run.input, dict) else None
        out.append(
            {
                "run_id": run.id,
                "subscription": run.input.get("subscription"),
                "event_id": (message or {}).get("id"),
                "event": (message or {}).get("event"),
                "status": run.status.value,
                "attempts": delivery_attempts(events),
            }
        )
    return out


def delivery_attempts(events: list[Any]) -> list[dict[str, Any]]:
    """Each attempt of ``webhook.send`` from a delivery's ledger."""
    attempts = []
    for e in events:
        if e.data.get("name") != "webhook.send":
            continue
        kind = e.kind.value
        if kind == "retry_scheduled":
            attempts.append(
                {
                    "attempt": e.data.get("attempt"),
                    "at": e.at,
                    "ok": False,
                    "error": e.data.get("error"),
                }
            )
        elif kind == "step_failed":
            attempts.append(
                {
                    "attempt": e.data.get("attempts"),
                    "at": e.at,
                    "ok": False,
                    "error": e.data.get("error"),
                }
            )
        elif kind == "step_completed":
            attempts.append(
                {
                    "attempt": e.data.get("attempt"),
                    "at": e.at,
                    "ok": True,
                    "status": e.data.get("result"),
                }
            )
    return attempts


@router.get("/integrations/hosts", response_model=list[HostOut], tags=["integrations"])
async def list_hosts(_: Reader) -> list[dict[str, Any]]:
    """Each host's circuit breaker and rate-limit bucket, as the default connector sees them
    (shared ones on PostgreSQL)."""
    return [
        {
            "host": h.host,
            "state": h.breaker.state,
            "consecutive_failures": h.breaker.consecutive,
            "changed_at": h.breaker.changed_at,
            "tokens": h.tokens,
        }
        for h in http.hosts()
    ]
