"""Request and response bodies of the REST API, so that the OpenAPI spec is precise.

Response models mirror the ``to_dict()`` of the records in ``spokehub.store.base`` and
``spokehub.ops``; inputs, outputs and payloads are any JSON, returned as stored.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from spokehub.ops.tokens import Role
from spokehub.types import RunStatus

__all__ = [
    "ApproveRequest",
    "Decision",
    "DeliveryOut",
    "EventOut",
    "ForkRequest",
    "Health",
    "QueueOut",
    "RunDetail",
    "RunOut",
    "SignalRequest",
    "SignalSent",
    "StartRequest",
    "TimelineRowOut",
    "TokenCreate",
    "TokenCreated",
    "TokenOut",
    "WorkerOut",
    "WorkflowOut",
]

_STRICT = ConfigDict(extra="forbid")


class StartRequest(BaseModel):
    model_config = _STRICT
    workflow: str = Field(min_length=1, description="A workflow registered in the server.")
    input: dict[str, Any] = Field(
        default_factory=dict, description="The workflow's keyword arguments."
    )
    run_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="Idempotency key: the same id and input give the same run.",
    )


class SignalRequest(BaseModel):
    model_config = _STRICT
    name: str = Field(min_length=1, max_length=200)
    payload: Any = None


class ApproveRequest(BaseModel):
    model_config = _STRICT
    name: str | None = Field(
        default=None, min_length=1, description="Which approval, when the run waits for several."
    )
    comment: str | None = Field(default=None, max_length=10_000)


class ForkRequest(BaseModel):
    model_config = _STRICT
    from_step: int = Field(ge=1, description="Calls before this one replay their records.")
    new_run_id: str | None = Field(default=None, min_length=1, max_length=200)


class TokenCreate(BaseModel):
    model_config = _STRICT
    name: str = Field(min_length=1, max_length=200)
    role: Role


class RunOut(BaseModel):
    id: str
    workflow: str
    version: str | None
    queue: str
    status: RunStatus
    priority: int
    input: dict[str, Any]
    result: Any
    error: dict[str, Any] | None
    parent_id: str | None
    root_id: str
    created_at: float
    updated_at: float
    finished_at: float | None
    wake_at: float | None
    waiting_on: dict[str, Any] | None
    lease_owner: str | None
    cancel_requested: bool
    recoveries: int


class ErrorInfoOut(BaseModel):
    type: str
    message: str


class TimelineRowOut(BaseModel):
    seq: int | None
    kind: str
    name: str
    status: str
    attempts: int
    started_at: float | None
    ended_at: float | None
    duration: float | None
    error: ErrorInfoOut | None
    info: dict[str, Any]


class EventOut(BaseModel):
    position: int
    kind: str
    seq: int | None
    at: float
    v: int
    data: dict[str, Any]


class LLMCallOut(BaseModel):
    seq: int
    provider: str
    model: str
    prompt_tokens: int
    completion_tokens: int
    cost: float
    cache_hit: bool


class LLMCostOut(BaseModel):
    """The run's recorded LLM calls: USD and tokens in total and per step."""

    cost: float
    calls: int
    prompt_tokens: int
    completion_tokens: int
    cache_hits: int
    steps: list[LLMCallOut]


class RunDetail(RunOut):
    duration: float
    forked_from: str | None
    from_step: int | None
    steps: list[TimelineRowOut]
    run_events: list[TimelineRowOut]
    events: list[EventOut]
    llm: LLMCostOut


class SignalSent(BaseModel):
    run_id: str
    name: str


class Decision(BaseModel):
    run_id: str
    name: str
    approved: bool


class QueueOut(BaseModel):
    queue: str
    counts: dict[str, int]
    depth: int
    oldest_pending_at: float | None


class WorkerOut(BaseModel):
    owner: str
    name: str
    host: str
    pid: int
    queues: list[str]
    concurrency: int
    active: int
    state: str
    started_at: float
    heartbeat_at: float


class WorkflowOut(BaseModel):
    name: str
    queue: str
    version: str | None
    parameters: list[str]


class TokenOut(BaseModel):
    id: str
    name: str
    role: Role
    created_at: float
    last_used_at: float | None
    revoked_at: float | None


class TokenCreated(TokenOut):
    token: str = Field(description="The secret: shown once, stored only as a hash.")


class DeliveryOut(BaseModel):
    id: int
    hook: str
    delivery_id: str | None
    received_at: float
    status: str
    reason: str | None
    run_id: str | None


class Health(BaseModel):
    status: str
