"""JSON encoding of workflow and step inputs and outputs.

Values are JSON (None, bool, int, float, str, list, dict) or pydantic models. Annotated
parameters and return types are rebuilt with pydantic on the way back, so a step that returns
a model gives a model both when it runs and when it is replayed from the ledger.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import sys
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pydantic import TypeAdapter

# pydantic is imported on first use, not with spokehub: it is a third of `import spokehub`.

from spokehub.errors import SerializationError
from spokehub.types import JSON

_HINT = (
    "pass JSON values (dict with str keys, list, str, int, float, bool, None) or a pydantic model"
)


def _default(what: str) -> Callable[[Any], Any]:
    def default(o: Any) -> Any:
        if "pydantic" in sys.modules:  # no model can exist before pydantic is imported
            from pydantic import BaseModel

            if isinstance(o, BaseModel):
                return o.model_dump(mode="json")
        raise SerializationError(f"{what}: a {type(o).__name__} is not JSON-serialisable; {_HINT}")

    return default


def dumps(value: Any, *, what: str = "value") -> str:
    """Encode to compact JSON text, or raise SerializationError naming ``what``."""
    try:
        return json.dumps(value, default=_default(what), allow_nan=False, separators=(",", ":"))
    except ValueError as exc:  # NaN / infinity
        raise SerializationError(f"{what}: {exc}; {_HINT}") from None
    except TypeError as exc:
        if isinstance(exc, SerializationError):
            raise
        raise SerializationError(f"{what}: {exc}; {_HINT}") from None


def to_json(value: Any, *, what: str = "value") -> JSON:
    """The JSON form of ``value`` (models dumped, tuples as lists, keys as strings)."""
    return json.loads(dumps(value, what=what))


def input_hash(data: JSON) -> str:
    """The hash that tells a repeated start (same input) from a conflicting one."""
    return hashlib.sha256(canonical(data).encode()).hexdigest()


def canonical(value: JSON) -> str:
    """Stable text of a JSON value, for hashing and comparing inputs."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False)


class _Adapter:
    """A pydantic TypeAdapter for one annotation, built the first time a value needs it."""

    __slots__ = ("_adapter", "annotation")

    def __init__(self, annotation: Any) -> None:
        self.annotation = annotation
        self._adapter: TypeAdapter[Any] | None = None

    def validate(self, value: JSON, what: str) -> Any:
        from pydantic import TypeAdapter, ValidationError

        if self._adapter is None:
            try:
                self._adapter = TypeAdapter(self.annotation)
            except Exception:  # an annotation pydantic cannot build a schema for: plain JSON
                self._adapter = TypeAdapter(Any)
        try:
            return self._adapter.validate_python(value)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(x) for x in first.get("loc", ())) or "value"
            raise SerializationError(f"{what}: {where}: {first.get('msg')}") from None


@dataclass(frozen=True, slots=True)
class _Param:
    name: str
    kind: inspect._ParameterKind
    adapter: _Adapter | None


class Codec:
    """Binds, encodes and decodes the arguments and result of one user function."""

    def __init__(self, fn: Callable[..., Any], what: str) -> None:
        self.what = what
        self.signature = inspect.signature(fn)
        try:
            hints = typing.get_type_hints(fn)
        except Exception:  # forward references we cannot resolve: fall back to plain JSON
            hints = {}
        self.params = tuple(
            _Param(p.name, p.kind, _adapter(hints.get(p.name)))
            for p in self.signature.parameters.values()
        )
        self.result_adapter = _adapter(hints.get("return"))
        # A fast path for the common call: positional arguments of plain parameters.
        plain = inspect.Parameter.POSITIONAL_OR_KEYWORD
        params = list(self.signature.parameters.values())
        self._plain = tuple(p.name for p in params) if all(p.kind is plain for p in params) else ()
        self._required = sum(1 for p in params if p.default is inspect.Parameter.empty)
        if not self._plain:
            self._required = 1 << 30  # never take the fast path

    def bind(self, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> dict[str, JSON]:
        """Match call arguments to parameters and encode them as a JSON object."""
        if not kwargs and self._required <= len(args) <= len(self._plain):
            arguments: Mapping[str, Any] = dict(zip(self._plain, args, strict=False))
        else:
            try:
                arguments = self.signature.bind(*args, **kwargs).arguments
            except TypeError as exc:
                raise SerializationError(f"{self.what}: {exc}") from None
        try:
            data: dict[str, JSON] = to_json(arguments)
        except SerializationError:  # find the argument at fault, to name it
            for name, value in arguments.items():
                to_json(value, what=f"{self.what}: argument {name!r}")
            raise
        return data

    def validate_input(self, data: Mapping[str, JSON]) -> dict[str, JSON]:
        """Check a JSON object of keyword arguments against the signature (CLI and HTTP input)."""
        if not isinstance(data, Mapping):
            raise SerializationError(f"{self.what}: input must be a JSON object of arguments")
        names = {p.name for p in self.params}
        has_var_kw = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in self.params)
        unknown = sorted(set(data) - names)
        if unknown and not has_var_kw:
            raise SerializationError(
                f"{self.what}: unknown argument(s) {unknown}; it takes {sorted(names)}"
            )
        self.call_args(data)  # raises with a clear message on a missing or invalid argument
        return {k: to_json(v, what=f"{self.what}: argument {k!r}") for k, v in data.items()}

    def call_args(self, data: Mapping[str, JSON]) -> tuple[list[Any], dict[str, Any]]:
        """Rebuild positional and keyword arguments from their JSON object."""
        args: list[Any] = []
        kwargs: dict[str, Any] = {}
        for p in self.params:
            if p.kind is inspect.Parameter.VAR_POSITIONAL:
                args.extend(data.get(p.name, ()))
                continue
            if p.kind is inspect.Parameter.VAR_KEYWORD:
                kwargs.update(data.get(p.name, {}))
                continue
            if p.name not in data:
                default = self.signature.parameters[p.name].default
                if default is inspect.Parameter.empty:
                    raise SerializationError(f"{self.what}: missing argument {p.name!r}")
                continue
            value = _validate(p.adapter, data[p.name], f"{self.what}: argument {p.name!r}")
            if p.kind is inspect.Parameter.POSITIONAL_ONLY:
                args.append(value)
            else:
                kwargs[p.name] = value
        return args, kwargs

    def call_positional(self, data: Mapping[str, JSON]) -> tuple[list[Any], dict[str, Any]]:
        """Like ``call_args`` but with every parameter that can be positional passed by position
        (until the first one left to its default), as a compensation receives them."""
        args, kwargs = self.call_args(data)
        gap = False
        for p in self.params:
            if p.kind not in (inspect.Parameter.POSITIONAL_OR_KEYWORD,):
                continue
            if p.name in kwargs and not gap:
                args.append(kwargs.pop(p.name))
            elif p.name not in data:
                gap = True
        return args, kwargs

    def encode_result(self, value: Any) -> JSON:
        return to_json(value, what=f"{self.what}: return value")

    def decode_result(self, data: JSON) -> Any:
        return _validate(self.result_adapter, data, f"{self.what}: return value")


def _adapter(annotation: Any) -> _Adapter | None:
    if annotation is None or annotation is Any or annotation is inspect.Parameter.empty:
        return None
    return _Adapter(annotation)


def _validate(adapter: _Adapter | None, value: JSON, what: str) -> Any:
    return value if adapter is None else adapter.validate(value, what)
