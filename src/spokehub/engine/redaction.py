"""The key-name redaction rule, shared by logs, the HTTP API and the dashboard.

A value under a key that looks like a credential (``api_key``, ``password``, ``token``, ...)
is replaced by ``[redacted]`` at any depth; inside free text (an error message, a logged
header) a credential written as ``api_key=...`` or ``Bearer ...`` keeps its key and loses
its value. Pure and dependency-free, so every layer above can use the same rule.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["REDACTED", "SECRET_KEY", "redact"]

REDACTED = "[redacted]"
# Keys whose values are never shown: matched anywhere in the key, ignoring case. "tokens"
# (plural) is a count, as in an LLM call's ``prompt_tokens``, not a credential.
SECRET_KEY = re.compile(
    r"token(?!s)|secret|password|passwd|authorization|api[_-]?key|cookie|credential", re.I
)
# A credential inside free text (a logged header line, an error message): the scheme or
# key stays, the value goes.
_IN_TEXT = re.compile(
    r"((?:bearer|basic)\s+|(?:token|secret|password|api[_-]?key)[\"']?\s*[=:]\s*[\"']?)"
    r"[A-Za-z0-9._~+/=-]+",
    re.I,
)


def redact(value: Any) -> Any:
    """``value`` with the values of secret-looking keys replaced, at any depth."""
    if isinstance(value, dict):
        return {
            k: REDACTED if isinstance(k, str) and SECRET_KEY.search(k) else redact(v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [redact(v) for v in value]
    if isinstance(value, tuple):
        return tuple(redact(v) for v in value)
    if isinstance(value, str):
        return _IN_TEXT.sub(r"\1" + REDACTED, value)
    return value
