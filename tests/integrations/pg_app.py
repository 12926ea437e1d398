"""Workflows for the shared-state test: every worker process imports this module.

The connector keeps its breakers and buckets in the PostgreSQL database the workers use,
configured from the environment the test gives the workers.
"""

from __future__ import annotations

import asyncio
import os

from spokehub import RetryPolicy, step, workflow
from spokehub.integrations import BreakerPolicy, HttpConnector, RateLimit

RATE = int(os.environ.get("ITEST_RATE", "0"))
THRESHOLD = int(os.environ.get("ITEST_THRESHOLD", "1000"))

conn = HttpConnector(
    allow=("127.0.0.1",),
    state=os.environ.get("SPOKEHUB_DATABASE_URL", "sqlite://"),
    rate_limits={"*": RateLimit(requests=RATE, period=3600)} if RATE else {},
    breaker=BreakerPolicy(failure_threshold=THRESHOLD, failure_rate=None, open_for=3600),
    inline_wait=0,
)


@step
async def whoami() -> int:
    await asyncio.sleep(0.2)  # hold the slot a moment, so the runs spread over the workers
    return os.getpid()


@workflow(name="itest.pg.call")
async def call(url: str) -> int:
    pid = await whoami()
    answer = await conn.get(url, headers={"x-worker": str(pid)}, retry=RetryPolicy(max_attempts=1))
    return answer.status
