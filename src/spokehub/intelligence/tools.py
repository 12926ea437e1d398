"""Tools an agent may call: typed, described, risk-rated, and durable.

``@tool`` turns a function (usually a ``@step``; a plain function is made one) into a ``Tool``:
its parameters become a pydantic model (the JSON Schema the model sees, and the validator
every proposed call must pass), its docstring the description. A tool whose signature cannot
be expressed as JSON (an un-annotated parameter, ``*args``, a type pydantic cannot describe)
is refused when it is declared, not when a model first tries to call it.

Example:
    >>> @tool(risk="high", labels=["catalog"])
    ... @step
    ... async def set_price(sku: str, cents: int) -> int:
    ...     '''Change a product's price.'''
    ...     ...
    >>> set_price.openai()["function"]["name"]
    'set_price'
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, get_type_hints

from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError, create_model

from spokehub.errors import RegistrationError
from spokehub.runtime.definitions import StepDefinition, step

__all__ = ["Risk", "Tool", "ToolRegistry", "tool"]

Risk = Literal["low", "medium", "high"]
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]{0,63}$")  # what OpenAI's function names allow


@dataclass(frozen=True, slots=True)
class Tool:
    """A callable an agent may plan with.

    Attributes:
        name: what the model calls it (letters, digits, ``_``, ``-``; at most 64).
        description: what it does, for the model (the docstring's first paragraph).
        risk: ``low``, ``medium`` or ``high``; a plan with a high-risk tool waits for a human.
        labels: free tags that policies can match on.
        step: the durable step that runs a call.
        params: the pydantic model of the arguments.
    """

    name: str
    description: str
    risk: Risk
    labels: tuple[str, ...]
    step: StepDefinition[..., Any]
    params: type[BaseModel]
    returns: Any = field(default=None, repr=False)

    def validate(self, args: Any) -> dict[str, Any]:
        """The arguments, checked and coerced; raises ``pydantic.ValidationError``."""
        if not isinstance(args, dict):
            raise TypeError(f"arguments of {self.name!r} must be an object, got {args!r}")
        return self.params.model_validate(args).model_dump(mode="json")

    def schema(self) -> dict[str, Any]:
        return self.params.model_json_schema()

    def openai(self) -> dict[str, Any]:
        """The tool in the OpenAI-compatible ``tools`` format."""
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": self.schema(),
            },
        }

    async def __call__(self, **kwargs: Any) -> Any:
        return await self.step(**kwargs)


def tool(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    description: str | None = None,
    risk: Risk = "low",
    labels: Iterable[str] = (),
) -> Any:
    """Declare a tool (bare ``@tool`` or ``@tool(risk=..., labels=...)``)."""

    def wrap(target: Callable[..., Any]) -> Tool:
        return _make(target, name=name, description=description, risk=risk, labels=labels)

    return wrap(fn) if fn is not None else wrap


def _make(
    target: Callable[..., Any],
    *,
    name: str | None,
    description: str | None,
    risk: Risk,
    labels: Iterable[str],
) -> Tool:
    if risk not in ("low", "medium", "high"):
        raise RegistrationError(f"tool risk must be low, medium or high, got {risk!r}")
    st = target if isinstance(target, StepDefinition) else None
    fn = st.fn if st is not None else target
    tool_name = name or fn.__name__
    if not _NAME.match(tool_name):
        raise RegistrationError(
            f"tool name {tool_name!r} is not allowed: use letters, digits, _ and -, at most 64"
        )
    params, returns = _signature_model(fn, tool_name)
    if st is None:
        st = step(name=f"tool.{tool_name}")(fn)
    text = description or inspect.getdoc(fn) or ""
    text = text.split("\n\n")[0].strip()
    if not text:
        raise RegistrationError(
            f"tool {tool_name!r} needs a description (a docstring) for the model"
        )
    return Tool(tool_name, text, risk, tuple(labels), st, params, returns)


def _signature_model(fn: Callable[..., Any], name: str) -> tuple[type[BaseModel], Any]:
    where = f"tool {name!r} ({getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', '?')})"
    try:
        hints = get_type_hints(fn)
    except Exception as exc:
        raise RegistrationError(f"{where}: its annotations cannot be resolved: {exc}") from exc
    fields: dict[str, Any] = {}
    for param in inspect.signature(fn).parameters.values():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            raise RegistrationError(f"{where}: *args and **kwargs cannot be described to a model")
        if param.name not in hints:
            raise RegistrationError(f"{where}: parameter {param.name!r} has no type annotation")
        default = ... if param.default is param.empty else param.default
        fields[param.name] = (hints[param.name], default)
    model_name = "".join(part.capitalize() for part in re.split(r"[_-]", name)) + "Args"
    try:
        params = create_model(model_name, __config__=ConfigDict(extra="forbid"), **fields)
        params.model_json_schema()
        returns = hints.get("return", Any)
        TypeAdapter(returns).json_schema()
    except Exception as exc:
        raise RegistrationError(f"{where}: its signature is not serialisable: {exc}") from exc
    return params, returns


class ToolRegistry:
    """Tools by name; exported in the OpenAI-compatible format for the planner."""

    def __init__(self, tools: Sequence[Tool] = ()) -> None:
        self._tools: dict[str, Tool] = {}
        for t in tools:
            self.add(t)

    def add(self, t: Tool) -> None:
        if not isinstance(t, Tool):
            raise RegistrationError(f"{t!r} is not a tool; declare it with @tool")
        if t.name in self._tools and self._tools[t.name] is not t:
            raise RegistrationError(f"two tools are named {t.name!r}")
        self._tools[t.name] = t

    def get(self, name: str) -> Tool | None:
        return self._tools.get(name)

    def __contains__(self, name: object) -> bool:
        return name in self._tools

    def __iter__(self) -> Any:
        return iter(self._tools.values())

    def __len__(self) -> int:
        return len(self._tools)

    def openai(self) -> list[dict[str, Any]]:
        return [t.openai() for t in self._tools.values()]


def errors_of(exc: ValidationError | TypeError) -> list[str]:
    """Validation errors as ``path: message`` lines (for the planner to read)."""
    if isinstance(exc, TypeError):
        return [str(exc)]
    return [
        f"{'.'.join(str(p) for p in err['loc']) or '(root)'}: {err['msg']}" for err in exc.errors()
    ]
