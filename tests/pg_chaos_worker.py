"""A worker process for the PostgreSQL failure tests: ``python pg_chaos_worker.py URL CONCURRENCY``.

Settings come from ``SPOKEHUB_*`` variables (lease, poll interval, inline wait, drain
timeout, max recoveries), the external ledger from ``PG_CHAOS_LEDGER``. It imports
``pg_chaos_app`` (which registers the workflows), opens the schema (retrying while the
server is down, as a supervisor restarting it would), prints ``ready PID`` and works until
SIGTERM, which drains it (``stop(drain=True)``: steps in flight finish, runs are given back),
then exits 0. The tests SIGKILL, SIGSTOP and SIGTERM it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from spokehub import Client, Settings, StoreError, Worker
from tests import pg_chaos_app  # noqa: F401  (registers the workflows)

log = logging.getLogger("pg_chaos_worker")


async def open_client(url: str) -> Client:
    deadline = time.monotonic() + 60
    while True:
        try:
            client = Client(settings=Settings.from_env(database_url=url))
            await client.ensure_schema()
            return client
        except StoreError as exc:
            if time.monotonic() > deadline:
                raise
            log.warning("cannot open the store yet (%s); retrying", exc)
            await asyncio.sleep(0.2)


async def main(url: str, concurrency: int) -> None:
    client = await open_client(url)
    worker = Worker(client, concurrency=concurrency)
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, lambda: worker.stop(drain=True))
    print("ready", os.getpid(), worker.owner, flush=True)
    try:
        await worker.run()
    finally:
        await client.close_async()
    log.warning("worker %s stopped", worker.owner)


if __name__ == "__main__":
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(process)d %(name)s %(levelname)s %(message)s",
    )
    asyncio.run(main(sys.argv[1], int(sys.argv[2])))
