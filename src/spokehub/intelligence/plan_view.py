"""An agent run's plans, read back from its ledger, and drawn as a graph (SVG).

The agent records each accepted plan as an ``agent.note`` step (kind ``plan``) and runs its
calls in order, so the tool steps that follow a plan note are that plan's calls: completed,
failed, running, refused (the agent noted a refusal before the call ran) or pending. The run
page of the dashboard draws every plan version with its calls as boxes, arrows for results
passed between calls, and the status as colour.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from html import escape
from typing import Any

from spokehub.engine.events import Event, EventKind

__all__ = ["AgentView", "PlanCall", "PlanVersion", "agent_view", "plan_svg"]

NOTE = "agent.note"
COLOURS = {
    "completed": "#2e7d32",
    "failed": "#c62828",
    "refused": "#ef6c00",
    "running": "#1565c0",
    "pending": "#9e9e9e",
}


@dataclass(slots=True)
class PlanCall:
    id: str
    tool: str
    reason: str
    args: dict[str, Any]
    status: str = "pending"
    depends_on: list[str] = field(default_factory=list)


@dataclass(slots=True)
class PlanVersion:
    version: int
    calls: list[PlanCall]
    answer: str = ""


@dataclass(slots=True)
class AgentView:
    intent: str | None = None
    plans: list[PlanVersion] = field(default_factory=list)
    rejections: list[str] = field(default_factory=list)
    outcome: str | None = None  # "finished", "gave_up" or None while it runs

    @property
    def present(self) -> bool:
        return self.intent is not None


def agent_view(events: Sequence[Event]) -> AgentView:
    """Rebuild what an agent planned and did from a run's events."""
    reader = _Reader()
    for event in events:
        reader.read(event)
    return reader.view


class _Reader:
    def __init__(self) -> None:
        self.view = AgentView()
        self.current: PlanVersion | None = None
        self.cursor = 0

    def _next_call(self) -> PlanCall | None:
        if self.current is None or self.cursor >= len(self.current.calls):
            return None
        return self.current.calls[self.cursor]

    def read(self, event: Event) -> None:
        name = event.data.get("name")
        if event.kind is EventKind.STEP_STARTED:
            call = self._next_call()
            if name != NOTE and call is not None and call.status == "pending":
                call.status = "running"
        elif event.kind is EventKind.STEP_COMPLETED and name == NOTE:
            self._note(event.data.get("result") or {})
        elif event.kind in (EventKind.STEP_COMPLETED, EventKind.STEP_FAILED) and name != NOTE:
            call = self._next_call()
            if call is not None:
                call.status = "completed" if event.kind is EventKind.STEP_COMPLETED else "failed"
                self.cursor += 1

    def _note(self, note: dict[str, Any]) -> None:
        kind, body = note.get("kind"), note.get("data") or {}
        if kind == "intent":
            self.view.intent = str(body.get("intent", ""))
        elif kind == "plan":
            self.current = _plan(body)
            self.view.plans.append(self.current)
            self.cursor = 0
        elif kind == "plan_rejected":
            self.view.rejections.extend(str(r) for r in body.get("reasons", []))
        elif kind == "call_failed":
            self.view.rejections.append(str(body.get("reason", "")))
            call = self._next_call()
            if call is not None and body.get("refused") == call.id:
                call.status = "refused"
        elif kind in ("finished", "gave_up"):
            self.view.outcome = str(kind)


def _plan(body: dict[str, Any]) -> PlanVersion:
    calls = []
    for raw in body.get("calls", []):
        args = raw.get("args") or {}
        calls.append(
            PlanCall(
                id=str(raw.get("id", "?")),
                tool=str(raw.get("tool", "?")),
                reason=str(raw.get("reason", "")),
                args=args,
                depends_on=sorted(_refs(args)),
            )
        )
    return PlanVersion(int(body.get("version", 0)), calls, str(body.get("answer", "")))


def _refs(value: Any) -> set[str]:
    if isinstance(value, dict):
        if "$from" in value:
            return {str(value["$from"])}
        return set().union(*(_refs(v) for v in value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*(_refs(v) for v in value)) if value else set()
    return set()


def plan_svg(plan: PlanVersion, *, width: int = 640) -> str:
    """The plan as an SVG: one box per call in order, arrows for results passed along."""
    box_h, gap, pad = 44, 18, 12
    height = pad * 2 + max(1, len(plan.calls)) * (box_h + gap) - gap
    rows = {call.id: i for i, call in enumerate(plan.calls)}
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="plan-graph" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="plan version {plan.version}">'
    ]
    box_w = width - 2 * pad - 60
    for i, call in enumerate(plan.calls):
        y = pad + i * (box_h + gap)
        colour = COLOURS.get(call.status, COLOURS["pending"])
        parts.append(
            f'<g class="call" data-status="{escape(call.status)}"><title>{escape(call.reason)}'
            f"</title>"
            f'<rect x="{pad + 60}" y="{y}" width="{box_w}" height="{box_h}" rx="6" '
            f'fill="white" stroke="{colour}" stroke-width="2"/>'
            f'<text x="{pad}" y="{y + 27}" font-size="12" fill="#555">{escape(call.id)}</text>'
            f'<text x="{pad + 72}" y="{y + 18}" font-size="13" font-weight="bold">'
            f"{escape(call.tool)}</text>"
            f'<text x="{pad + 72}" y="{y + 35}" font-size="11" fill="#555">'
            f"{escape(_short(call.reason))}</text>"
            f'<text x="{pad + 60 + box_w - 8}" y="{y + 18}" font-size="11" text-anchor="end" '
            f'fill="{colour}">{escape(call.status)}</text></g>'
        )
        for dep in call.depends_on:
            if dep in rows:
                y0 = pad + rows[dep] * (box_h + gap) + box_h / 2
                y1 = y + box_h / 2
                parts.append(
                    f'<path d="M {pad + 60} {y0} C {pad + 30} {y0}, {pad + 30} {y1}, '
                    f'{pad + 60} {y1}" fill="none" stroke="#888" stroke-dasharray="4 3"/>'
                )
    parts.append("</svg>")
    return "".join(parts)


def _short(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
