"""OpenAPI 3.1 -> a Markdown API reference, per audience, deterministically.

The ``public`` variant leaves out every operation, path and schema marked ``x-internal: true``;
the ``internal`` variant keeps them (marked). Operations are listed in path order, then in the
spec's method order; schemas by name. ``$ref``s to schemas are shown as links.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

from spokehub.patterns.dtcg.tree import pointer_of
from spokehub.patterns.errors import Diagnostic
from spokehub.patterns.source import SourceDoc
from spokehub.patterns.transforms.base import Output, RenderContext

__all__ = ["METHODS", "ApiDocsTransform", "check_openapi", "operations", "visible_spec"]

METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


def check_openapi(doc: SourceDoc) -> list[Diagnostic]:
    """The structural checks an API reference needs (not a full OpenAPI validator)."""
    spec = doc.value
    out = []

    def error(path: tuple[str | int, ...], message: str) -> None:
        out.append(Diagnostic("openapi", message, doc.position(path), pointer_of(path)))

    if not isinstance(spec, dict):
        error((), "an OpenAPI document must be an object")
        return out
    if not str(spec.get("openapi", "")).startswith("3.1"):
        error(("openapi",), "openapi must be a 3.1.x version")
    if not isinstance(spec.get("info"), dict) or "title" not in spec.get("info", {}):
        error(("info",), "info.title is required")
    for path, item in (spec.get("paths") or {}).items():
        if not str(path).startswith("/"):
            error(("paths", path), f"path {path!r} must start with '/'")
        for method, op in (item or {}).items():
            if method in METHODS and not isinstance(op, dict):
                error(("paths", path, method), "an operation must be an object")
    return out


def _internal(node: Any) -> bool:
    return isinstance(node, dict) and node.get("x-internal") is True


def operations(spec: dict[str, Any], *, internal: bool) -> list[tuple[str, str, dict[str, Any]]]:
    """(path, method, operation) in a stable order, without x-internal ones unless asked."""
    out = []
    for path in sorted(spec.get("paths") or {}):
        item = spec["paths"][path] or {}
        if _internal(item) and not internal:
            continue
        for method in METHODS:
            op = item.get(method)
            if isinstance(op, dict) and (internal or not _internal(op)):
                out.append((path, method, op))
    return out


def visible_spec(spec: dict[str, Any], *, internal: bool) -> dict[str, Any]:
    """The spec as one audience sees it (x-internal parts removed for the public)."""
    if internal:
        return spec
    paths: dict[str, Any] = {}
    for path, method, op in operations(spec, internal=False):
        paths.setdefault(path, {})[method] = op
    schemas = {
        k: v
        for k, v in ((spec.get("components") or {}).get("schemas") or {}).items()
        if not _internal(v)
    }
    return {
        **spec,
        "paths": paths,
        "components": {**(spec.get("components") or {}), "schemas": schemas},
    }


def _type(schema: Any) -> str:
    if not isinstance(schema, dict):
        return "any"
    if "$ref" in schema:
        name = str(schema["$ref"]).rsplit("/", 1)[-1]
        return f"[{name}](#schema-{name.lower()})"
    if schema.get("type") == "array":
        return f"array of {_type(schema.get('items'))}"
    kind = schema.get("type", "object")
    text = " or ".join(kind) if isinstance(kind, list) else str(kind)
    if "enum" in schema:
        text += " (" + ", ".join(json.dumps(v) for v in schema["enum"]) + ")"
    return text


def _cell(text: Any) -> str:
    return " ".join(str(text or "").split()).replace("|", "\\|")


def _operation(path: str, method: str, op: dict[str, Any], internal: bool) -> list[str]:
    title = op.get("summary") or op.get("operationId") or f"{method.upper()} {path}"
    badge = " *(internal)*" if internal and _internal(op) else ""
    lines = ["", f"### {title}{badge}", "", f"`{method.upper()} {path}`"]
    if op.get("operationId"):
        lines.append(f"  \noperationId: `{op['operationId']}`")
    if op.get("deprecated"):
        lines.append("\n**Deprecated.**")
    if op.get("description"):
        lines += ["", " ".join(str(op["description"]).split())]
    params = [p for p in op.get("parameters") or [] if isinstance(p, dict)]
    if params:
        lines += ["", "| Parameter | In | Type | Required | Description |", "|---|---|---|---|---|"]
        for p in params:
            lines.append(
                f"| `{p.get('name')}` | {p.get('in')} | {_type(p.get('schema'))} | "
                f"{'yes' if p.get('required') else 'no'} | "
                f"{_cell(p.get('description'))} |"
            )
    body = (op.get("requestBody") or {}).get("content") or {}
    for media in sorted(body):
        lines += ["", f"Request body (`{media}`): {_type(body[media].get('schema'))}"]
    responses = op.get("responses") or {}
    if responses:
        lines += ["", "| Status | Description | Body |", "|---|---|---|"]
        for status in sorted(responses, key=str):
            resp = responses[status] or {}
            content = resp.get("content") or {}
            kinds = ", ".join(f"`{m}` {_type(content[m].get('schema'))}" for m in sorted(content))
            lines.append(f"| {status} | {_cell(resp.get('description'))} | {kinds} |")
    return lines


def _schema(name: str, schema: dict[str, Any], internal: bool) -> list[str]:
    badge = " *(internal)*" if internal and _internal(schema) else ""
    lines = ["", f'<a id="schema-{name.lower()}"></a>', "", f"### {name}{badge}"]
    if schema.get("description"):
        lines += ["", " ".join(str(schema["description"]).split())]
    props = schema.get("properties") or {}
    required = set(schema.get("required") or [])
    if props:
        lines += ["", "| Field | Type | Required | Description |", "|---|---|---|---|"]
        for field in sorted(props):
            prop = props[field]
            if _internal(prop) and not internal:
                continue
            lines.append(
                f"| `{field}` | {_type(prop)} | {'yes' if field in required else 'no'}"
                f" | {_cell((prop or {}).get('description'))} |"
            )
    return lines


def render_reference(spec: dict[str, Any], *, internal: bool) -> str:
    """The Markdown reference of one audience."""
    view = visible_spec(spec, internal=internal)
    info = spec.get("info") or {}
    lines = [f"# {info.get('title', 'API')} {info.get('version', '')}".rstrip()]
    if info.get("description"):
        lines += ["", " ".join(str(info["description"]).split())]
    lines += ["", "## Operations"]
    for path, method, op in operations(view, internal=internal):
        lines += _operation(path, method, op, internal)
    schemas = (view.get("components") or {}).get("schemas") or {}
    if schemas:
        lines += ["", "## Schemas"]
        for name in sorted(schemas):
            lines += _schema(name, schemas[name], internal)
    return "\n".join(lines) + "\n"


class ApiDocsTransform:
    id: ClassVar[str] = "api-docs"
    version: ClassVar[int] = 1
    defaults: ClassVar[dict[str, Any]] = {"audiences": ["public"], "file": "api.md"}

    def __init__(self, root: Any = None) -> None:
        self.root = root

    def render_spec(self, ctx: RenderContext, doc: SourceDoc) -> list[Output]:
        header = "<!--\n" + "\n".join(ctx.header_lines()) + "\n-->\n\n"
        out = []
        for audience in ctx.params["audiences"]:
            if audience not in ("public", "internal"):
                raise ValueError(f"unknown audience {audience!r}; use public or internal")
            name = ctx.params["file"]
            if audience == "internal":
                stem, dot, ext = name.rpartition(".")
                name = f"{stem}-internal{dot}{ext}" if dot else f"{name}-internal"
            text = render_reference(doc.value, internal=audience == "internal")
            out.append(Output(name, header + text))
        return out
