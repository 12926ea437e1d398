"""Watch runs for anomalies: an interceptor that feeds the detectors from the ledger.

``AnomalyWatch`` reads each committed ledger event (it needs no store reads and never slows a
run: ``events_committed`` runs after the commit, and its errors are logged, not raised) and
feeds, per (workflow, step):

- ``duration``: each completed attempt's duration, to a robust z-score (long tails are
  normal for steps; a step suddenly ten times slower is not);
- ``failure``: 1 for a failed attempt and 0 for a completed one, to an EWMA chart (a failure
  rate creeping up is caught before retries run out);
- ``cost``: the cost of LLM steps (``llm.complete`` results that carry one), to a robust
  z-score;
- any custom metric a workflow reports with ``observe(metric, value)``.

Every anomaly becomes a row in the ``anomalies`` table (markers on the dashboard's run page,
and what ``list_anomalies`` returns), an ``anomaly.detected`` domain event in the outbox (same
transaction, when the outbox is installed: the event bus publishes it), a Prometheus counter
(``spokehub_anomalies_total``) when a registry is given, and a call to ``on_anomaly``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any

from spokehub.engine.events import EventKind
from spokehub.integrations import outbox
from spokehub.intelligence.detectors import EWMA, Anomaly, DetectorBank, RobustZScore
from spokehub.runtime.client import Client
from spokehub.runtime.interceptors import EventsCommittedInput, Interceptor
from spokehub.store.base import Tx

__all__ = ["AnomalyRecord", "AnomalyWatch", "list_anomalies"]

log = logging.getLogger("spokehub.anomalies")


@dataclass(frozen=True, slots=True)
class AnomalyRecord:
    """An anomaly as stored: which series, which run, how far out."""

    at: float
    metric: str
    workflow: str
    step: str
    value: float
    expected: float
    score: float
    detector: str
    run_id: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "at": self.at, "metric": self.metric, "workflow": self.workflow, "step": self.step,
            "value": self.value, "expected": self.expected, "score": round(self.score, 3),
            "detector": self.detector, "run_id": self.run_id,
        }  # fmt: skip


def _factory(key: Hashable) -> Any:
    metric = key[0] if isinstance(key, tuple) else key
    if metric == "failure":
        return EWMA(alpha=0.1, limit=3.0, warmup=30, min_sigma=0.05, key=key)
    return RobustZScore(window=100, threshold=4.0, min_samples=20, key=key)


class AnomalyWatch(Interceptor):
    """Feed detectors from committed events; record, count and announce anomalies.

    Args:
        client: where anomalies are recorded (its store and clock).
        on_anomaly: called with each ``AnomalyRecord`` (publish it as a domain event here).
        registry: a prometheus_client ``CollectorRegistry`` to count anomalies in.
        factory: builds the detector of a new series key ``(metric, workflow, step)``.
    """

    def __init__(
        self,
        client: Client,
        *,
        on_anomaly: Callable[[AnomalyRecord], None] | None = None,
        registry: Any = None,
        factory: Callable[[Hashable], Any] = _factory,
    ) -> None:
        self._client = client
        self._on_anomaly = on_anomaly
        self._bank = DetectorBank(factory)
        self._counter = None
        self._pending: set[asyncio.Task[None]] = set()
        if registry is not None:
            from prometheus_client import Counter

            self._counter = Counter(
                "spokehub_anomalies",
                "Anomalies detected in step durations, failure rates, costs and custom metrics.",
                ["metric", "workflow", "step", "detector"],
                registry=registry,
            )

    def events_committed(self, input: EventsCommittedInput) -> None:
        for event in input.events:
            name = str(event.data.get("name", ""))
            if event.kind is EventKind.STEP_COMPLETED:
                self._feed("failure", input, name, 0.0, event.at)
                duration = event.data.get("duration")
                if isinstance(duration, int | float):
                    self._feed("duration", input, name, float(duration), event.at)
                cost = _cost(event.data.get("result"))
                if cost is not None:
                    self._feed("cost", input, name, cost, event.at)
            elif event.kind in (EventKind.STEP_FAILED, EventKind.RETRY_SCHEDULED):
                self._feed("failure", input, name, 1.0, event.at)  # one per failed attempt

    def observe(self, metric: str, workflow: str, step: str, value: float, *, at: float,
                run_id: str | None = None) -> AnomalyRecord | None:  # fmt: skip
        """Feed a custom metric; returns the anomaly it caused, if any."""
        anomaly = self._bank.observe((metric, workflow, step), value)
        if anomaly is None:
            return None
        return self._report(anomaly, at, run_id)

    def _feed(self, metric: str, inp: EventsCommittedInput, step: str, value: float,
              at: float) -> None:  # fmt: skip
        anomaly = self._bank.observe((metric, inp.workflow, step), value)
        if anomaly is not None:
            self._report(anomaly, at, inp.run_id)

    def _report(self, anomaly: Anomaly, at: float, run_id: str | None) -> AnomalyRecord:
        metric, workflow, step = (str(part) for part in anomaly.key)  # type: ignore[attr-defined]
        record = AnomalyRecord(at, metric, workflow, step, anomaly.value, anomaly.expected,
                               anomaly.score, anomaly.detector, run_id)  # fmt: skip
        log.warning(
            "anomaly in %s of %s/%s: %.4g (expected about %.4g, %s score %.1f)",
            metric, workflow, step, anomaly.value, anomaly.expected, anomaly.detector,
            anomaly.score,
        )  # fmt: skip
        if self._counter is not None:
            self._counter.labels(metric, workflow, step, anomaly.detector).inc()
        if self._on_anomaly is not None:
            self._on_anomaly(record)
        self._store(record)
        return record

    def _store(self, record: AnomalyRecord) -> None:
        publish = outbox.installed(self._client.store)

        def insert(tx: Tx) -> None:
            row = tx.execute(
                "INSERT INTO anomalies (at, metric, workflow, step, value, expected, score, "
                "detector, run_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
                (record.at, record.metric, record.workflow, record.step, record.value,
                 record.expected, record.score, record.detector, record.run_id),
            ).fetchone()  # fmt: skip
            if publish:
                msg_id = f"anomaly:{row[0]}"
                payload = {"id": msg_id, "event": "anomaly.detected", **record.to_dict()}
                outbox.write_message(tx, msg_id, "anomaly.detected", payload, record.run_id)

        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # no loop (a synchronous caller): counted and announced, not stored
        task = loop.create_task(self._write(insert))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _write(self, fn: Callable[[Tx], None]) -> None:
        try:
            await self._client.ensure_schema()
            await self._client.store.transact(fn)
        except Exception:
            log.exception("could not record an anomaly")

    async def flush(self) -> None:
        """Wait until every anomaly seen so far is stored."""
        while self._pending:
            await asyncio.gather(*list(self._pending))


def _cost(result: Any) -> float | None:
    if isinstance(result, dict):
        value = result.get("cost")
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    return None


async def list_anomalies(
    client: Client,
    *,
    workflow: str | None = None,
    run_id: str | None = None,
    since: float | None = None,
    limit: int = 100,
) -> list[AnomalyRecord]:
    """Recorded anomalies, newest first."""
    await client.ensure_schema()

    def select(tx: Tx) -> list[AnomalyRecord]:
        sql = (
            "SELECT at, metric, workflow, step, value, expected, score, detector, run_id "
            "FROM anomalies WHERE 1 = 1"
        )
        params: list[Any] = []
        if workflow is not None:
            sql += " AND workflow = ?"
            params.append(workflow)
        if run_id is not None:
            sql += " AND run_id = ?"
            params.append(run_id)
        if since is not None:
            sql += " AND at >= ?"
            params.append(since)
        sql += " ORDER BY at DESC, id DESC LIMIT ?"
        params.append(limit)
        return [AnomalyRecord(*row) for row in tx.execute(sql, params).fetchall()]

    return await client.store.transact(select, write=False)
