"""A demo CMS on loopback whose first ``failures`` writes answer 503 (then it recovers)."""

from __future__ import annotations

import threading
import time

from spokehub.distribution.demo.cms import CmsServer, _Handler


class _FlakyHandler(_Handler):
    server: FlakyCms

    def _write(self, method: str) -> None:
        srv = self.server
        with srv.flaky_lock:
            srv.write_times.append(time.monotonic())
            fail = srv.failures_left > 0
            if fail:
                srv.failures_left -= 1
        if not fail:
            super()._write(method)
            return
        length = int(self.headers.get("Content-Length", 0))
        if length:
            self.rfile.read(length)
        self._send(503, {"error": "unavailable, try again later"})


class FlakyCms(CmsServer):
    """``FlakyCms(failures=2)``: the first two PUT/DELETE requests fail with HTTP 503."""

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.RequestHandlerClass = _FlakyHandler
        self.flaky_lock = threading.Lock()
        self.failures_left = failures
        self.write_times: list[float] = []
