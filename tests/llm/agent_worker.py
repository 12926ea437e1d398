"""A worker process for the agent SIGKILL test: ``python agent_worker.py DB_URL LEASE``."""

from __future__ import annotations

import asyncio
import logging
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from spokehub import Client, Settings, Worker
from tests.llm import agent_app


async def main(db_url: str, lease: float) -> None:
    agent_app.configure()
    settings = Settings(
        database_url=db_url, lease_seconds=lease, poll_interval=0.05, max_recoveries=10_000
    )
    client = Client(settings=settings)
    await client.ensure_schema()
    worker = Worker(client, concurrency=4)
    print("ready", os.getpid(), flush=True)
    await worker.run()


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(process)d %(message)s")
    asyncio.run(main(sys.argv[1], float(sys.argv[2])))
