"""Structured logs: every line says which run, step, attempt and trace it belongs to.

``configure_logging`` installs one handler on the root logger. Its filters add the run
context (from spokehub's context variables and the current OpenTelemetry span) to each record
and redact secrets from structured extras; its formatter writes one JSON object per line, or
text for humans with the same fields appended.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import IO, Any, Literal

from opentelemetry import trace

from spokehub.engine.redaction import REDACTED, SECRET_KEY, redact
from spokehub.observability.runs import known_trace_id
from spokehub.runtime.context import current_step, current_workflow

CONTEXT_FIELDS = ("run_id", "workflow", "step", "seq", "attempt", "trace_id", "span_id")
# uvicorn passes the same message again with terminal colour codes for its own formatter;
# it is not a field, and escape codes have no place in a log file.
_NOT_FIELDS = frozenset({"color_message"})
# Attributes every LogRecord has; anything else on a record came from ``extra=``.
_STANDARD = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime", *CONTEXT_FIELDS}


def extras(record: logging.LogRecord) -> dict[str, Any]:
    """The structured fields a caller passed with ``extra=``."""
    return {
        k: v
        for k, v in record.__dict__.items()
        if k not in _STANDARD and k not in _NOT_FIELDS and not k.startswith("_")
    }


class RedactionFilter(logging.Filter):
    """Redacts secret-looking keys in extras and in dict arguments, and bearer tokens."""

    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in extras(record).items():
            setattr(record, key, REDACTED if SECRET_KEY.search(key) else redact(value))
        if isinstance(record.args, dict | tuple):
            record.args = redact(record.args)
        # A credential can be split between the format and its arguments ("Bearer %s"):
        # redact the merged text, and keep it merged for the handlers after this one.
        try:
            message = record.getMessage()
        except Exception:  # a bad format: leave it to the handler's own error reporting
            return True
        record.msg, record.args = redact(message), None
        return True


class RunContextFilter(logging.Filter):
    """Sets run_id, workflow, step, seq, attempt, trace_id and span_id (None when unknown)."""

    def filter(self, record: logging.LogRecord) -> bool:
        fields: dict[str, Any] = dict.fromkeys(CONTEXT_FIELDS)
        step, wf = current_step(), current_workflow()
        if step is not None:
            fields.update(
                run_id=step.run_id,
                workflow=step.workflow,
                step=step.name,
                seq=step.step,
                attempt=step.attempt,
            )
        elif wf is not None:
            fields.update(run_id=wf.run_id, workflow=wf.workflow)
        span = trace.get_current_span().get_span_context()
        if span.is_valid:
            fields.update(trace_id=f"{span.trace_id:032x}", span_id=f"{span.span_id:016x}")
        elif fields["run_id"] is not None:
            fields["trace_id"] = known_trace_id(fields["run_id"])
        for key, value in fields.items():
            setattr(record, key, value)
        return True


def _timestamp(record: logging.LogRecord) -> str:
    return datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, message, the run context, extras."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": _timestamp(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in CONTEXT_FIELDS:
            value = getattr(record, key, None)
            if value is not None:
                line[key] = value
        line.update(extras(record))
        if record.exc_info:
            line["exception"] = redact(self.formatException(record.exc_info))
        return json.dumps(line, default=str)


class TextFormatter(logging.Formatter):
    """``ts LEVEL logger: message key=value ...`` with the same fields as the JSON form."""

    def format(self, record: logging.LogRecord) -> str:
        fields = {k: getattr(record, k, None) for k in CONTEXT_FIELDS}
        fields.update(extras(record))
        tail = " ".join(f"{k}={v}" for k, v in fields.items() if v is not None)
        text = f"{_timestamp(record)} {record.levelname} {record.name}: {record.getMessage()}"
        if tail:
            text = f"{text} [{tail}]"
        if record.exc_info:
            text = f"{text}\n{redact(self.formatException(record.exc_info))}"
        return text


class _SpokehubHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Marks the handler ``configure_logging`` installed, so a second call replaces it."""


def configure_logging(
    fmt: Literal["json", "text"] = "text",
    level: int | str = "INFO",
    *,
    stream: IO[str] | None = None,
) -> logging.Handler:
    """Send all logging through one handler writing ``fmt`` lines at ``level`` or above.

    Example:
        >>> configure_logging(fmt="json", level="INFO")  # doctest: +SKIP
        >>> logging.getLogger("app").info("charged", extra={"order": "o-1", "api_key": "..."})
        {"ts": "...", "level": "INFO", "logger": "app", "message": "charged", "order": "o-1",
         "api_key": "[redacted]", "run_id": "...", "trace_id": "..."}
    """
    if fmt not in ("json", "text"):
        raise ValueError(f"log format must be 'json' or 'text', not {fmt!r}")
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _SpokehubHandler)]:
        root.removeHandler(old)
    handler = _SpokehubHandler(stream if stream is not None else sys.stderr)
    handler.addFilter(RunContextFilter())
    handler.addFilter(RedactionFilter())
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root.addHandler(handler)
    root.setLevel(level.upper() if isinstance(level, str) else level)
    return handler
