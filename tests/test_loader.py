"""Loading workflows from a command line: ``path/to/file.py:NAME`` and ``module:NAME``."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from spokehub import ConfigurationError, SpokehubError, Workflow, WorkflowNotFound
from spokehub.runtime.loader import import_app, load_target, split_target

APPS = Path(__file__).parent / "apps"


@pytest.fixture(autouse=True)
def restore_import_state(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The loader edits sys.path and sys.modules; undo what each test added."""
    monkeypatch.setattr(sys, "path", list(sys.path))
    before = set(sys.modules)
    yield
    for name in set(sys.modules) - before:
        if name.startswith("loader_"):
            del sys.modules[name]


def write(folder: Path, name: str, body: str) -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(body))
    return path


def test_file_target_is_imported_by_path_with_sibling_imports(tmp_path: Path) -> None:
    write(tmp_path, "loader_helper_a.py", "GREETING = 'hi'\n")
    path = write(
        tmp_path,
        "loader_app_a.py",
        """
        from loader_helper_a import GREETING
        from spokehub import workflow

        @workflow
        async def loader_greet(name: str) -> str:
            return f"{GREETING} {name}"
        """,
    )
    wf = load_target(f"{path}:loader_greet")
    assert isinstance(wf, Workflow)
    assert wf.name == "loader_greet"
    assert sys.modules["loader_app_a"].__file__ == str(path)
    assert str(tmp_path) in sys.path
    assert import_app(str(path)) is sys.modules["loader_app_a"]  # not executed twice


def test_relative_file_path_and_registered_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(
        tmp_path,
        "loader_app_b.py",
        """
        from spokehub import workflow

        @workflow(name="loader.renamed")
        async def flow() -> int:
            return 1
        """,
    )
    monkeypatch.chdir(tmp_path)
    wf = load_target("./loader_app_b.py:loader.renamed")
    assert wf.name == "loader.renamed"
    assert load_target("loader_app_b.py:flow") is sys.modules["loader_app_b"].flow


def test_dotted_module_is_imported_from_the_current_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pkg = tmp_path / "loader_pkg_c"
    pkg.mkdir()
    write(pkg, "__init__.py", "")
    write(
        pkg,
        "flows.py",
        """
        from spokehub import workflow

        @workflow
        async def loader_dotted() -> int:
            return 3
        """,
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))])
    wf = load_target("loader_pkg_c.flows:loader_dotted")
    assert wf.name == "loader_dotted"


def test_the_shared_test_app_loads() -> None:
    wf = load_target(f"{APPS / 'cli_flows.py'}:cli_sum")
    assert wf.name == "cli_sum"


@pytest.mark.parametrize(
    ("target", "error", "words"),
    [
        ("no_colon_here", ConfigurationError, "MODULE:WORKFLOW"),
        ("mod:", ConfigurationError, "MODULE:WORKFLOW"),
        ("missing/file.py:wf", WorkflowNotFound, "does not exist"),
        ("loader_no_such_module:wf", WorkflowNotFound, "no module named 'loader_no_such_module'"),
        (f"{APPS / 'cli_flows.py'}:nope", WorkflowNotFound, "cli_sum"),
        (
            f"{APPS / 'cli_flows.py'}:not_a_workflow",
            ConfigurationError,
            "not a workflow (it is of type int)",
        ),
        (f"{APPS}:wf", ConfigurationError, "is a folder"),
    ],
)
def test_bad_targets_say_what_to_do(target: str, error: type[Exception], words: str) -> None:
    with pytest.raises(error) as info:
        load_target(target)
    assert words in str(info.value)
    assert "\n" not in str(info.value)


def test_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, "loader_syntax_d.py", "x = 1\ndef broken(:\n    pass\n")
    with pytest.raises(ConfigurationError) as info:
        load_target(f"{path}:broken")
    message = str(info.value)
    assert "syntax error" in message
    assert f"{path}:2" in message
    assert "\n" not in message
    assert "loader_syntax_d" not in sys.modules


def test_import_time_exception_is_reported_in_one_sentence(tmp_path: Path) -> None:
    path = write(tmp_path, "loader_raises_e.py", "raise RuntimeError('config missing\\nline 2')\n")
    with pytest.raises(ConfigurationError) as info:
        import_app(str(path))
    assert str(info.value) == (
        f"importing {path} raised RuntimeError: config missing; fix the error in that module"
    )
    assert "loader_raises_e" not in sys.modules


def test_missing_dependency_of_a_module_is_not_a_missing_module(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path, "loader_dep_f.py", "import loader_absent_dependency\n")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigurationError) as info:
        import_app("loader_dep_f")
    assert "No module named 'loader_absent_dependency'" in str(info.value)
    assert "install the missing package" in str(info.value)


def test_registration_errors_pass_through(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "loader_dup_g.py",
        """
        from spokehub import workflow

        @workflow(name="cli_sum")
        async def clash() -> None:
            return None
        """,
    )
    load_target(f"{APPS / 'cli_flows.py'}:cli_sum")
    with pytest.raises(SpokehubError, match="two workflows are named 'cli_sum'"):
        import_app(str(path))


def test_a_file_whose_name_is_taken_by_another_module(tmp_path: Path) -> None:
    path = write(tmp_path, "json.py", "")
    with pytest.raises(ConfigurationError, match="already imported"):
        import_app(str(path))
    other = write(tmp_path, "loader-bad-name.py", "")
    with pytest.raises(ConfigurationError, match="Python identifier"):
        import_app(str(other))
    text = write(tmp_path, "loader_notes.txt", "")
    with pytest.raises(ConfigurationError, match=r"not a \.py file"):
        import_app(str(text))


def test_split_target_keeps_colons_in_the_path() -> None:
    assert split_target("c:/apps/x.py:flow") == ("c:/apps/x.py", "flow")
