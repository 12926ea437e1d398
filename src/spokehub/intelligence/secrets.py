"""A secret value (an API key): never shown by ``repr``/``str``, never recorded.

A seam for the governance layer's secrets: a ``Secret`` can be built from a resolver there;
here it is read from settings (``SPOKEHUB_LLM_API_KEY``).
"""

from __future__ import annotations


class Secret:
    """Wraps a secret string; ``value`` gives it, everything else hides it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    @property
    def value(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(("secret", self._value))
