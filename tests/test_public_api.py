"""The public surface: what `import spokehub` promises."""

from __future__ import annotations

import subprocess
import sys

import spokehub
import spokehub.errors as errors


def test_all_is_sorted_and_complete() -> None:
    names = spokehub.__all__
    assert names == sorted(names)
    assert len(set(names)) == len(names)
    for name in names:
        assert hasattr(spokehub, name), name
    public = {n for n in vars(spokehub) if not n.startswith("_") and n[0].isupper()}
    assert public <= set(names), public - set(names)


def test_every_error_has_one_root_and_a_code() -> None:
    classes = [
        c
        for c in vars(errors).values()
        if isinstance(c, type) and issubclass(c, BaseException) and c.__module__ == errors.__name__
    ]
    for cls in classes:
        if cls is errors.Cancelled:
            assert not issubclass(cls, Exception)  # user code cannot swallow it
            continue
        assert issubclass(cls, errors.SpokehubError), cls
    documented = errors.__doc__ or ""
    for cls in classes:
        assert cls.__name__ in documented, f"{cls.__name__} missing from the drawn hierarchy"


def test_import_is_light() -> None:
    code = "import sys, spokehub; print(sorted(m for m in ('typer', 'rich') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"  # the CLI's libraries load only for the CLI
