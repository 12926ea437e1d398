"""The request size limit: a body over ``Settings.max_input_bytes`` gets 413, unread.

A declared ``Content-Length`` over the limit is answered at once; a body sent without one
(chunked) is counted as it is read and cut off when it passes the limit. The same limit
applies to inputs started from Python (``spokehub.engine.validation``).
"""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from spokehub.server.errors import error_response

__all__ = ["BodyLimitMiddleware", "too_large_message"]


def too_large_message(size: int | None, limit: int) -> str:
    what = f"{size} bytes" if size is not None else "larger than that"
    return (
        f"the request body is {what}; the limit is {limit} bytes (SPOKEHUB_MAX_INPUT_BYTES). "
        "Put big data in a blob store, a bucket or a file and pass a reference (URL, key or "
        "path) in the input instead"
    )


class BodyLimitMiddleware:
    """Answer 413 with the error shape to a request body larger than ``max_bytes``."""

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            response = error_response(
                413,
                "too_large",
                too_large_message(declared, self.max_bytes),
                scope.get("path", ""),
            )
            await response(scope, receive, send)
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    # Raised inside the app's body read: FastAPI and Starlette pass an
                    # HTTPException on to the error handlers, which give the error shape.
                    raise HTTPException(413, too_large_message(None, self.max_bytes))
            return message

        await self.app(scope, counted, send)


def _content_length(scope: Scope) -> int | None:
    for key, value in scope["headers"]:
        if key == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
