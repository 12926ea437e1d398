"""Turning usage into money: a price table per model, shipped defaults, TOML overrides."""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from importlib import resources
from pathlib import Path

from spokehub.intelligence.chat import Usage
from spokehub.intelligence.errors import LLMConfigurationError

_MILLION = Decimal(1_000_000)


@dataclass(frozen=True, slots=True)
class Price:
    """USD per million tokens, for prompt (``input``) and completion (``output``) tokens."""

    input: float
    output: float

    def __post_init__(self) -> None:
        if self.input < 0 or self.output < 0:
            raise LLMConfigurationError(f"a price cannot be negative: {self}")

    def cost(self, usage: Usage) -> float:
        """The cost of ``usage`` in USD, computed in decimal (exact to the micro-cent)."""
        total = (
            Decimal(str(self.input)) * usage.prompt_tokens
            + Decimal(str(self.output)) * usage.completion_tokens
        ) / _MILLION
        return float(round(total, 10))

    def prompt_cost(self, tokens: int) -> float:
        return float(round(Decimal(str(self.input)) * tokens / _MILLION, 10))


class PriceTable:
    """Prices by ``provider:model`` or ``model``.

    Example:
        >>> table = PriceTable({"gpt-4o-mini": Price(0.15, 0.60)})
        >>> table.cost("openai", "gpt-4o-mini", Usage(1000, 500))
        0.00045
    """

    def __init__(self, prices: Mapping[str, Price]) -> None:
        self.prices = dict(prices)

    def get(self, provider: str, model: str) -> Price | None:
        return self.prices.get(f"{provider}:{model}") or self.prices.get(model)

    def cost(self, provider: str, model: str, usage: Usage) -> float:
        price = self.get(provider, model)
        return 0.0 if price is None else price.cost(usage)

    def merged(self, other: Mapping[str, Price]) -> PriceTable:
        return PriceTable({**self.prices, **other})

    @classmethod
    def defaults(cls) -> PriceTable:
        text = resources.files("spokehub.intelligence").joinpath("prices.toml").read_text()
        return cls(parse_prices(tomllib.loads(text), "the shipped price table"))

    @classmethod
    def from_file(cls, path: str | Path, *, setting: str = "SPOKEHUB_LLM_PRICES") -> PriceTable:
        """The defaults, overridden by the TOML file at ``path``."""
        try:
            data = tomllib.loads(Path(path).read_text())
        except OSError as exc:
            raise LLMConfigurationError(
                f"{setting}={str(path)!r}: cannot read it ({exc})"
            ) from None
        except tomllib.TOMLDecodeError as exc:
            raise LLMConfigurationError(
                f"{setting}={str(path)!r}: not valid TOML ({exc})"
            ) from None
        return cls.defaults().merged(parse_prices(data, f"{setting}={str(path)!r}"))


def parse_prices(data: Mapping[str, object], where: str) -> dict[str, Price]:
    """``{"models": {"name": {"input": x, "output": y}}}`` to prices, or a clear error."""
    models = data.get("models", {})
    if not isinstance(models, Mapping):
        raise LLMConfigurationError(f"{where}: [models] must be a table of model prices")
    prices: dict[str, Price] = {}
    for name, entry in models.items():
        if not isinstance(entry, Mapping):
            raise LLMConfigurationError(f"{where}: models.{name} must be a table")
        try:
            prices[str(name)] = Price(float(entry["input"]), float(entry["output"]))
        except (KeyError, TypeError, ValueError):
            raise LLMConfigurationError(
                f"{where}: models.{name} needs numbers `input` and `output` (USD per million "
                "tokens)"
            ) from None
    return prices
