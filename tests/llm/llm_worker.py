"""A worker process for the LLM crash and scale-out tests: ``python llm_worker.py DB_URL LEASE``.

It wires the LLM providers from the environment (``llm_app.configure``), prints ``ready``,
then runs a worker until killed.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from spokehub import Client, Settings, Worker
from tests.llm import llm_app


async def main(db_url: str, lease: float) -> None:
    llm_app.configure()
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
    asyncio.run(main(sys.argv[1], float(sys.argv[2])))
