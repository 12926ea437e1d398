"""Guardrails at the boundaries of LLM steps: a policy hook, and redaction for logs.

The governance layer's ``PolicyEngine`` plugs in here at wiring time
(``LLMConfig(policy=...)``): this layer sits below governance in nothing but name and must not
import it, so it takes any callable with this shape instead.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from spokehub.intelligence.errors import GuardrailDenied


@dataclass(frozen=True, slots=True, kw_only=True)
class GuardrailCheck:
    """What the policy hook is asked about: one LLM input (the prompt) or output (the answer).

    ``text`` is the whole prompt (messages joined) or the answer; the hook sees it unredacted,
    it is the hook's job to judge it.
    """

    stage: Literal["input", "output"]
    text: str
    model: str
    provider: str
    run_id: str | None
    workflow: str | None


@dataclass(frozen=True, slots=True)
class GuardrailVerdict:
    """``allow`` False stops the call (``GuardrailDenied`` with ``reason``)."""

    allow: bool
    reason: str = ""


PolicyHook = Callable[[GuardrailCheck], GuardrailVerdict | None]
"""A policy hook: return None or an allowing verdict to let the call through."""


def check(hook: PolicyHook | None, request: GuardrailCheck) -> None:
    """Ask ``hook``; raise ``GuardrailDenied`` when it refuses."""
    if hook is None:
        return
    verdict = hook(request)
    if verdict is not None and not verdict.allow:
        raise GuardrailDenied(
            f"the policy refused this LLM {request.stage} for {request.model!r}: "
            f"{verdict.reason or 'no reason given'}"
        )


_PATTERNS = [
    (re.compile(r"[\w.+-]+@[\w-]+\.[\w.-]+"), "[email]"),
    (re.compile(r"\b(?:sk|pk|rk|ghp|xox[abp])[-_][A-Za-z0-9_-]{8,}\b"), "[secret]"),
    (re.compile(r"\b(?:\d[ -]?){13,19}\b"), "[number]"),
    (re.compile(r"\+?\d[\d ().-]{7,}\d"), "[phone]"),
]


def redact(text: str, *, limit: int = 200) -> str:
    """``text`` fit for a log line: e-mail addresses, keys, card and phone numbers masked,
    and cut to ``limit`` characters. Prompts and answers are logged only through this.
    """
    for pattern, mask in _PATTERNS:
        text = pattern.sub(mask, text)
    if len(text) > limit:
        text = text[:limit] + f"... ({len(text) - limit} more chars)"
    return text
