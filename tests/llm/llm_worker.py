"""A worker process for the LLM and agent tests: ``python llm_worker.py DB_URL LEASE [APP]``.

It imports the app module (``tests.llm.llm_app`` by default, or ``tests.llm.APP``), which
wires the LLM providers from the environment at import, prints ``ready``, then runs a worker
until killed.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from spokehub import Client, Settings, Worker


async def main(db_url: str, lease: float, app: str) -> None:
    importlib.import_module(f"tests.llm.{app}")  # registers the workflows, configures the LLM
    settings = Settings(
        database_url=db_url, lease_seconds=lease, poll_interval=0.05, max_recoveries=10_000
    )
    client = Client(settings=settings)
    await client.ensure_schema()
    worker = Worker(client, concurrency=8)
    print("ready", os.getpid(), flush=True)
    await worker.run()


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(process)d %(message)s")
    app = sys.argv[3] if len(sys.argv) > 3 else "llm_app"
    asyncio.run(main(sys.argv[1], float(sys.argv[2]), app))
