"""Self-healing deploy: canary first, check its health, soak, then the fleet; roll back on failure.

    spokehub run examples/self_healing_deploy.py:self_healing_deploy --input '{}'
    spokehub run examples/self_healing_deploy.py:self_healing_deploy \
        --input '{"canary_health": "bad"}'     # health checks fail after retries: rolled back

Every ``deploy_to`` has ``compensate=rollback``: when the run fails, each target that got the
new version goes back to the version it ran before, newest first. ``canary_health`` picks
what the simulated metrics say: ``good``, ``flaky`` (no data for the first two checks) or
``bad`` (error rate above the SLO on every check).

The cluster is simulated by ``FakeCluster``: versions live in JSON files under
``.spokehub/example-effects/`` (or ``$SPOKEHUB_EXAMPLE_EFFECTS``), and each change is logged
under the step's idempotency key, so a retried deploy reports the version it replaced the
first time instead of the one it wrote itself.
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel

from spokehub import RetryPolicy, call, sleep, step, step_context, workflow

Health = Literal["good", "flaky", "bad"]
BASELINE = "v2.3.1"  # what every target runs before the first deploy
ERROR_BUDGET = 0.01  # the SLO: at most 1% of requests may fail


class HealthReport(BaseModel):
    target: str
    error_rate: float
    p99_ms: int


class Rollout(BaseModel):
    service: str
    version: str
    previous: str
    canary: HealthReport
    promoted: list[str]


class Unhealthy(Exception):
    """The target breaks its SLO, or has no metrics yet; a later check may pass."""


class FakeCluster:
    """Which version runs where, one JSON file per service; changes logged by idempotency key."""

    def _folder(self) -> Path:
        return Path(os.environ.get("SPOKEHUB_EXAMPLE_EFFECTS", ".spokehub/example-effects"))

    def set_version(self, service: str, target: str, version: str, key: str) -> str:
        folder = self._folder() / "cluster"
        change = folder / "changes" / f"{key.replace(':', '_')}.json"
        if change.exists():  # this change was made already: report it as made then
            return str(json.loads(change.read_text())["previous"])
        state_file = folder / f"{service}.json"
        state = json.loads(state_file.read_text()) if state_file.exists() else {}
        previous = str(state.get(target, BASELINE))
        state[target] = version
        change.parent.mkdir(parents=True, exist_ok=True)
        state_file.write_text(json.dumps(state, indent=2, sort_keys=True))
        record = {"key": key, "target": target, "previous": previous, "version": version}
        change.write_text(json.dumps(record, indent=2))
        return previous


cluster = FakeCluster()


async def rollback(previous: str, service: str, target: str, version: str) -> None:
    cluster.set_version(service, target, previous, step_context().idempotency_key)


@step(retry=RetryPolicy(max_attempts=3, initial_delay=0.1), compensate=rollback)
async def deploy_to(service: str, target: str, version: str) -> str:
    """Put ``version`` on ``target``; return the version it replaced."""
    return cluster.set_version(service, target, version, step_context().idempotency_key)


@step(retry=RetryPolicy(max_attempts=4, initial_delay=0.2, max_delay=1.0), timeout=5.0)
def check_health(service: str, target: str, version: str, simulate: Health) -> HealthReport:
    """A blocking metrics query, so a plain ``def`` step: it runs in a worker thread."""
    attempt = step_context().attempt
    if simulate == "flaky" and attempt <= 2:
        raise Unhealthy(f"{service}@{target}: no metrics for {version} yet")
    error_rate = 0.075 if simulate == "bad" else 0.002
    if error_rate > ERROR_BUDGET:
        raise Unhealthy(f"{service}@{target} {version}: error rate {error_rate:.1%} > 1%")
    return HealthReport(target=target, error_rate=error_rate, p99_ms=180)


@workflow
async def self_healing_deploy(
    service: str = "checkout",
    version: str = "v2.4.0",
    fleet: list[str] | None = None,
    canary_health: Health = "good",
    soak_seconds: float = 1.0,
) -> Rollout:
    """Canary, health check, soak, check again, then the whole fleet in parallel."""
    regions = fleet or ["eu-west", "us-east", "ap-south"]
    previous = await deploy_to(service, "canary", version)
    await call(check_health, service, "canary", version, canary_health)
    await sleep(soak_seconds)  # durable: a restart during the soak resumes here
    report = await call(check_health, service, "canary", version, canary_health)
    await asyncio.gather(*(deploy_to(service, region, version) for region in regions))
    return Rollout(
        service=service, version=version, previous=previous, canary=report, promoted=regions
    )
