"""The package's shape, kept by a test: commands on top, a library that never prints.

- no module outside `builder/commands/` imports from it (the site plugin included);
- no command imports a concrete store class (they talk to the Store protocol);
- nothing outside the command layer (commands/, cli.py, ui.py) writes to the terminal:
  no print(), no rich, no ui import (the load test's guest runs inside a VM, where its
  stdout is the serial console, and is the one exception);
- every sub-package says in its docstring what its stage takes and gives.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from testpaths import ROOT

PACKAGE = ROOT / "builder"
COMMAND_LAYER = {PACKAGE / "cli.py", PACKAGE / "ui.py"}
IN_THE_VM = {PACKAGE / "loadtest" / "guest.py"}
STORE_CLASSES = {"DirectoryStore", "GitHubStore"}


def modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def imported(path: Path) -> list[tuple[str, list[str]]]:
    """(absolute module, names) for every import of a module of ours."""
    tree = ast.parse(path.read_text())
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            out.append((base, [a.name for a in node.names]))
        elif isinstance(node, ast.Import):
            out += [(a.name, []) for a in node.names]
    return out


def in_commands(path: Path) -> bool:
    return path.is_relative_to(PACKAGE / "commands")


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_only_commands_import_commands(path: Path) -> None:
    if in_commands(path) or path == PACKAGE / "cli.py":
        return
    assert not [m for m, _ in imported(path) if m.startswith("builder.commands")]


@pytest.mark.parametrize("path", sorted((PACKAGE / "commands").glob("*.py")),
                         ids=lambda p: p.name)
def test_commands_use_the_store_protocol(path: Path) -> None:
    concrete = [(m, n) for m, names in imported(path) for n in names if n in STORE_CLASSES]
    # mirror writes a directory store by definition: the folder is what it makes
    allowed = {("builder.publish.stores.directory", "DirectoryStore")} \
        if path.name == "mirror.py" else set()
    assert set(concrete) <= allowed


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_the_library_never_prints(path: Path) -> None:
    if in_commands(path) or path in COMMAND_LAYER | IN_THE_VM:
        return
    tree = ast.parse(path.read_text())
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call)
             and isinstance(n.func, ast.Name) and n.func.id == "print"]
    assert not calls, f"print() at line {calls[0].lineno}"
    terminal = [m for m, _ in imported(path) if m == "builder.ui" or m.startswith("rich")]
    assert not terminal


@pytest.mark.parametrize("package", sorted(p.parent for p in PACKAGE.glob("*/__init__.py")),
                         ids=lambda p: p.name)
def test_every_stage_says_what_it_takes_and_gives(package: Path) -> None:
    doc = ast.get_docstring(ast.parse((package / "__init__.py").read_text())) or ""
    if package.name == "commands":
        assert "parses its arguments, calls its stage" in doc
        return
    assert "Takes:" in doc and "Gives:" in doc, package.name
