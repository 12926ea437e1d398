"""One worker process for ``benchmarks/pg_bench.py``: ``spokehub worker``, plus its counters.

    python benchmarks/pg_worker.py URL CONCURRENCY

It does what ``spokehub worker --app benchmarks/pg_workflows.py`` does (a ``spokehub.Worker``
on the default queue until SIGTERM), and on the way out prints, as one JSON line, what only
the process itself can count: the store's commits, operations and batches, and its CPU time.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import time

import pg_workflows  # noqa: F401  (registers the workflow the worker executes)

from spokehub import Client, Settings, Worker


async def work(url: str, concurrency: int) -> dict[str, float]:
    client = Client(settings=Settings(database_url=url))
    try:
        worker = Worker(client, concurrency=concurrency)
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, worker.stop)
        await worker.run()
        stats = client.store.stats
        return {
            "commits": stats.commits,
            "operations": stats.operations,
            "batches": stats.batches,
            "direct": stats.direct,
            "activations": worker.completed_activations,
            "cpu_s": time.process_time(),
        }
    finally:
        await client.close_async()


if __name__ == "__main__":
    print(json.dumps(asyncio.run(work(sys.argv[1], int(sys.argv[2])))), flush=True)
