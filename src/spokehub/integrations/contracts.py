"""Contracts: named, versioned request/response shapes checked at the edges.

A contract is ``name@version`` (``orders.create@2``) with a request shape and a response
shape, each a pydantic model or a JSON Schema. The HTTP connector validates the request body
before sending and the response body after receiving; a mismatch is a non-retryable
``ContractViolation`` naming the JSON path and the contract version, recorded in the ledger
with the failed step.

Example:
    >>> class Order(BaseModel):
    ...     sku: str
    ...     quantity: int
    >>> orders_create = contract("orders.create", 2, request=Order, response={"type": "object"})
    >>> await http.post(url, json=order, contract=orders_create)  # doctest: +SKIP
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from spokehub.integrations.errors import ContractError, ContractViolation

Shape = type[BaseModel] | dict[str, Any]
_REF = re.compile(r"^(?P<name>[A-Za-z0-9_.\-/]+)@(?P<version>[0-9]+)$")


def json_path(parts: Iterable[Any]) -> str:
    """``$.items[0].sku`` from a sequence of keys and indexes."""
    out = "$"
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


@dataclass(frozen=True)
class Contract:
    """One version of a request/response shape. Build it with ``contract(...)``."""

    name: str
    version: int
    request: Shape | None = None
    response: Shape | None = None
    _validators: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"

    def schema(self, direction: str) -> dict[str, Any] | None:
        """The JSON Schema of the ``request`` or ``response`` side (models are converted)."""
        shape = self.request if direction == "request" else self.response
        if shape is None:
            return None
        if isinstance(shape, dict):
            return shape
        return shape.model_json_schema()

    def validate(self, direction: str, body: Any) -> Any:
        """Check ``body`` against one side; returns it (a model's JSON form for models)."""
        shape = self.request if direction == "request" else self.response
        if shape is None:
            return body
        if isinstance(shape, dict):
            self._check_schema(direction, shape, body)
            return body
        try:
            return shape.model_validate(body).model_dump(mode="json")
        except ValidationError as exc:
            first = exc.errors()[0]
            raise ContractViolation(
                self.ref, direction, json_path(first["loc"]), first["msg"]
            ) from None

    def _check_schema(self, direction: str, schema: dict[str, Any], body: Any) -> None:
        validator = self._validators.get(direction)
        if validator is None:
            from jsonschema import validators

            cls = validators.validator_for(schema)
            validator = self._validators[direction] = cls(schema)
        error = next(iter(sorted(validator.iter_errors(body), key=lambda e: list(e.path))), None)
        if error is not None:
            raise ContractViolation(self.ref, direction, json_path(error.path), error.message)


class ContractRegistry:
    """Contracts by ``name@version``; ``spokehub.integrations.contracts`` holds the default."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: dict[str, Contract] = {}

    def add(self, item: Contract) -> Contract:
        with self._lock:
            existing = self._items.get(item.ref)
            if existing is not None and existing != item:
                raise ContractError(
                    f"contract {item.ref} is declared twice with different shapes; a released "
                    "version never changes: declare the change as a new version"
                )
            self._items[item.ref] = item
        return item

    def get(self, ref: str | Contract) -> Contract:
        if isinstance(ref, Contract):
            return ref
        item = self._items.get(ref)
        if item is None:
            known = ", ".join(sorted(self._items)) or "none"
            raise ContractError(
                f"no contract {ref!r} is declared (declared: {known}); declare it with "
                "contract(name, version, request=..., response=...) in a module the worker imports"
            )
        return item

    def refs(self) -> list[str]:
        return sorted(self._items)


CONTRACTS = ContractRegistry()


def parse_ref(ref: str) -> tuple[str, int]:
    match = _REF.match(ref)
    if match is None:
        raise ContractError(f"contract reference {ref!r} is not NAME@VERSION, e.g. orders.create@2")
    return match["name"], int(match["version"])


def _check_shape(name: str, shape: Any) -> Shape | None:
    if shape is None or isinstance(shape, dict):
        if isinstance(shape, dict):
            _check_json_schema(name, shape)
        return shape
    if isinstance(shape, type) and issubclass(shape, BaseModel):
        return shape
    raise ContractError(
        f"contract {name}: a shape is a pydantic model class or a JSON Schema dict, got {shape!r}"
    )


def _check_json_schema(name: str, schema: dict[str, Any]) -> None:
    from jsonschema import exceptions, validators

    try:
        validators.validator_for(schema).check_schema(schema)
    except exceptions.SchemaError as exc:
        where = json_path(exc.path)
        raise ContractError(
            f"contract {name}: invalid JSON Schema at {where}: {exc.message}"
        ) from None


def contract(
    name: str,
    version: int,
    *,
    request: Shape | None = None,
    response: Shape | None = None,
    registry: ContractRegistry | None = None,
) -> Contract:
    """Declare (and register) one version of a contract.

    Raises:
        ContractError: the name or a shape is invalid (checked here, at declaration).
    """
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ContractError(f"contract {name}: version is a positive integer, got {version!r}")
    parse_ref(f"{name}@{version}")
    item = Contract(name, version, _check_shape(name, request), _check_shape(name, response))
    return (registry or CONTRACTS).add(item)


def load_contract_file(path: str | Path) -> Contract:
    """A contract from a JSON file: ``{"name", "version", "request", "response"}``.

    A file holding a bare JSON Schema is read as a contract whose request and response
    are both that schema (named after the file, version 1).
    """
    p = Path(path)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ContractError(f"cannot read contract file {p}: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise ContractError(f"contract file {p} is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ContractError(f"contract file {p} must hold a JSON object")
    if "request" not in data and "response" not in data:
        name = p.stem
        schema = _check_shape(name, data)
        return Contract(name, 1, schema, schema)
    name = str(data.get("name") or p.stem)
    version = data.get("version", 1)
    if not isinstance(version, int) or version < 1:
        raise ContractError(f"contract file {p}: version is a positive integer")
    return Contract(
        name,
        version,
        _check_shape(name, data.get("request")),
        _check_shape(name, data.get("response")),
    )
