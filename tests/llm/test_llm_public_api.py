"""The intelligence layer's public surface: a curated, sorted ``__all__``, every error with a
code and in the drawn hierarchy, and heavy libraries left unloaded until a call needs them."""

from __future__ import annotations

import subprocess
import sys

import spokehub.intelligence as intelligence
import spokehub.intelligence.errors as errors
from spokehub.errors import SpokehubError


def test_all_is_sorted_and_complete() -> None:
    names = intelligence.__all__
    assert names == sorted(names)
    assert len(set(names)) == len(names)
    for name in names:
        assert getattr(intelligence, name) is not None, name


def test_errors_have_codes_and_are_drawn() -> None:
    classes = [
        c for c in vars(errors).values() if isinstance(c, type) and c.__module__ == errors.__name__
    ]
    codes = set()
    for cls in classes:
        assert issubclass(cls, SpokehubError), cls
        assert cls.__name__ in (errors.__doc__ or ""), cls
        codes.add(cls.code)
    assert len(codes) == len(classes)


def test_import_is_light() -> None:
    heavy = ("httpx", "jinja2", "jsonschema", "llama_cpp", "spokehub.intelligence")
    code = f"import sys, spokehub; print([m for m in {heavy!r} if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"  # import spokehub does not load the intelligence layer
    code = (
        f"import sys, spokehub.intelligence; print([m for m in {heavy[:4]!r} if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"  # nor does the layer load its HTTP client or templates
