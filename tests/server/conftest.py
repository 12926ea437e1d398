"""A real spokehub server on loopback: uvicorn in a thread, a SQLite file, a worker, tokens.

``live`` is shared by the tests of a session (starting uvicorn per test would dominate the run
time); tests keep apart by using their own run ids. Workflow names start with ``api_`` because
workflow names are global in a process.
"""

from __future__ import annotations

import asyncio
import base64
import os
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from spokehub import Client, Settings, approval, step, wait_for_signal, workflow
from spokehub.ops import tokens
from spokehub.server.app import create_app
from spokehub.server.config import ServerConfig

HOOK_SECRET = b"a test secret of thirty-two byte"
HOOK_SECRET_ENV = "SPOKEHUB_TEST_HOOK_SECRET"
ROLES = ("viewer", "operator", "approver", "admin")


@step
async def api_add_step(a: int, b: int) -> int:
    return a + b


@workflow
async def api_add(a: int, b: int = 1) -> int:
    return await api_add_step(a, b)


@workflow
async def api_review(doc: str) -> str:
    decision = await approval("editor", subject={"doc": doc})
    return f"{doc} approved by {decision.by}"


@workflow
async def api_wait_signal() -> Any:
    return await wait_for_signal("go")


@workflow
async def api_echo(event: dict[str, Any]) -> dict[str, Any]:
    return event


@workflow
async def api_kwargs(kind: str, size: int = 0) -> str:
    return f"{kind}:{size}"


@dataclass
class LiveServer:
    url: str
    db_url: str
    tokens: dict[str, str]  # role -> token secret
    app: FastAPI

    def http(
        self, role: str | None = None, *, headers: dict[str, str] | None = None, **kwargs: Any
    ) -> httpx.Client:
        """An HTTP client for the server, with the token of ``role`` when one is given."""
        merged = {"Authorization": f"Bearer {self.tokens[role]}"} if role else {}
        merged.update(headers or {})
        return httpx.Client(base_url=self.url, headers=merged, timeout=10, **kwargs)

    def wait_for(self, run_id: str, *statuses: str, timeout: float = 10) -> dict[str, Any]:
        """Poll the run over HTTP until its status is one of ``statuses``."""
        deadline = time.monotonic() + timeout
        with self.http("viewer") as http:
            while True:
                run: dict[str, Any] = http.get(f"/api/v1/runs/{run_id}").json()
                if run["status"] in statuses or time.monotonic() > deadline:
                    return run
                time.sleep(0.02)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def _make_tokens(db_url: str) -> dict[str, str]:
    client = Client(settings=Settings(database_url=db_url))
    try:
        made = {}
        for role in ROLES:
            created = await tokens.create_token(client, name=f"test-{role}", role=role)
            made[role] = created.secret
        return made
    finally:
        await client.close_async()


def write_hooks(path: Path) -> Path:
    path.write_text(
        f"""
[hooks.deploy]
workflow = "api_echo"
secret_env = "{HOOK_SECRET_ENV}"
argument = "event"

[hooks.kw]
workflow = "api_kwargs"
secret_env = "{HOOK_SECRET_ENV}"
tolerance = "1m"
""",
        encoding="utf-8",
    )
    return path


@pytest.fixture(scope="session")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    folder = tmp_path_factory.mktemp("server")
    db_url = f"sqlite:///{folder / 'spokehub.db'}"
    os.environ[HOOK_SECRET_ENV] = "whsec_" + base64.b64encode(HOOK_SECRET).decode()
    made = asyncio.run(_make_tokens(db_url))
    port = free_port()
    config = ServerConfig(
        settings=Settings(database_url=db_url, poll_interval=0.05),
        secret=b"server secret for the tests, 32b",
        port=port,
        hooks_file=write_hooks(folder / "hooks.toml"),
        worker=True,
    )
    app = create_app(config)
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, ws="none", log_level="warning")
    )
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.01)
    try:
        yield LiveServer(url=f"http://127.0.0.1:{port}", db_url=db_url, tokens=made, app=app)
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        os.environ.pop(HOOK_SECRET_ENV, None)
