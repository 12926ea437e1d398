"""A real spokehub server on loopback for the dashboard tests, with a token per role.

``thread_server`` runs uvicorn in a thread of the test process (fast, for HTTP tests);
the browser tests start ``spokehub serve`` in a subprocess instead (see ``conftest.py``).
"""

from __future__ import annotations

import asyncio
import re
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import uvicorn

from spokehub import Client, Settings
from spokehub.ops.tokens import Role, create_token
from spokehub.server.app import create_app
from spokehub.server.config import ServerConfig

SECRET = b"dashboard-tests-secret-0123456789"


@dataclass(frozen=True)
class Served:
    url: str
    tokens: dict[str, str]  # role -> token secret
    db_url: str


def make_tokens(client: Client) -> dict[str, str]:
    async def create() -> dict[str, str]:
        return {
            role.value: (await create_token(client, name=f"{role.value}-user", role=role)).secret
            for role in Role
        }

    return asyncio.run(create())


LOGIN_CSRF = re.compile(r'name="csrf_token" value="([^"]*)"')


def post_login(http: httpx.Client, token: str, next_path: str = "/ui/runs") -> httpx.Response:
    """Log in as a browser does: load the form (it sets the login-CSRF cookie), then post it."""
    form = http.get("/ui/login")
    match = LOGIN_CSRF.search(form.text)
    assert match is not None, "the login form has no CSRF field"
    data = {"token": token, "next": next_path, "csrf_token": match.group(1)}
    return http.post("/ui/login", data=data)


@contextmanager
def thread_server(db_url: str, *, worker: bool = True) -> Iterator[Served]:
    settings = Settings(database_url=db_url, poll_interval=0.05)
    with Client(settings=settings) as setup:
        asyncio.run(setup.ensure_schema())
        tokens = make_tokens(setup)
    config = ServerConfig(settings=settings, secret=SECRET, worker=worker)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(config), log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.01)
    try:
        yield Served(f"http://127.0.0.1:{port}", tokens, db_url)
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        sock.close()


def wait_until_serving(proc: Any, url: str, log_name: str, timeout: float = 20) -> None:
    """Wait until a ``spokehub serve`` subprocess answers its login page (or fail, naming
    its log)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(f"{url}/ui/login", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert proc.poll() is None, f"the server exited; see {log_name}"
        assert time.monotonic() < deadline, f"the server did not answer; see {log_name}"
        time.sleep(0.1)
