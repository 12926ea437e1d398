"""A small content service on loopback: what the ``http-cms`` adapter talks to in the demo.

``GET/PUT/DELETE /api/entries/{type}/{id}?space=`` with ``ETag``/``If-Match``/``If-None-Match``
and ``Idempotency-Key`` (a replayed key returns the first answer and writes nothing),
``GET /api/entries?space=&owner=`` (``{count, items}``), ``GET /api/health``, and
``POST /admin/faults`` (``{"entries": "drop"}`` hides every entry from listings, which makes a
content smoke test fail; ``{"delay": 0.2}`` slows every write; ``{}`` clears faults).
``writes`` counts stored changes.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit


def _etag(entry: dict[str, Any]) -> str:
    body = json.dumps(entry["data"], sort_keys=True, separators=(",", ":")).encode()
    return '"' + hashlib.sha256(body).hexdigest()[:16] + '"'


class CmsState:
    """Entries by (space, type/id), persisted to ``path`` when given."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        self.lock = threading.Lock()
        self.entries: dict[str, dict[str, Any]] = {}
        self.idempotent: dict[str, tuple[int, dict[str, Any]]] = {}
        self.faults: dict[str, Any] = {}
        self.writes = 0
        self.requests: list[tuple[str, str]] = []
        if path is not None and path.exists():
            saved = json.loads(path.read_text())
            self.entries = saved.get("entries", {})
            self.idempotent = {k: (v[0], v[1]) for k, v in saved.get("idempotent", {}).items()}

    def save(self) -> None:
        if self.path is not None:
            body = {"entries": self.entries, "idempotent": self.idempotent}
            self.path.write_text(json.dumps(body, indent=1, sort_keys=True))


class _Handler(BaseHTTPRequestHandler):
    server: CmsServer

    def log_message(self, format: str, *args: Any) -> None:  # quiet: the demo prints its own
        return

    def _send(self, status: int, body: Any, etag: str | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        if etag:
            self.send_header("ETag", etag)
        self.end_headers()
        self.wfile.write(data)

    def _route(self) -> tuple[list[str], dict[str, str]]:
        url = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        return [p for p in url.path.split("/") if p], query

    def do_GET(self) -> None:
        st = self.server.state
        parts, query = self._route()
        with st.lock:
            st.requests.append(("GET", self.path))
            if parts == ["api", "health"]:
                ok = st.faults.get("health") != "down"
                self._send(200 if ok else 503, {"ok": ok})
            elif parts == ["api", "entries"]:
                self._list(query)
            elif len(parts) == 4 and parts[:2] == ["api", "entries"]:
                entry = st.entries.get(self._key(parts, query))
                if entry is None:
                    self._send(404, {"error": "not found"})
                else:
                    self._send(200, entry, _etag(entry))
            else:
                self._send(404, {"error": "no route"})

    def _key(self, parts: list[str], query: dict[str, str]) -> str:
        return f"{query.get('space', 'default')}:{parts[2]}/{parts[3]}"

    def _list(self, query: dict[str, str]) -> None:
        st = self.server.state
        space = query.get("space", "default")
        items = []
        for key, entry in sorted(st.entries.items()):
            sp, _, rest = key.partition(":")
            if sp != space:
                continue
            owner = query.get("owner")
            if owner and (entry.get("meta") or {}).get("managedBy") != owner:
                continue
            etype, _, eid = rest.partition("/")
            items.append({"type": etype, "id": eid, "etag": _etag(entry), **entry})
        if st.faults.get("entries") == "drop":
            items = []
        self._send(200, {"count": len(items), "items": items})

    def do_PUT(self) -> None:
        self._write("PUT")

    def do_DELETE(self) -> None:
        self._write("DELETE")

    def do_POST(self) -> None:
        st = self.server.state
        parts, _ = self._route()
        length = int(self.headers.get("Content-Length", 0))
        body = json.loads(self.rfile.read(length) or b"{}")
        with st.lock:
            st.requests.append(("POST", self.path))
            if parts == ["admin", "faults"]:
                st.faults = dict(body)
                self._send(200, {"faults": st.faults})
            else:
                self._send(404, {"error": "no route"})

    def _write(self, method: str) -> None:
        st = self.server.state
        delay = float(st.faults.get("delay", 0))
        if delay:  # a slow CMS, so a test can kill a worker between two writes
            time.sleep(delay)
        parts, query = self._route()
        length = int(self.headers.get("Content-Length", 0))
        raw = self.rfile.read(length) if length else b""
        with st.lock:
            st.requests.append((method, self.path))
            if len(parts) != 4 or parts[:2] != ["api", "entries"]:
                self._send(404, {"error": "no route"})
                return
            ikey = self.headers.get("Idempotency-Key")
            if ikey and ikey in st.idempotent:
                status, answer = st.idempotent[ikey]
                self._send(status, answer)
                return
            status, answer = self._change(method, self._key(parts, query), raw)
            if ikey and status < 300:
                st.idempotent[ikey] = (status, answer)
            st.save()
            self._send(status, answer, answer.get("etag"))

    def _change(self, method: str, key: str, raw: bytes) -> tuple[int, dict[str, Any]]:
        st = self.server.state
        current = st.entries.get(key)
        match = self.headers.get("If-Match")
        if self.headers.get("If-None-Match") == "*" and current is not None:
            return 412, {"error": "exists"}
        if match and (current is None or _etag(current) != match):
            return 412, {"error": "etag mismatch"}
        if method == "DELETE":
            if current is None:
                return 404, {"error": "not found"}
            del st.entries[key]
            st.writes += 1
            return 200, {"deleted": key}
        try:
            entry = json.loads(raw)
            entry = {"data": entry["data"], "meta": entry.get("meta") or {}}
        except (ValueError, KeyError, TypeError):
            return 400, {"error": "body must be {data, meta}"}
        st.entries[key] = entry
        st.writes += 1
        return (201 if current is None else 200), {"etag": _etag(entry)}


class CmsServer(ThreadingHTTPServer):
    """``with CmsServer() as cms: cms.url`` -> ``http://127.0.0.1:PORT/api``."""

    daemon_threads = True

    def __init__(self, path: Path | None = None) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.state = CmsState(path)
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/api"

    def __enter__(self) -> CmsServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()
        self.server_close()
        self._thread.join()

    def edit(self, space: str, key: str, data: Any) -> None:
        """Change an entry behind the hub's back (a hand edit in the CMS UI)."""
        with self.state.lock:
            full = f"{space}:{key}"
            meta = (self.state.entries.get(full) or {}).get("meta", {})
            self.state.entries[full] = {"data": data, "meta": meta}
            self.state.save()
