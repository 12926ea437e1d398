"""Secrets: referenced by name, resolved at execution time, never stored or shown.

``secret("NAME")`` asks each provider in turn: the environment (``NAME``), then a secrets file
(``SPOKEHUB_SECRETS_FILE``, ``NAME=value`` lines). Configuration values written
``secret://NAME`` resolve the same way (``resolve_reference``). Every resolved value is handed
to the redactor, which masks it everywhere spokehub writes or shows text. Other stores (Vault,
a cloud secret manager) plug in as a ``SecretProvider``.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from spokehub.errors import ConfigurationError
from spokehub.governance.errors import SecretNotFound
from spokehub.governance.redaction import REDACTOR
from spokehub.runtime.interceptors import ExecuteStepInput, Interceptor, StartRunInput

__all__ = [
    "SECRET_SCHEME",
    "EnvironmentProvider",
    "FileProvider",
    "SecretProvider",
    "Secrets",
    "SecretsInterceptor",
    "configure_secrets",
    "resolve_reference",
    "secret",
]

SECRET_SCHEME = "secret://"


class SecretProvider(Protocol):
    """Where secret values come from."""

    name: str

    def get(self, key: str) -> str | None:
        """The value of ``key``, or None when this provider does not have it."""
        ...


class EnvironmentProvider:
    name = "environment"

    def __init__(self, env: Mapping[str, str] | None = None, *, prefix: str = "") -> None:
        self.env = env
        self.prefix = prefix

    def get(self, key: str) -> str | None:
        env = os.environ if self.env is None else self.env
        value = env.get(self.prefix + key)
        return value or None


class FileProvider:
    """A file of ``NAME=value`` lines (``#`` comments, blank lines and ``export `` allowed).

    All its values are masked as soon as it is read: each is a secret by definition.
    """

    name = "file"

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._values: dict[str, str] | None = None

    def _load(self) -> dict[str, str]:
        if self._values is None:
            try:
                text = self.path.read_text(encoding="utf-8")
            except OSError as exc:
                raise ConfigurationError(
                    f"cannot read the secrets file {self.path}: {exc.strerror}; fix "
                    "SPOKEHUB_SECRETS_FILE or unset it"
                ) from None
            values: dict[str, str] = {}
            for number, raw in enumerate(text.splitlines(), start=1):
                line = raw.strip()
                if not line or line.startswith("#"):
                    continue
                key, sep, value = line.removeprefix("export ").partition("=")
                if not sep or not key.strip():
                    raise ConfigurationError(
                        f"{self.path}:{number}: expected NAME=value (the value is not shown)"
                    )
                values[key.strip()] = value.strip().strip("'\"")
            for key, value in values.items():
                REDACTOR.add(key, value)
            self._values = values
        return self._values

    def get(self, key: str) -> str | None:
        return self._load().get(key)


class Secrets:
    """Providers asked in order; each value found is registered with the redactor."""

    def __init__(self, providers: Sequence[SecretProvider]) -> None:
        self.providers = list(providers)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Secrets:
        env = os.environ if env is None else env
        providers: list[SecretProvider] = [EnvironmentProvider(env)]
        path = env.get("SPOKEHUB_SECRETS_FILE")
        if path:
            providers.append(FileProvider(path))
        return cls(providers)

    def get(self, name: str) -> str:
        if not isinstance(name, str) or not name.strip():
            raise ValueError("a secret name is a non-empty string, e.g. secret('GITHUB_TOKEN')")
        for provider in self.providers:
            value = provider.get(name)
            if value is not None:
                REDACTOR.add(name, value)
                return value
        where = ", ".join(p.name for p in self.providers) or "no providers"
        raise SecretNotFound(
            f"secret {name!r} was not found ({where}); set the environment variable {name} "
            "or add it to the file named by SPOKEHUB_SECRETS_FILE"
        )


_configured: Secrets | None = None


def configure_secrets(secrets: Secrets | None) -> None:
    """Use ``secrets`` for ``secret()`` in this process (None: back to the environment)."""
    global _configured
    _configured = secrets


def secret(name: str) -> str:
    """The value of secret ``name``, resolved now; masked wherever spokehub writes text.

    Call it where the value is used (inside a step), not in workflow code: a step's result
    is recorded, a local variable of the step is not.

    Example:
        >>> @step
        ... async def publish(post: str) -> str:
        ...     token = secret("CMS_TOKEN")
        ...     return await cms.publish(post, token=token)  # doctest: +SKIP
    """
    return (_configured or Secrets.from_env()).get(name)


def resolve_reference(value: str) -> str:
    """``secret://NAME`` resolved; any other value unchanged (for configuration values)."""
    if isinstance(value, str) and value.startswith(SECRET_SCHEME):
        return secret(value[len(SECRET_SCHEME) :])
    return value


class SecretsInterceptor(Interceptor):
    """Masks resolved secrets in step results and exceptions as they leave the step, and in
    run inputs before they are stored, so workflow code, traces and the ledger agree."""

    async def execute_step(
        self, input: ExecuteStepInput, call_next: Callable[[ExecuteStepInput], Awaitable[Any]]
    ) -> Any:
        try:
            value = await call_next(input)
        except Exception as exc:
            if REDACTOR.active:
                REDACTOR.exception(exc)
            raise
        return _masked(value) if REDACTOR.active else value

    async def start_run(
        self, input: StartRunInput, call_next: Callable[[StartRunInput], Awaitable[Any]]
    ) -> Any:
        if REDACTOR.active:
            input = input.replace(input=REDACTOR.value(input.input))
        return await call_next(input)


def _masked(value: Any) -> Any:
    from pydantic import BaseModel

    if isinstance(value, BaseModel):
        dumped = value.model_dump(mode="json")
        masked = REDACTOR.value(dumped)
        return value if masked == dumped else type(value).model_validate(masked)
    return REDACTOR.value(value)
