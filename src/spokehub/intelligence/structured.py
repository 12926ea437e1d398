"""Structured output: a schema from a pydantic model or a JSON Schema, and validation of an
answer against it with errors a model can act on (they are sent back in the repair prompt).
"""

from __future__ import annotations

import hashlib
import inspect
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from spokehub.intelligence.errors import LLMConfigurationError

_SCHEMA_KEYS = ("type", "properties", "anyOf", "oneOf", "allOf", "$ref", "enum", "$schema")


@dataclass(frozen=True, slots=True)
class Checked:
    ok: bool
    value: Any = None
    errors: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Schema:
    """A prepared ``schema=`` argument."""

    json_schema: dict[str, Any]
    name: str
    validate: Callable[[str], Checked]

    @property
    def digest(self) -> str:
        text = json.dumps(self.json_schema, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def prepare(schema: Any) -> Schema | None:
    """``schema`` as a ``Schema``, or a clear error when it is neither kind."""
    if schema is None:
        return None
    if inspect.isclass(schema) and hasattr(schema, "model_validate_json"):
        return _from_model(schema)
    if isinstance(schema, dict) and any(key in schema for key in _SCHEMA_KEYS):
        return _from_json_schema(schema)
    raise LLMConfigurationError(
        f"llm.complete(schema={schema!r}): a schema is a pydantic model class (class "
        "Answer(BaseModel): ...) or a JSON Schema dict (with 'type' or 'properties')"
    )


def _from_model(model: Any) -> Schema:
    from pydantic import ValidationError

    def validate(text: str) -> Checked:
        try:
            return Checked(True, model.model_validate_json(_strip_fence(text)))
        except ValidationError as exc:
            errors = tuple(
                f"{'.'.join(str(p) for p in err['loc']) or '(root)'}: {err['msg']}"
                for err in exc.errors()
            )
            return Checked(False, errors=errors)

    return Schema(model.model_json_schema(), model.__name__, validate)


def _from_json_schema(schema: dict[str, Any]) -> Schema:
    try:
        import jsonschema  # type: ignore[import-untyped,unused-ignore]
    except ImportError:  # pragma: no cover - installed with the extra
        raise LLMConfigurationError(
            "a JSON Schema dict needs the jsonschema package: pip install 'spokehub[ai]' (or "
            "pass a pydantic model)"
        ) from None
    try:
        validator = jsonschema.Draft202012Validator(schema)
        validator.check_schema(schema)
    except jsonschema.SchemaError as exc:
        raise LLMConfigurationError(
            f"llm.complete(schema=...) is not a valid JSON Schema: {exc.message}"
        ) from None

    def validate(text: str) -> Checked:
        try:
            value = json.loads(_strip_fence(text))
        except ValueError as exc:
            return Checked(False, errors=(f"the answer is not JSON: {exc}",))
        errors = tuple(
            f"{'.'.join(str(p) for p in err.absolute_path) or '(root)'}: {err.message}"
            for err in validator.iter_errors(value)
        )
        return Checked(not errors, value if not errors else None, errors)

    return Schema(schema, str(schema.get("title") or "answer"), validate)


def _strip_fence(text: str) -> str:
    """Models often wrap JSON in a Markdown code fence; take what is inside."""
    text = text.strip()
    if text.startswith("```"):
        text = text.split("\n", 1)[1] if "\n" in text else ""
        text = text.rsplit("```", 1)[0]
    return text.strip()


def repair_message(errors: tuple[str, ...]) -> str:
    listed = "\n".join(f"- {e}" for e in errors[:20])
    return (
        "Your answer did not match the required JSON schema:\n"
        f"{listed}\n"
        "Answer again with only a JSON value that matches the schema, and nothing else."
    )
