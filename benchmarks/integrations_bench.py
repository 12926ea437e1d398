"""Benchmarks of the integrations layer: connector overhead, breaker and rate-limit checks.

    .venv/bin/python benchmarks/integrations_bench.py [--quick] [--json FILE]

* **connector overhead**: CPU per GET (``time.process_time``, this process only) through
  ``HttpConnector`` minus CPU per GET through a plain ``httpx.AsyncClient``, both against the
  same loopback server running in another process (so its CPU is not counted), both with
  keep-alive. The difference is everything the connector adds but the network: egress
  check, breaker, rate limit, headers, size cap, response model. Target <= 1 ms.
* **breaker check** and **rate-limit check**: ``InProcessHostState.admit`` (breaker only, and
  breaker plus token bucket) and ``record``, in process. Target <= 50 us each.

* **outbox publishing**: N outbox rows in a SQLite file, drained by ``OutboxPublisher`` to
  the local RabbitMQ (``amqp://guest:guest@127.0.0.1:5672/``; a fresh topic exchange with one
  bound queue, both deleted afterwards): events per second, claim + publish with confirms +
  mark included. Target >= 1,000 events/s. Skipped when no broker answers.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from spokehub.integrations import BreakerPolicy, HttpConnector, InProcessHostState, RateLimit

SERVER = r"""
import asyncio, sys
BODY = b'{"ok": true}'
ANSWER = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
          + str(len(BODY)).encode() + b"\r\n\r\n" + BODY)
async def handle(reader, writer):
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            writer.write(ANSWER)
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        writer.close()
async def main():
    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    await server.serve_forever()
asyncio.run(main())
"""


async def _cpu_per_call(call: Any, n: int) -> float:
    for _ in range(20):  # warm-up: connections, caches
        await call()
    began = time.process_time()
    for _ in range(n):
        await call()
    return (time.process_time() - began) / n


def connector_overhead(n: int) -> dict[str, float]:
    proc = subprocess.Popen([sys.executable, "-c", SERVER], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        url = f"http://127.0.0.1:{proc.stdout.readline().strip()}/ping"
        return asyncio.run(_overhead(url, n))
    finally:
        proc.kill()
        proc.wait()


async def _overhead(url: str, n: int) -> dict[str, float]:
    conn = HttpConnector(
        allow=("127.0.0.1",),
        state=InProcessHostState(),
        async_keepalive=True,
        rate_limits={"*": RateLimit(requests=10**9, period=1)},
    )
    async with httpx.AsyncClient() as raw:
        plain = await _cpu_per_call(lambda: raw.get(url), n)
        guarded = await _cpu_per_call(lambda: conn.get(url), n)
        plain_again = await _cpu_per_call(lambda: raw.get(url), n)
    await conn.aclose()
    reference = (plain + plain_again) / 2
    return {
        "httpx_cpu_ms_per_call": reference * 1000,
        "connector_cpu_ms_per_call": guarded * 1000,
        "connector_overhead_cpu_ms": (guarded - reference) * 1000,
    }


def _per_call(fn: Any, n: int) -> float:
    began = time.perf_counter()
    for i in range(n):
        fn(i)
    return (time.perf_counter() - began) / n


def checks(n: int) -> dict[str, float]:
    state = InProcessHostState()
    policy = BreakerPolicy()
    limit = RateLimit(requests=10**9, period=1)
    now = time.time()
    return {
        "breaker_admit_us": _per_call(lambda i: state.admit("h:443", now + i, policy, None), n)
        * 1e6,
        "breaker_record_us": _per_call(lambda i: state.record("h:443", True, now + i, policy), n)
        * 1e6,
        "breaker_and_rate_limit_admit_us": _per_call(
            lambda i: state.admit("h:443", now + i, policy, limit), n
        )
        * 1e6,
    }


def outbox_rate(n: int) -> dict[str, float]:
    import secrets
    import tempfile

    from spokehub import Client
    from spokehub.integrations.bus import RabbitMQBus
    from spokehub.integrations.publisher import OutboxPublisher
    from spokehub.store.base import Tx

    url = "amqp://guest:guest@127.0.0.1:5672/"
    exchange = f"bench.{secrets.token_hex(4)}"

    def fill(tx: Tx) -> None:
        for i in range(n):
            body = json.dumps({"id": f"bench:{i}", "event": "bench.tick", "data": {"i": i}})
            tx.execute(
                "INSERT INTO outbox (id, name, run_id, payload, created_at) VALUES (?,?,?,?,?)",
                (f"bench:{i}", "bench.tick", "bench", body, time.time()),
            )

    async def run(folder: str) -> float:
        import aio_pika

        client = Client(f"sqlite:///{folder}/outbox.db")
        await client.ensure_schema()
        await client.store.transact(fill)
        connection = await aio_pika.connect_robust(url)
        channel = await connection.channel()
        ex = await channel.declare_exchange(exchange, aio_pika.ExchangeType.TOPIC, durable=True)
        queue = await channel.declare_queue(exchange, durable=False, auto_delete=False)
        await queue.bind(ex, routing_key="#")
        bus = RabbitMQBus(url, exchange)
        try:
            began = time.perf_counter()
            sent = await OutboxPublisher(client, bus, batch=500).drain()
            elapsed = time.perf_counter() - began
            assert sent == n, (sent, n)
        finally:
            await bus.close()
            await channel.queue_delete(exchange)
            await channel.exchange_delete(exchange)
            await connection.close()
            await client.close_async()
        return n / elapsed

    try:
        import socket

        socket.create_connection(("127.0.0.1", 5672), 2).close()
    except OSError:
        return {}
    with tempfile.TemporaryDirectory() as folder:
        return {"outbox_events_per_s": asyncio.run(run(folder))}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    calls = 200 if args.quick else 2000
    figures = {
        **connector_overhead(calls),
        **checks(calls * 50),
        **outbox_rate(1000 if args.quick else 10_000),
    }
    targets = {
        "connector_overhead_cpu_ms": 1.0,
        "breaker_admit_us": 50.0,
        "breaker_record_us": 50.0,
        "breaker_and_rate_limit_admit_us": 50.0,
    }
    floors = {"outbox_events_per_s": 1000.0}
    print(f"{'figure':<36} {'target':>8} {'measured':>10}  result")
    for name, value in figures.items():
        target, floor = targets.get(name), floors.get(name)
        if target is not None:
            verdict, shown = ("pass" if value <= target else "MISS"), f"<= {target:g}"
        elif floor is not None:
            verdict, shown = ("pass" if value >= floor else "MISS"), f">= {floor:g}"
        else:
            verdict, shown = "", "-"
        print(f"{name:<36} {shown:>8} {value:>10.3f}  {verdict}")
    if "outbox_events_per_s" not in figures:
        print("outbox publishing: not measured (no RabbitMQ at 127.0.0.1:5672)")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
