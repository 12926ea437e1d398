"""Redaction by value: every resolved secret is masked wherever its text appears.

Key-name redaction (``observability.logs``) catches ``{"api_key": ...}``; it cannot catch a
token pasted into an error message or returned inside a step's result. Once ``secret()`` has
resolved a value, this module masks that exact text (and its JSON-escaped form) in:

* every payload the database stores (a filter of ``spokehub.store.redaction``), so ledger
  events, run inputs and results, errors, blobs and inbox payloads, and so every API response
  and dashboard page that reads them;
* every log record (``Logger.makeRecord`` is wrapped: message, arguments, extras, and the
  exception's text before any handler formats it);
* step results and exceptions on their way out of the step (``SecretsInterceptor``), so the
  workflow code, traces and metrics see the masked value too, live and on replay alike.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
from typing import Any

from spokehub.store import redaction as store_redaction

__all__ = ["MIN_LENGTH", "REDACTOR", "Redactor", "mask"]

# Shorter values would mask ordinary text all over the place; they are refused at resolution.
MIN_LENGTH = 6


def mask(name: str) -> str:
    return f"[secret:{name}]"


class Redactor:
    """The set of secret values this process has resolved, and the masking of them."""

    def __init__(self) -> None:
        self._values: dict[str, str] = {}  # text to mask -> its mask
        self._ordered: list[tuple[str, str]] = []
        self._lock = threading.Lock()
        self._installed = False

    @property
    def active(self) -> bool:
        return bool(self._ordered)

    def add(self, name: str, value: str) -> None:
        """Mask ``value`` from now on (and its JSON-escaped spelling)."""
        if len(value) < MIN_LENGTH:
            raise ValueError(
                f"secret {name!r} is shorter than {MIN_LENGTH} characters: too short to mask "
                "reliably; use a longer value"
            )
        with self._lock:
            for text in {value, json.dumps(value)[1:-1]}:
                self._values[text] = mask(name)
            # Longest first, so a secret that contains another is masked whole.
            self._ordered = sorted(self._values.items(), key=lambda kv: -len(kv[0]))
            if not self._installed:
                self._install()

    def text(self, text: str) -> str:
        for value, replacement in self._ordered:
            if value in text:
                text = text.replace(value, replacement)
        return text

    def value(self, obj: Any) -> Any:
        """A JSON-like value with every string masked (dicts, lists and tuples rebuilt)."""
        if not self._ordered:
            return obj
        if isinstance(obj, str):
            return self.text(obj)
        if isinstance(obj, dict):
            return {self.value(k): self.value(v) for k, v in obj.items()}
        if isinstance(obj, list):
            return [self.value(v) for v in obj]
        if isinstance(obj, tuple):
            return tuple(self.value(v) for v in obj)
        return obj

    def exception(self, exc: BaseException) -> BaseException:
        """Mask ``exc``'s arguments in place (and those of its cause and context)."""
        seen: set[int] = set()
        stack: list[BaseException] = [exc]
        while stack:
            current = stack.pop()
            if id(current) in seen:
                continue
            seen.add(id(current))
            # An exception type with read-only args keeps them (the stores still mask its text).
            with contextlib.suppress(AttributeError, TypeError):
                current.args = tuple(self.value(a) for a in current.args)
            for note_holder in (current.__cause__, current.__context__):
                if note_holder is not None:
                    stack.append(note_holder)
        return exc

    def _install(self) -> None:
        store_redaction.add_text_filter(self.text)
        # Wrap Logger.makeRecord (not the record factory): ``extra=`` fields are set on the
        # record after the factory returns, and they must be masked too.
        original = logging.Logger.makeRecord
        redactor = self

        def make_record(logger: logging.Logger, *args: Any, **kwargs: Any) -> logging.LogRecord:
            record = original(logger, *args, **kwargs)
            redactor._record(record)
            return record

        logging.Logger.makeRecord = make_record  # type: ignore[method-assign,assignment]
        self._installed = True

    def _record(self, record: logging.LogRecord) -> None:
        """Mask a record in place; a record without a secret is left exactly as it was."""
        try:
            message = record.getMessage()
        except Exception:  # a bad format: the handler reports it; mask what we can
            message = str(record.msg)
        masked = self.text(message)
        if masked != message:
            record.msg, record.args = masked, None
        for key, item in list(record.__dict__.items()):
            if key in ("msg", "args", "exc_info"):
                continue
            if isinstance(item, str | dict | list | tuple):
                clean = self.value(item)
                if clean != item:
                    setattr(record, key, clean)
        if record.exc_info and record.exc_info[1] is not None:
            self.exception(record.exc_info[1])


REDACTOR = Redactor()
