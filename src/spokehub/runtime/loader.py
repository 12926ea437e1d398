"""Find user code from a command line: ``MODULE_OR_FILE`` and ``MODULE_OR_FILE:WORKFLOW``.

``examples/order_saga.py`` is imported by path (module name = file stem, its folder on
``sys.path`` so that sibling imports work); ``my_app.flows`` is imported as a module with the
current directory on ``sys.path``. Every failure is a ``WorkflowNotFound`` or a
``ConfigurationError`` whose one sentence says what to do.

Example:
    >>> wf = load_target("examples/order_saga.py:order_saga")  # doctest: +SKIP
    >>> client.start_input(wf, {"order_id": "o-1"})
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

from spokehub.errors import ConfigurationError, SpokehubError, WorkflowNotFound
from spokehub.runtime.definitions import REGISTRY, Workflow

__all__ = ["import_app", "load_target", "split_target"]


def split_target(target: str) -> tuple[str, str]:
    """Split ``MODULE_OR_FILE:WORKFLOW`` into its two parts."""
    module, sep, name = target.rpartition(":")
    if not sep or not module or not name:
        raise ConfigurationError(
            f"{target!r} does not name a workflow; write MODULE:WORKFLOW or "
            "path/to/file.py:WORKFLOW"
        )
    return module, name


def load_target(target: str) -> Workflow[..., Any]:
    """Import ``MODULE_OR_FILE`` and return its ``@workflow`` named ``WORKFLOW``.

    ``WORKFLOW`` is an attribute of the module, or a registered workflow name (as given by
    ``@workflow(name=...)``) when the module has no attribute of that name.
    """
    module_ref, name = split_target(target)
    module = import_app(module_ref)
    value = getattr(module, name, None)
    if value is None:
        registered = REGISTRY.workflows.get(name)
        if registered is not None:
            return registered
        found = sorted(k for k, v in vars(module).items() if isinstance(v, Workflow))
        listing = ", ".join(found) if found else "none"
        raise WorkflowNotFound(
            f"{module_ref} has no workflow named {name!r} (its workflows: {listing}); "
            "check the name after the colon"
        )
    if not isinstance(value, Workflow):
        raise ConfigurationError(
            f"{module_ref}:{name} is not a workflow (it is of type {type(value).__name__}); "
            "decorate it with @spokehub.workflow or name a workflow"
        )
    return value


def import_app(ref: str) -> ModuleType:
    """Import user code by file path (``path/to/app.py``) or dotted module name (``pkg.app``)."""
    ref = ref.strip()
    if not ref:
        raise ConfigurationError("an empty module name was given; pass MODULE or path/to/file.py")
    if _is_path(ref):
        return _import_file(Path(ref))
    return _import_module(ref)


def _is_path(ref: str) -> bool:
    return ref.endswith(".py") or "/" in ref or os.sep in ref


def _import_module(name: str) -> ModuleType:
    cwd = os.getcwd()
    if cwd not in sys.path and "" not in sys.path:
        sys.path.insert(0, cwd)
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        missing = exc.name or ""
        if missing and (name == missing or name.startswith(missing + ".")):
            raise WorkflowNotFound(
                f"no module named {name!r} in {cwd} or on sys.path; check the spelling, run "
                "from the project folder, or pass a file path like path/to/app.py"
            ) from None
        raise _import_failed(name, exc) from None
    except SpokehubError:
        raise
    except SyntaxError as exc:
        raise _syntax_error(name, exc) from None
    except Exception as exc:
        raise _import_failed(name, exc) from None


def _import_file(path: Path) -> ModuleType:
    path = _checked_file(path)
    name = path.stem
    existing = sys.modules.get(name)
    if existing is not None:
        if _same_file(existing, path):
            return existing
        raise ConfigurationError(
            f"a module named {name!r} is already imported from "
            f"{getattr(existing, '__file__', None) or 'a built-in'}; rename {path.name} "
            "so that its name is unique"
        )
    folder = str(path.parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)  # so that the file's sibling imports work
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:  # pragma: no cover - a .py file always has a loader
        raise ConfigurationError(f"cannot import {str(path)!r}; check that it is a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except SpokehubError:
        sys.modules.pop(name, None)
        raise
    except SyntaxError as exc:
        sys.modules.pop(name, None)
        raise _syntax_error(str(path), exc) from None
    except Exception as exc:
        sys.modules.pop(name, None)
        raise _import_failed(str(path), exc) from None
    return module


def _checked_file(path: Path) -> Path:
    """The absolute path of an importable .py file, or the error that says what is wrong."""
    if not path.exists():
        raise WorkflowNotFound(f"file {str(path)!r} does not exist; check the path")
    if path.is_dir():
        raise ConfigurationError(
            f"{str(path)!r} is a folder; give a .py file, or a dotted module name for a package"
        )
    if path.suffix != ".py":
        raise ConfigurationError(f"{str(path)!r} is not a .py file; give a Python file")
    if not path.stem.isidentifier():
        raise ConfigurationError(
            f"{path.name!r} cannot be imported as a module; rename it to a Python identifier"
        )
    return path.resolve()


def _same_file(module: ModuleType, path: Path) -> bool:
    file = getattr(module, "__file__", None)
    if not file:
        return False
    try:
        return Path(file).resolve() == path
    except OSError:  # pragma: no cover - a file that vanished
        return False


def _syntax_error(where: str, exc: SyntaxError) -> ConfigurationError:
    place = f"{exc.filename or where}:{exc.lineno}" if exc.lineno else (exc.filename or where)
    return ConfigurationError(
        f"cannot import {where}: syntax error at {place}: {exc.msg}; fix the file and retry"
    )


def _import_failed(where: str, exc: BaseException) -> ConfigurationError:
    detail = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    what = f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__
    hint = (
        "install the missing package"
        if isinstance(exc, ModuleNotFoundError)
        else "fix the error in that module"
    )
    return ConfigurationError(f"importing {where} raised {what}; {hint}")
