"""W3C Design Tokens Community Group format 2025.10: parse, validate, resolve, convert colours."""

from __future__ import annotations

from spokehub.patterns.dtcg.document import Contribution, TokenDocument
from spokehub.patterns.dtcg.resolve import Token, TokenSet, resolve_document
from spokehub.patterns.dtcg.resolver import Explanation, Resolver, load_resolver
from spokehub.patterns.dtcg.types import TYPES, check_value

__all__ = [
    "TYPES",
    "Contribution",
    "Explanation",
    "Resolver",
    "Token",
    "TokenDocument",
    "TokenSet",
    "check_value",
    "load_resolver",
    "resolve_document",
]
