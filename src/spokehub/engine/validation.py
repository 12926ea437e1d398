"""What every door checks before anything is stored: run ids, text, payloads, sizes.

One module, used by the embedded client (and so by the CLI, the HTTP API, the dashboard,
webhooks, signals and approval decisions, which all go through it) and by the server's body
limit, so every door answers the same bad input with the same error:

* **run ids** (new ones: starts, forks, ``wf.options(run_id=...)``): 1 to 255 characters,
  letters, digits and ``_ . : @ + = -``, starting with a letter, digit or ``_``. No spaces,
  no slashes, no control characters: an id is a key that ends up in URLs, file names and logs.
  Ids of existing runs are looked up as given (older runs may predate the rule) once they pass
  the text check.
* **text** (ids, names, searches, comments, every string in a payload, every key): valid
  Unicode (no lone surrogate such as ``"\\ud800"``, which cannot be written as UTF-8) and no
  NUL character (PostgreSQL cannot store it in text, SQLite would, so it is refused on both).
* **size**: a payload's JSON (input, signal payload) is at most ``max_input_bytes`` bytes of
  UTF-8 (``Settings.max_input_bytes``, ``SPOKEHUB_MAX_INPUT_BYTES``, default 1 MiB); big data
  belongs in a blob store or a file, with a reference (URL, key, path) in the input.

Bad input raises ``InvalidInput`` (code ``invalid_input``: HTTP 400, CLI exit 2) or
``InputTooLarge`` (code ``too_large``: HTTP 413, CLI exit 2). ``escape_invalid`` is the other
half: a value read back from the store is shown with its bad parts escaped, never refused.
"""

from __future__ import annotations

import json
import re
from typing import Any

from spokehub.errors import InputTooLarge, InvalidInput

__all__ = [
    "DEFAULT_MAX_INPUT_BYTES",
    "RUN_ID_MAX",
    "RUN_ID_RULE",
    "check_payload",
    "check_run_id",
    "check_text",
    "escape_invalid",
]

RUN_ID_MAX = 255
DEFAULT_MAX_INPUT_BYTES = 1024 * 1024
_RUN_ID = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.:@+=-]*")
RUN_ID_RULE = (
    f"1 to {RUN_ID_MAX} characters: letters, digits and _ . : @ + = -, starting with a "
    "letter, digit or _"
)
_SURROGATE = re.compile("[\ud800-\udfff]")


def _text_problem(text: str) -> str | None:
    if "\x00" in text:
        return "contains a NUL character (\\u0000), which spokehub does not store"
    if _SURROGATE.search(text):
        return (
            "is not valid Unicode (it holds a lone surrogate such as \\ud800, which no UTF-8 "
            "text can carry)"
        )
    return None


def check_text(value: str, what: str) -> str:
    """Return ``value`` if it is storable text; raise ``InvalidInput`` naming ``what``."""
    problem = _text_problem(value)
    if problem is not None:
        raise InvalidInput(f"{what} {problem}; send valid UTF-8 text without NUL characters")
    return value


def check_run_id(run_id: object, what: str = "run id") -> str:
    """Return ``run_id`` if it follows the run-id rule (a new id); else raise ``InvalidInput``."""
    if not isinstance(run_id, str):
        raise InvalidInput(f"{what} must be a string, not {type(run_id).__name__}")
    if not run_id:
        raise InvalidInput(
            f"{what} is empty; give an id ({RUN_ID_RULE}) or leave it out for a random one"
        )
    check_text(run_id, what)
    if len(run_id) > RUN_ID_MAX or not _RUN_ID.fullmatch(run_id):
        raise InvalidInput(f"{what} {run_id!r} is not allowed; a run id is {RUN_ID_RULE}")
    return run_id


def _find_problem(value: Any, path: str) -> tuple[str, str] | None:
    """The first (path, problem) of a bad string or key in a JSON value, depth first."""
    if isinstance(value, str):
        problem = _text_problem(value)
        return (path, problem) if problem else None
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(key, str):
                problem = _text_problem(key)
                if problem:
                    return (f"{path} key {key!r}", problem)
            found = _find_problem(item, f"{path}.{key}")
            if found:
                return found
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            found = _find_problem(item, f"{path}[{i}]")
            if found:
                return found
    return None


def check_payload(value: Any, what: str, *, max_bytes: int | None) -> None:
    """Refuse a JSON value with bad text anywhere in it, or bigger than ``max_bytes``.

    One pass in C (``json.dumps`` then UTF-8) decides for nearly every value; the slower walk
    that names the offending place runs only when that pass finds something.
    """
    try:
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
        size = len(text.encode("utf-8"))
        suspicious = "\\u0000" in text
    except UnicodeEncodeError:
        size, suspicious = 0, True
    if suspicious:
        found = _find_problem(value, what)
        if found is not None:
            where, problem = found
            raise InvalidInput(
                f"{where} {problem}; send valid UTF-8 text without NUL characters (binary data "
                "goes base64-encoded, or in a blob store with a reference in the input)"
            )
    if max_bytes is not None and size > max_bytes:
        raise InputTooLarge(
            f"{what} is {size} bytes of JSON, more than the limit of {max_bytes} bytes "
            "(SPOKEHUB_MAX_INPUT_BYTES); put big data in a blob store, a bucket or a file "
            "and pass a reference (URL, key or path) instead"
        )


def _escape_text(text: str) -> str:
    if _text_problem(text) is None:
        return text
    text = text.replace("\x00", "\\u0000")
    return _SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def escape_invalid(value: Any) -> Any:
    """``value`` with NUL characters and lone surrogates written as ``\\uXXXX`` text.

    For showing stored values (a row written before the checks existed, or a step result):
    one bad string must never make a listing or a page fail.
    """
    if isinstance(value, str):
        return _escape_text(value)
    if isinstance(value, dict):
        return {
            (_escape_text(k) if isinstance(k, str) else k): escape_invalid(v)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [escape_invalid(v) for v in value]
    return value
