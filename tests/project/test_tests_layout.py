"""The tests are laid out like the package: whoever opens a module finds its tests in one
obvious place, and no test module imports another.

- builder/<pkg>/<module>.py is tested in tests/<pkg>/test_<module>.py (modules of
  publish/stores/ in tests/publish/ too; cli.py and ui.py, the command layer, in
  tests/commands/);
- a package whose __init__.py holds code names its test file in TESTED_AS;
- helpers and fakes live in tests/helpers/ only; tests import them, never each other.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from testpaths import ROOT

PACKAGE = ROOT / "builder"
TESTS = ROOT / "tests"
# Modules whose test file is not where the rule puts it.
TESTED_AS = {
    "builder/cli.py": "tests/commands/test_cli.py",
    "builder/ui.py": "tests/commands/test_ui.py",
    "builder/kernels/__init__.py": "tests/kernels/test_discover.py",
    "builder/plan/__init__.py": "tests/plan/test_plan.py",
    "builder/publish/stores/__init__.py": "tests/publish/test_stores.py",
    "builder/publish/stores/directory.py": "tests/publish/test_store_directory.py",
    "builder/publish/stores/github.py": "tests/publish/test_store_github.py",
}
# The command layer (one module per subcommand: parse, call the stage, print) is tested
# through the stages' tests, which run the commands; __main__ only calls cli.main and the
# package's __init__ only holds its version.
NOT_LIBRARY = ("builder/commands/", "builder/__main__.py", "builder/__init__.py")


def has_code(path: Path) -> bool:
    """More than a docstring and imports."""
    body = ast.parse(path.read_text()).body
    return any(not isinstance(n, ast.Import | ast.ImportFrom)
               and not (isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant))
               for n in body)


def library_modules() -> list[str]:
    out = []
    for path in sorted(PACKAGE.rglob("*.py")):
        name = path.relative_to(ROOT).as_posix()
        if name.startswith(NOT_LIBRARY) or (path.name == "__init__.py" and not has_code(path)):
            continue
        out.append(name)
    return out


def expected_test_file(module: str) -> str:
    """tests/<first package>/test_<module>.py, unless TESTED_AS says otherwise."""
    if module in TESTED_AS:
        return TESTED_AS[module]
    parts = Path(module).relative_to("builder").parts
    folder = parts[:-1] or (Path(parts[-1]).stem,)       # builder/plan.py: tests/plan/
    return Path("tests", *folder[:1], f"test_{Path(parts[-1]).stem}.py").as_posix()


@pytest.mark.parametrize("module", library_modules())
def test_every_library_module_has_its_test_file(module: str) -> None:
    expected = expected_test_file(module)
    assert (ROOT / expected).is_file(), f"{module}: no {expected}"


def test_no_test_module_imports_another() -> None:
    test_modules = {p.stem for p in TESTS.rglob("test_*.py")}
    found = []
    for path in TESTS.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [node.module or ""] if isinstance(node, ast.ImportFrom) else \
                [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.args[0].value] if isinstance(node, ast.Call) and node.args \
                and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str) \
                and ast.unparse(node.func).endswith(("importorskip", "import_module")) else []
            found += [(path.relative_to(ROOT).as_posix(), name) for name in names
                      if name.split(".")[0] in test_modules]
    assert found == []


def test_helpers_live_in_one_place() -> None:
    strays = [p.relative_to(ROOT).as_posix() for p in TESTS.rglob("*.py")
              if not p.name.startswith("test_") and p.name != "conftest.py"
              and TESTS / "helpers" not in p.parents]
    assert strays == []
