"""A webhook receiver on loopback that verifies Standard Webhooks signatures.

Each accepted delivery is kept once per ``webhook-id`` (a redelivery is acknowledged and not
counted again); deliveries with a bad signature get 401.
"""

from __future__ import annotations

import hmac
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from spokehub.distribution.adapters.webhook import sign


class _Handler(BaseHTTPRequestHandler):
    server: WebhookSink

    def log_message(self, format: str, *args: Any) -> None:
        return

    def do_POST(self) -> None:
        sink = self.server
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        msg_id = self.headers.get("webhook-id", "")
        ts = self.headers.get("webhook-timestamp", "")
        given = self.headers.get("webhook-signature", "")
        ok = False
        if ts.isdigit():
            want = sign(sink.secret, msg_id, int(ts), body)
            ok = any(hmac.compare_digest(want, s) for s in given.split())
        with sink.lock:
            if not ok:
                sink.rejected += 1
                status = 401
            else:
                status = 200
                if msg_id not in sink.seen:
                    sink.seen.add(msg_id)
                    sink.events.append({"id": msg_id, "payload": json.loads(body or b"null")})
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()


class WebhookSink(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, secret: str) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.secret = secret
        self.lock = threading.Lock()
        self.events: list[dict[str, Any]] = []
        self.seen: set[str] = set()
        self.rejected = 0
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/hooks"

    def __enter__(self) -> WebhookSink:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()
        self.server_close()
        self._thread.join()
