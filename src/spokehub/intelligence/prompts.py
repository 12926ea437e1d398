"""Named, versioned prompt templates: ``name@version``, rendered with ``str.format`` or a
sandboxed Jinja2; the digest of the template text is recorded with every call that uses it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from spokehub.errors import RegistrationError
from spokehub.intelligence.errors import LLMConfigurationError


@dataclass(frozen=True, slots=True)
class Prompt:
    """Messages ready to send, with the template they came from (if any)."""

    messages: list[dict[str, str]]
    template: str | None = None  # name@version
    digest: str | None = None


@dataclass(frozen=True)
class PromptTemplate:
    """A prompt with a name and a version; change the text, bump the version.

    Args:
        ref: ``"name@version"``.
        text: the user message; ``{field}`` placeholders (``engine="format"``) or Jinja2.
        system: an optional system message, rendered the same way.
        engine: ``"format"`` (``str.format``) or ``"jinja"`` (a sandboxed Jinja2).

    Example:
        >>> summarise = PromptTemplate("summarise@2", "Summarise in one line: {text}")
        >>> summarise.render(text="spokehub is ...").messages[-1]["content"]
        'Summarise in one line: spokehub is ...'
    """

    ref: str
    text: str
    system: str | None = None
    engine: Literal["format", "jinja"] = "format"
    digest: str = field(init=False)

    def __post_init__(self) -> None:
        name, sep, version = self.ref.partition("@")
        if not sep or not name or not version:
            raise RegistrationError(
                f"prompt template {self.ref!r}: name it `name@version`, e.g. 'summarise@1'"
            )
        if self.engine not in ("format", "jinja"):
            raise RegistrationError(f"prompt template {self.ref!r}: engine is format or jinja")
        material = f"{self.engine}\0{self.system or ''}\0{self.text}"
        object.__setattr__(self, "digest", hashlib.sha256(material.encode()).hexdigest()[:16])
        _register(self)

    @property
    def name(self) -> str:
        return self.ref.partition("@")[0]

    @property
    def version(self) -> str:
        return self.ref.partition("@")[2]

    def render(self, **values: Any) -> Prompt:
        messages = []
        if self.system is not None:
            messages.append({"role": "system", "content": self._fill(self.system, values)})
        messages.append({"role": "user", "content": self._fill(self.text, values)})
        return Prompt(messages, self.ref, self.digest)

    def _fill(self, text: str, values: Mapping[str, Any]) -> str:
        if self.engine == "format":
            try:
                return text.format(**values)
            except (KeyError, IndexError) as exc:
                raise LLMConfigurationError(
                    f"prompt template {self.ref!r} needs a value for {exc}; pass it to render()"
                ) from None
        from jinja2 import StrictUndefined, UndefinedError
        from jinja2.sandbox import SandboxedEnvironment

        env = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False)
        try:
            return env.from_string(text).render(**values)
        except UndefinedError as exc:
            raise LLMConfigurationError(f"prompt template {self.ref!r}: {exc}") from None


_TEMPLATES: dict[str, PromptTemplate] = {}


def _register(template: PromptTemplate) -> None:
    existing = _TEMPLATES.get(template.ref)
    if existing is not None and existing.digest != template.digest:
        raise RegistrationError(
            f"prompt template {template.ref!r} is defined twice with different text; give the "
            "new text a new version"
        )
    _TEMPLATES[template.ref] = template


def get_template(ref: str) -> PromptTemplate:
    """A registered template by ``name@version``."""
    try:
        return _TEMPLATES[ref]
    except KeyError:
        known = ", ".join(sorted(_TEMPLATES)) or "none"
        raise LLMConfigurationError(f"no prompt template {ref!r} (registered: {known})") from None
