"""What an LLM step costs spokehub beyond a plain step, and what the intelligence layer adds
to ``import spokehub``.

    .venv/bin/python benchmarks/llm_bench.py

Both workflows make the same HTTP call to the same OpenAI-compatible server on loopback (a
separate process, so its CPU is not counted): the plain one from an ordinary ``@step`` with a
shared ``httpx`` client, the other through ``llm.complete`` (request building, resolution,
pricing, the spend row, the bigger ledger record). The figure is the difference in this
process's CPU time per call, best of a few rounds. Target: at most 1 ms.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

import spokehub as sh
from spokehub.intelligence import LLMConfig, OpenAICompatible, Price, PriceTable, configure, llm

ANSWER = json.dumps(
    {
        "id": "x",
        "model": "m",
        "choices": [{"message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 12, "completion_tokens": 3},
    }
).encode()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", 0)))
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(ANSWER)))
        self.end_headers()
        self.wfile.write(ANSWER)


def serve() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print(server.server_address[1], flush=True)
    server.serve_forever()


_http: dict[str, httpx.AsyncClient] = {}


@sh.step
async def bench_plain(url: str, prompt: str) -> str:
    client = _http.get("c")
    if client is None:
        client = _http["c"] = httpx.AsyncClient(base_url=url)
    body = {"model": "m", "messages": [{"role": "user", "content": prompt}], "temperature": 0}
    answer = (await client.post("/chat/completions", json=body)).json()
    return str(answer["choices"][0]["message"]["content"])


@sh.workflow
async def bench_plain_ten(url: str) -> int:
    for i in range(10):
        await bench_plain(url, f"item {i}")
    return 10


@sh.workflow
async def bench_llm_ten(url: str) -> int:
    for i in range(10):
        await llm.complete(f"item {i}", model="m")
    return 10


async def cpu_per_call(client: sh.Client, wf: Any, url: str, runs: int, rounds: int) -> float:
    for _ in range(5):
        await client.run_async(wf, url)
    best = float("inf")
    for _ in range(rounds):
        began = time.process_time()
        for _ in range(runs):
            await client.run_async(wf, url)
        best = min(best, (time.process_time() - began) / (runs * 10) * 1000)
    return best


async def measure(url: str, runs: int = 40, rounds: int = 3) -> tuple[float, float]:
    configure(
        LLMConfig(
            providers={"default": OpenAICompatible(url)}, prices=PriceTable({"m": Price(1, 1)})
        )
    )
    with tempfile.TemporaryDirectory() as folder:
        client = sh.Client(f"sqlite:///{folder}/bench.db")
        plain, step = [], []
        for _ in range(2):  # interleaved: this machine's CPU speed drifts
            plain.append(await cpu_per_call(client, bench_plain_ten, url, runs, rounds))
            step.append(await cpu_per_call(client, bench_llm_ten, url, runs, rounds))
        await client.close_async()
        for c in _http.values():
            await c.aclose()
    return min(plain), min(step)


def main() -> None:
    proc = subprocess.Popen(
        [sys.executable, __file__, "--serve"], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    url = f"http://127.0.0.1:{proc.stdout.readline().strip()}/v1"
    try:
        plain, step = asyncio.run(measure(url))
    finally:
        proc.terminate()
        proc.wait()
    extra = step - plain
    print(f"CPU ms per call, plain step with the same HTTP call: {plain:.3f}")
    print(f"CPU ms per call, llm.complete step:                  {step:.3f}")
    print(f"llm step overhead: {extra:.3f} ms ({extra / 1.0:.2f} of the 1 ms limit)")
    print(
        f"import spokehub: {import_ms('import spokehub'):.0f} ms; "
        f"import spokehub.intelligence: {import_ms('import spokehub.intelligence'):.0f} ms "
        "(median of 5 fresh processes minus an empty interpreter; limit for import spokehub: "
        "150 ms)"
    )


def import_ms(statement: str) -> float:
    times = []
    for _ in range(5):
        began = time.perf_counter()
        subprocess.run([sys.executable, "-c", statement], check=True, env=dict(os.environ))
        times.append((time.perf_counter() - began) * 1000)
    baseline = []
    for _ in range(5):
        began = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        baseline.append((time.perf_counter() - began) * 1000)
    return sorted(times)[2] - sorted(baseline)[2]


if __name__ == "__main__":
    if sys.argv[1:] == ["--serve"]:
        serve()
    else:
        main()
