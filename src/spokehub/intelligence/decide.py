"""``decide``: a classification with a confidence, routed to a human when unsure.

The confidence comes from the label's token log-probabilities when the provider reports them
(``method="logprobs"``), otherwise from the agreement of ``samples`` answers
(``method="agreement"``). Below ``threshold`` the run asks for an ``approval`` with the
proposal as its subject; the human's answer is the outcome. Each decision (with its outcome,
if a human gave one) is recorded by a step in ``llm_decisions`` for ``spokehub ai
calibration``.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from spokehub.errors import ApprovalRejected
from spokehub.intelligence import storage
from spokehub.intelligence.chat import TokenLogprob
from spokehub.intelligence.errors import LLMConfigurationError
from spokehub.intelligence.llm import Completion, complete
from spokehub.runtime.context import current_client, current_step, current_workflow
from spokehub.runtime.definitions import step
from spokehub.runtime.primitives import approval
from spokehub.runtime.scope import current_scope

REJECTED = "(rejected)"


@dataclass(frozen=True, slots=True)
class LabelDecision:
    """What ``decide`` returns.

    Attributes:
        label: the final label (the human's, when one answered).
        confidence: the model's confidence in ``proposal``, 0 to 1.
        proposal: the model's label.
        rationale: the model's reason.
        method: ``"logprobs"`` or ``"agreement"``.
        routed: a human was asked.
        decided_by: who answered, when a human did.
        cost: USD of the model calls.
    """

    label: str
    confidence: float
    proposal: str
    rationale: str
    method: str
    routed: bool
    decided_by: str | None
    cost: float


@step(name="llm.decision")
async def _record(row: dict[str, Any]) -> None:
    client, ctx = current_client(), current_step()
    if client is None or ctx is None:
        return
    record = storage.DecisionRow(
        run_id=ctx.run_id,
        seq=ctx.step,
        workflow=ctx.workflow,
        name=row["name"],
        label=row["proposal"],
        confidence=row["confidence"],
        method=row["method"],
        routed=row["routed"],
        outcome=row["outcome"],
        decided_by=row["decided_by"],
        at=client.clock.now(),
    )
    await client.store.transact(lambda tx: storage.put_decision(tx, record))


async def decide(
    question: str,
    *,
    labels: Sequence[str],
    context: str | None = None,
    threshold: float = 0.8,
    model: str | None = None,
    name: str = "decision",
    samples: int = 5,
    review_rate: float = 0.0,
    assignees: Sequence[str] = (),
    timeout: float | None = None,
) -> LabelDecision:
    """Classify ``question`` into one of ``labels``; ask a human below ``threshold``.

    Args:
        context: material the model should consider (a document, a message).
        samples: answers compared when the provider gives no log-probabilities.
        review_rate: the fraction of confident decisions also sent to a human (chosen by a
            hash of run and call, so replay picks the same), to keep calibration honest.
        name: names the approval (``decide:<name>``) and the decision in calibration.
        assignees, timeout: passed to the approval.

    A human approves to accept the proposal, or answers another label as the comment
    (``spokehub approve RUN --name decide:NAME --comment LABEL``, or reject with the label as
    comment). A rejection without a label raises ``ApprovalRejected``.

    Example:
        >>> d = await decide("Is this post on-brand?", labels=["yes", "no"], context=draft)
        >>> d.label, d.confidence, d.method  # doctest: +SKIP
        ('yes', 0.93, 'logprobs')
    """
    labels = _check(labels, threshold, samples, review_rate)
    prompt = _prompt(question, labels, context)
    schema = _schema(labels)
    first = await complete(prompt, model=model, schema=schema, logprobs=True, top_logprobs=5)
    proposal = str(first.output.label)
    rationale = str(first.output.rationale)
    cost = first.cost
    confidence = logprob_confidence(first, proposal, labels)
    method = "logprobs"
    if confidence is None:
        method = "agreement"
        confidence, extra = await _agreement(prompt, schema, model, proposal, samples)
        cost += extra
    routed = confidence < threshold or _sampled(review_rate)
    label, decided_by = proposal, None
    rejected: ApprovalRejected | None = None
    if routed:
        subject = {
            "question": question,
            "labels": labels,
            "proposal": proposal,
            "confidence": round(confidence, 4),
            "rationale": rationale,
            "method": method,
        }
        try:
            answer = await approval(
                f"decide:{name}", subject=subject, timeout=timeout, assignees=assignees
            )
            label = _label_in(answer.comment, labels) or proposal
            decided_by = answer.by
        except ApprovalRejected as exc:
            decided_by = exc.by
            corrected = _label_in(exc.comment, labels)
            if corrected is None:
                rejected = exc
            label = corrected or REJECTED
    await _record(
        {
            "name": name,
            "proposal": proposal,
            "confidence": confidence,
            "method": method,
            "routed": routed,
            "outcome": label if routed else None,
            "decided_by": decided_by,
        }
    )
    if rejected is not None:
        raise rejected
    return LabelDecision(label, confidence, proposal, rationale, method, routed, decided_by, cost)


def _check(labels: Sequence[str], threshold: float, samples: int, review_rate: float) -> list[str]:
    labels = [str(label) for label in labels]
    if len(labels) < 2 or len(set(labels)) != len(labels) or not all(labels):
        raise LLMConfigurationError(f"decide(labels={labels!r}): give two or more distinct labels")
    if not 0 <= threshold <= 1:
        raise LLMConfigurationError(f"decide(threshold={threshold}): give a fraction 0 to 1")
    if samples < 2:
        raise LLMConfigurationError(f"decide(samples={samples}): give 2 or more")
    if not 0 <= review_rate <= 1:
        raise LLMConfigurationError(f"decide(review_rate={review_rate}): give a fraction 0 to 1")
    return labels


def _prompt(question: str, labels: list[str], context: str | None) -> list[dict[str, str]]:
    system = (
        'You classify. Answer with JSON only: {"label": one of '
        + ", ".join(f'"{label}"' for label in labels)
        + ', "rationale": one short sentence}. Put the label first.'
    )
    user = question if context is None else f"{question}\n\nContext:\n{context}"
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


@functools.lru_cache(maxsize=128)
def _model(labels: tuple[str, ...]) -> Any:
    from typing import Literal

    from pydantic import create_model

    return create_model(
        "decision",
        label=(Literal[labels], ...),  # type: ignore[arg-type]
        rationale=(str, ""),
    )


def _schema(labels: list[str]) -> Any:
    """A pydantic model whose ``label`` is one of ``labels``, label first."""
    return _model(tuple(labels))


async def _agreement(
    prompt: list[dict[str, str]],
    schema: Any,
    model: str | None,
    proposal: str,
    samples: int,
) -> tuple[float, float]:
    others = await asyncio.gather(
        *(
            complete(prompt, model=model, schema=schema, temperature=0.8, seed=i)
            for i in range(1, samples)
        )
    )
    votes = Counter([proposal, *(str(c.output.label) for c in others)])
    return votes[proposal] / samples, sum(c.cost for c in others)


def _label_in(comment: str | None, labels: list[str]) -> str | None:
    text = (comment or "").strip()
    return text if text in labels else None


def _sampled(rate: float) -> bool:
    if rate <= 0:
        return False
    scope = current_scope.get()
    # The run id and the call number are the same on replay, so the same decisions are sampled.
    wf = current_workflow()
    key = f"{wf.run_id if wf else ''}:{scope.next_seq if scope else 0}"
    unit = int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big") / 2**64
    return unit < rate


def logprob_confidence(result: Completion, label: str, labels: list[str]) -> float | None:
    """The probability the model gave ``label`` among ``labels``, from its token log-probs.

    At the token where the label's value starts, the alternatives are matched to labels by
    prefix; the chosen label's share of the probability mass on labels is the confidence.
    When that token does not tell the labels apart (a shared prefix), the joint probability
    of the label's tokens is used. None when the answer carries no usable log-probabilities.
    """
    tokens = result.logprobs
    if not tokens:
        return None
    text = result.text
    start = _value_offset(text, label)
    if start is None or "".join(t.token for t in tokens) != text:
        return None
    index, offset = _token_at(tokens, start)
    chosen = tokens[index]
    prefix = chosen.token[: start - offset]
    mass: dict[str, float] = {}
    alternatives = chosen.top or [(chosen.token, chosen.logprob)]
    if all(alt != chosen.token for alt, _ in alternatives):
        alternatives = [*alternatives, (chosen.token, chosen.logprob)]
    for alt, lp in alternatives:
        if not alt.startswith(prefix):
            continue
        matches = _matching(alt[len(prefix) :], labels)
        if len(matches) == 1:
            mass[matches[0]] = mass.get(matches[0], 0.0) + math.exp(lp)
    if len(_matching(chosen.token[len(prefix) :], labels)) == 1 and sum(mass.values()) > 0:
        return min(1.0, mass.get(label, 0.0) / sum(mass.values()))
    return _joint(tokens, index, offset, start + len(label))


def _matching(part: str, labels: list[str]) -> list[str]:
    part = part.rstrip('"').rstrip()
    if not part:
        return []
    return [lb for lb in labels if lb.startswith(part) or part.startswith(lb)]


def _value_offset(text: str, label: str) -> int | None:
    key = text.find('"label"')
    if key < 0:
        return None
    quote = text.find('"', text.find(":", key) + 1)
    if quote < 0 or not text.startswith(label, quote + 1):
        return None
    return quote + 1


def _token_at(tokens: list[TokenLogprob], position: int) -> tuple[int, int]:
    offset = 0
    for i, token in enumerate(tokens):
        if offset + len(token.token) > position:
            return i, offset
        offset += len(token.token)
    return len(tokens) - 1, offset - len(tokens[-1].token)


def _joint(tokens: list[TokenLogprob], index: int, offset: int, end: int) -> float:
    total = 0.0
    while index < len(tokens) and offset < end:
        total += tokens[index].logprob
        offset += len(tokens[index].token)
        index += 1
    return math.exp(total)
