"""A real OpenAI-compatible chat-completions server on loopback, scripted by each test.

It speaks the wire protocol (``POST /v1/chat/completions``, JSON in and out, status codes,
``Retry-After``) and logs every request it receives (time, body, headers), so tests assert
from the server's own log what reached it.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Answer:
    content: Any
    prompt_tokens: int = 10
    completion_tokens: int = 5
    logprobs: list[dict[str, Any]] | None = None
    delay: float = 0.0
    model: str | None = None


@dataclass
class Status:
    code: int
    body: str = '{"error": {"message": "scripted"}}'
    retry_after: str | None = None
    delay: float = 0.0


@dataclass
class Raw:
    """A 200 whose body is this text as is (malformed answers)."""

    text: str


Item = Answer | Status | Raw
Responder = Callable[[dict[str, Any]], Item]


@dataclass
class Logged:
    at: float
    body: dict[str, Any]
    headers: dict[str, str]
    finished: float | None = None
    status: int | None = None


@dataclass
class LLMServer:
    script: deque[Item] = field(default_factory=deque)
    responder: Responder | None = None
    log: list[Logged] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", 0))
                body = json.loads(self.rfile.read(length) or b"{}")
                entry = Logged(time.time(), body, {k.lower(): v for k, v in self.headers.items()})
                with server.lock:
                    server.log.append(entry)
                    index = len(server.log) - 1
                item = server.next(body)
                status, text, headers = server.render(item, body, index)
                delay = getattr(item, "delay", 0.0)
                if delay:
                    time.sleep(delay)
                try:
                    self.send_response(status)
                    for k, v in headers.items():
                        self.send_header(k, v)
                    data = text.encode()
                    self.send_header("content-length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    return
                entry.finished = time.time()
                entry.status = status

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def add(self, *items: Item) -> None:
        with self.lock:
            self.script.extend(items)

    def next(self, body: dict[str, Any]) -> Item:
        with self.lock:
            if self.script:
                return self.script.popleft()
        if self.responder is not None:
            return self.responder(body)
        return Status(599, '{"error": {"message": "no scripted answer"}}')

    def render(
        self, item: Item, body: dict[str, Any], index: int = 0
    ) -> tuple[int, str, dict[str, str]]:
        headers = {"content-type": "application/json"}
        if isinstance(item, Raw):
            return 200, item.text, headers
        if isinstance(item, Status):
            if item.retry_after is not None:
                headers["retry-after"] = item.retry_after
            return item.code, item.body, headers
        content = item.content if isinstance(item.content, str) else json.dumps(item.content)
        choice: dict[str, Any] = {
            "index": 0,
            "message": {"role": "assistant", "content": content},
            "finish_reason": "stop",
        }
        if item.logprobs is not None:
            choice["logprobs"] = {"content": item.logprobs}
        payload = {
            "id": f"chatcmpl-{index}",
            "object": "chat.completion",
            "model": item.model or body.get("model", ""),
            "choices": [choice],
            "usage": {
                "prompt_tokens": item.prompt_tokens,
                "completion_tokens": item.completion_tokens,
                "total_tokens": item.prompt_tokens + item.completion_tokens,
            },
        }
        return 200, json.dumps(payload), headers

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def label_tokens(content: str, label: str, probs: dict[str, float]) -> list[dict[str, Any]]:
    """OpenAI-shaped logprobs for ``content`` where the label token had ``probs``."""
    import math

    start = content.index(f'"{label}"') + 1
    end = start + len(label)
    top = [{"token": k, "logprob": math.log(v)} for k, v in probs.items()]
    return [
        {"token": content[:start], "logprob": 0.0, "top_logprobs": []},
        {"token": label, "logprob": math.log(probs[label]), "top_logprobs": top},
        {"token": content[end:], "logprob": 0.0, "top_logprobs": []},
    ]
