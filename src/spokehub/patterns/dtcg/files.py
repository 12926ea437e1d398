"""Token files parsed once per content: a small cache keyed by path, digest and origin.

A rebuild after a one-file change re-parses only that file; merged documents never mutate the
documents they merge (see ``TokenDocument.merge``), so sharing parsed files is safe.
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

from spokehub.patterns.canonical import digest_bytes
from spokehub.patterns.dtcg.document import TokenDocument
from spokehub.patterns.source import SourceDoc, load_json, load_yaml

__all__ = ["load_token_file"]

_LIMIT = 512
_CACHE: OrderedDict[tuple[str, str, str, str], TokenDocument] = OrderedDict()


def _subdoc(doc: SourceDoc, fragment: str) -> SourceDoc:
    parts = tuple(p.replace("~1", "/").replace("~0", "~") for p in fragment.strip("/").split("/"))
    node = doc.value
    for part in parts:
        node = node.get(part) if isinstance(node, dict) else None
    positions = {p[len(parts) :]: v for p, v in doc.positions.items() if p[: len(parts)] == parts}
    return SourceDoc(doc.file, node if isinstance(node, dict) else {}, positions)


def load_token_file(path: Path, display: str, origin: str, fragment: str = "") -> TokenDocument:
    """The token document of a file (raises OSError or SourceSyntaxError)."""
    data = path.read_bytes()
    file_digest = digest_bytes(data)
    key = (display, file_digest, origin, fragment)
    found = _CACHE.get(key)
    if found is not None:
        _CACHE.move_to_end(key)
        return found
    text = data.decode("utf-8")
    parsed = (
        load_yaml(text, display) if path.suffix in (".yaml", ".yml") else load_json(text, display)
    )
    if fragment:
        parsed = _subdoc(parsed, fragment)
    doc = TokenDocument.from_source(parsed, origin)
    doc.files[display] = file_digest
    _CACHE[key] = doc
    if len(_CACHE) > _LIMIT:
        _CACHE.popitem(last=False)
    return doc
