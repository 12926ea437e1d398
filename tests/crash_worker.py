"""A worker process for the crash tests: ``python crash_worker.py DB_URL LEASE CONCURRENCY INLINE``.

It imports ``crash_app`` (which registers the workflows), prints ``ready`` once everything is
imported and the client is open, then runs a worker forever. The tests SIGKILL it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from spokehub import Client, Settings, Worker
from tests import crash_app  # noqa: F401  (registers the workflows)


async def main(db_url: str, lease: float, concurrency: int, inline_wait: float) -> None:
    settings = Settings(
        database_url=db_url,
        lease_seconds=lease,
        poll_interval=0.05,
        inline_wait=inline_wait,
        # This test kills workers on purpose, far more often than dead-lettering allows.
        max_recoveries=10_000,
    )
    client = Client(settings=settings)
    await client.ensure_schema()
    worker = Worker(client, concurrency=concurrency)
    print("ready", os.getpid(), flush=True)
    await worker.run()


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(process)d %(message)s")
    url, lease, conc, inline = sys.argv[1:5]
    asyncio.run(main(url, float(lease), int(conc), float(inline)))
