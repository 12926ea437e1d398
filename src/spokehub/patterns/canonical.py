"""Content digests over canonical bytes (RFC 8785 JSON Canonicalization Scheme).

Keys are sorted by their UTF-16 code units, numbers are written the way ECMAScript's
``Number.prototype.toString`` writes them, strings with the minimal JSON escapes, no whitespace.
Equal data gives equal bytes, hence equal digests, across machines and Python versions.
"""

from __future__ import annotations

import hashlib
import math
from typing import Any

__all__ = ["canonical_json", "digest", "digest_bytes", "short"]

_ESCAPES = {
    '"': '\\"',
    "\\": "\\\\",
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
}


def _string(text: str) -> str:
    out = ['"']
    for ch in text:
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif ord(ch) < 0x20:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _number(value: float) -> str:
    if not math.isfinite(value):
        raise ValueError(f"{value!r} cannot be written as JSON; use a finite number")
    if value == 0:
        return "0"
    if value.is_integer() and abs(value) < 1e21:
        return str(int(value))
    text = repr(value)  # shortest round-trip digits, like ECMAScript
    if "e" not in text:
        return text
    mantissa, exp = text.split("e")
    exponent = int(exp)
    if -7 < exponent < 21:  # ECMAScript writes these without an exponent
        return format(value, "f").rstrip("0").rstrip(".")
    mantissa = mantissa.rstrip("0").rstrip(".") if "." in mantissa else mantissa
    return f"{mantissa}e{'+' if exponent > 0 else '-'}{abs(exponent)}"


def _write(value: Any, out: list[str]) -> None:  # noqa: C901 - one branch per JSON type
    if value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, int):
        out.append(str(value))
    elif isinstance(value, float):
        out.append(_number(value))
    elif isinstance(value, str):
        out.append(_string(value))
    elif isinstance(value, dict):
        out.append("{")
        keys = sorted(value, key=lambda k: k.encode("utf-16-be"))
        for index, key in enumerate(keys):
            if index:
                out.append(",")
            out.append(_string(str(key)))
            out.append(":")
            _write(value[key], out)
        out.append("}")
    elif isinstance(value, list | tuple):
        out.append("[")
        for index, item in enumerate(value):
            if index:
                out.append(",")
            _write(item, out)
        out.append("]")
    else:
        raise TypeError(f"{type(value).__name__} is not JSON data; convert it first")


def canonical_json(value: Any) -> bytes:
    """RFC 8785 canonical UTF-8 bytes of a JSON value."""
    out: list[str] = []
    _write(value, out)
    return "".join(out).encode("utf-8")


def digest_bytes(data: bytes) -> str:
    """``sha256:<hex>`` of raw bytes."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def digest(value: Any) -> str:
    """``sha256:<hex>`` of the canonical JSON of ``value``."""
    return digest_bytes(canonical_json(value))


def short(value: str, length: int = 12) -> str:
    """``sha256:0123456789ab`` for headers and listings."""
    algo, _, hexdigits = value.partition(":")
    return f"{algo}:{hexdigits[:length]}"
