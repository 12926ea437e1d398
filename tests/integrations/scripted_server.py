"""A real HTTP server on loopback whose answers the test scripts, with its own log.

Every accepted connection and every request (method, path, headers, body) is logged by the
server itself, so tests assert on what really reached the wire.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Answer:
    status: int = 200
    body: bytes = b'{"ok": true}'
    headers: dict[str, str] = field(default_factory=lambda: {"Content-Type": "application/json"})
    delay: float = 0.0  # seconds before answering
    hang: bool = False  # never answer (until the server stops)
    length: int | None = None  # a Content-Length to announce instead (-1: none)


@dataclass(frozen=True)
class Logged:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    at: float


class _Handler(BaseHTTPRequestHandler):
    server: ScriptedServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
        return

    def _serve(self) -> None:
        size = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(size) if size else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        self.server.record(Logged(self.command, self.path, headers, body, time.time()))
        answer = self.server.next_answer()
        if answer.hang:
            self.server.stopping.wait(30)
            return
        if answer.delay:
            time.sleep(answer.delay)
        self.send_response(answer.status)
        for name, value in answer.headers.items():
            self.send_header(name, value)
        if answer.length == -1:  # no length: the body ends when the connection closes
            self.send_header("Connection", "close")
            self.close_connection = True
        else:
            self.send_header("Content-Length", str(answer.length or len(answer.body)))
        self.end_headers()
        with contextlib.suppress(OSError):  # the client gave up (size cap, timeout)
            self.wfile.write(answer.body)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve


class ScriptedServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, host: str = "127.0.0.1") -> None:
        super().__init__((host, 0), _Handler)
        self.host = host
        self.lock = threading.Lock()
        self.script: deque[Answer] = deque()
        self.default = Answer()
        self.requests: list[Logged] = []
        self.connections = 0
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)

    def verify_request(self, request: Any, client_address: Any) -> bool:
        with self.lock:
            self.connections += 1
        return True

    def record(self, entry: Logged) -> None:
        with self.lock:
            self.requests.append(entry)

    def next_answer(self) -> Answer:
        with self.lock:
            return self.script.popleft() if self.script else self.default

    def answer(self, *answers: Answer) -> None:
        with self.lock:
            self.script.extend(answers)

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def url(self, path: str = "/") -> str:
        return f"http://{self.host}:{self.port}{path}"

    @classmethod
    def on(cls, host: str) -> ScriptedServer:
        return cls(host)

    def __enter__(self) -> ScriptedServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        self.shutdown()
        self.server_close()
        self.thread.join(5)
