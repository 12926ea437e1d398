"""Two real spokehub servers on loopback over one database (SQLite file, PostgreSQL schema),
real API tokens for named people, and a FakeClock shared by the servers and the test's worker.

Two servers, so that concurrent decisions really race through two connections to the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from spokehub import Client, Settings
from spokehub.ops import tokens
from spokehub.server.app import create_app
from spokehub.server.config import ServerConfig
from spokehub.testing import FakeClock
from tests.pg import fresh_schema
from tests.server.conftest import free_port

SECRET = b"approvals test server secret 32b"
PEOPLE = {
    "alice": "approver",
    "bob": "approver",
    "carol": "approver",
    "dave": "operator",  # starts runs
    "erin": "approver",  # assigned to nothing by name
    "root": "admin",
    "vic": "viewer",
}
CROWD = 50  # approvers for the concurrency test


@dataclass
class Gov:
    db_url: str
    urls: list[str]
    tokens: dict[str, str]
    clock: FakeClock
    worker: Client
    servers: list[uvicorn.Server] = field(default_factory=list)

    def http(self, who: str | None = None, server: int = 0) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.tokens[who]}"} if who else {}
        return httpx.Client(base_url=self.urls[server], headers=headers, timeout=20)

    def start(self, workflow: str, run_id: str, **data: Any) -> None:
        with self.http("dave") as http:
            body = {"workflow": workflow, "input": data, "run_id": run_id}
            answer = http.post("/api/v1/runs", json=body)
            assert answer.status_code == 201, answer.text

    def vote(self, who: str, run_id: str, verb: str = "approve", **body: Any) -> httpx.Response:
        with self.http(who) as http:
            return http.post(f"/api/v1/runs/{run_id}/{verb}", json=body)


async def _make_tokens(db_url: str) -> dict[str, str]:
    client = Client(settings=Settings(database_url=db_url))
    try:
        made = {}
        people = dict(PEOPLE) | {f"crowd{i:02d}": "approver" for i in range(CROWD)}
        for name, role in people.items():
            made[name] = (await tokens.create_token(client, name=name, role=role)).secret
        return made
    finally:
        await client.close_async()


def _serve(db_url: str, clock: FakeClock) -> tuple[str, uvicorn.Server, threading.Thread]:
    port = free_port()
    settings = Settings(database_url=db_url, poll_interval=0.05)
    config = ServerConfig(settings=settings, secret=SECRET, port=port)
    app = create_app(config, client=Client(settings=settings, clock=clock))
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, ws="none", log_level="warning")
    )
    thread = threading.Thread(target=server.run, name=f"uvicorn-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.01)
    return f"http://127.0.0.1:{port}", server, thread


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def gov(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gov]:
    with _database(request.param, tmp_path_factory.mktemp("gov")) as db_url:
        made = asyncio.run(_make_tokens(db_url))
        clock = FakeClock()
        started = [_serve(db_url, clock) for _ in range(2)]
        worker = Client(settings=Settings(database_url=db_url, poll_interval=0.05), clock=clock)
        try:
            yield Gov(db_url, [s[0] for s in started], made, clock, worker, [s[1] for s in started])
        finally:
            worker.close()
            for _, server, thread in started:
                server.should_exit = True
                thread.join(timeout=15)


@contextlib.contextmanager
def _database(kind: str, folder: Path) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{folder / 'gov.db'}"
        return
    with fresh_schema() as url:
        yield url
