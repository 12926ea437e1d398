"""LLM spend and decision calibration over HTTP: ``/api/v1/llm/*`` and the dashboard's
``/ui/costs`` and ``/ui/calibration`` pages; LLM gauges appended to ``/metrics``.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, Response
from prometheus_client import CollectorRegistry, Gauge, generate_latest

from spokehub.intelligence import storage
from spokehub.ops import ai as ops_ai
from spokehub.ops.tokens import Permission
from spokehub.runtime.client import Client
from spokehub.server.auth import Principal, require
from spokehub.server.charts import reliability_diagram, spend_chart
from spokehub.server.dashboard.view import LOGIN_URL, page
from spokehub.server.errors import ERROR_RESPONSES
from spokehub.server.state import MetricsRenderer, StateDep

__all__ = ["LLMMetrics", "router"]

api = APIRouter(prefix="/api/v1/llm", responses=ERROR_RESPONSES, tags=["llm"])
ui = APIRouter(prefix="/ui", include_in_schema=False)
Reader = Annotated[Principal, Depends(require(Permission.READ))]
UiReader = Annotated[Principal, Depends(require(Permission.READ, login_url=LOGIN_URL))]
Days = Annotated[float, Query(gt=0, le=3660, description="How many days back.")]


@api.get("/costs")
async def costs(
    state: StateDep, _: Reader, days: Days = 30, workflow: str | None = None
) -> dict[str, Any]:
    """LLM spend (USD, tokens, calls, cache hits): total, per UTC day, per model, per workflow."""
    report = await ops_ai.spend(state.client, days=days, workflow=workflow)
    return report.to_dict()


@api.get("/calibration/{workflow}")
async def calibration(
    workflow: str,
    state: StateDep,
    _: Reader,
    target: Annotated[float, Query(gt=0, le=1)] = 0.95,
    bins: Annotated[int, Query(ge=1, le=100)] = 10,
    name: str | None = None,
) -> dict[str, Any]:
    """Accuracy per confidence bin, expected calibration error and a suggested threshold."""
    report = await ops_ai.calibrate(state.client, workflow, name=name, bins=bins, target=target)
    return report.to_dict()


@ui.get("/costs", response_class=HTMLResponse)
async def costs_page(request: Request, state: StateDep, who: UiReader, days: Days = 30) -> Response:
    """LLM spend over time (a chart per day), by model and by workflow."""
    report = await ops_ai.spend(state.client, days=days)
    context = {"report": report, "days": days, "chart": spend_chart(report.by_day)}
    return page(request, "costs.html", who, context)


@ui.get("/calibration", response_class=HTMLResponse)
async def calibration_page(
    request: Request,
    state: StateDep,
    who: UiReader,
    workflow: str = "",
    target: Annotated[float, Query(gt=0, le=1)] = 0.95,
) -> Response:
    """The reliability diagram of a workflow's confidence-routed decisions."""
    report = None
    if workflow:
        report = await ops_ai.calibrate(state.client, workflow, target=target)
    context = {
        "workflow": workflow,
        "target": target,
        "report": report,
        "chart": reliability_diagram(report.bins) if report else "",
    }
    return page(request, "calibration.html", who, context)


router = APIRouter()
router.include_router(api)
router.include_router(ui)


class LLMMetrics:
    """``/metrics`` with LLM gauges added: tokens, cost and calls by model and workflow,
    read from the database at scrape time (so they cover every worker)."""

    def __init__(self, inner: MetricsRenderer, client: Client) -> None:
        self.inner = inner
        self.client = client
        self.registry = CollectorRegistry()
        labels = ["workflow", "model"]
        self.tokens = Gauge(
            "spokehub_llm_tokens",
            "LLM tokens billed, by kind (prompt, completion).",
            [*labels, "kind"],
            registry=self.registry,
        )
        self.cost = Gauge(
            "spokehub_llm_cost_usd", "LLM spend in USD.", labels, registry=self.registry
        )
        self.calls = Gauge(
            "spokehub_llm_calls",
            "LLM calls (cache hits included).",
            [*labels, "cache"],
            registry=self.registry,
        )

    async def render(self) -> tuple[bytes, str]:
        body, media_type = await self.inner.render()
        rows = await self.client.store.transact(storage.usage_totals, write=False)
        for gauge in (self.tokens, self.cost, self.calls):
            gauge.clear()
        for t in rows:
            wf, model = t.workflow or "", f"{t.provider}:{t.model}"
            self.tokens.labels(wf, model, "prompt").inc(t.prompt_tokens)
            self.tokens.labels(wf, model, "completion").inc(t.completion_tokens)
            self.cost.labels(wf, model).inc(t.cost)
            self.calls.labels(wf, model, "hit" if t.cache_hit else "miss").inc(t.calls)
        return body + generate_latest(self.registry), media_type


def llm_metrics(metrics: MetricsRenderer | None, client: Client) -> MetricsRenderer | None:
    """``metrics`` with the LLM gauges, when the server serves metrics at all."""
    return None if metrics is None else LLMMetrics(metrics, client)
