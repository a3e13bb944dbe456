"""The import graph of builder/, computed from the source: the layers README.md describes.

A stage imports `core`, the shared tools and the stages before it, never a later one;
no two packages import each other; only the command layer imports `commands/`.
"""

from __future__ import annotations

import ast
from collections import defaultdict

import pytest
from testpaths import ROOT

PACKAGE = ROOT / "builder"
# Bottom to top, as data flows (README.md, "What is here"). Entries of one rank do not
# import each other; the command layer (ui, cli, commands, __main__) sits above them all.
# cli imports no command (it finds them by name, with importlib), and `demo` runs its
# steps through cli.main, the entry point a user types: so commands stand above cli.
LAYERS = [("core",), ("shared",), ("kernels",), ("plan",), ("compile",), ("loadtest",),
          ("publish",), ("consumers", "site"), ("ui",), ("cli",), ("commands",), ("__main__",)]
RANK = {name: rank for rank, names in enumerate(LAYERS) for name in names}


def package_of(module: str) -> str:
    """builder.core.records -> core; builder.cli -> cli; builder -> builder."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def edges() -> dict[str, set[str]]:
    """Package -> the packages of builder it imports (itself and the top module left out)."""
    graph: dict[str, set[str]] = defaultdict(set)
    for path in sorted(PACKAGE.rglob("*.py")):
        module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        source = package_of(module)
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level
                     else [a.name for a in node.names] if isinstance(node, ast.Import) else [])
            for name in names:
                if name.startswith("builder.") and package_of(name) != source:
                    graph[source].add(package_of(name))
    return graph


def test_every_package_has_a_place_in_the_layers() -> None:
    packages = {p.parent.name for p in PACKAGE.glob("*/__init__.py")} | {
        p.stem for p in PACKAGE.glob("*.py") if p.stem != "__init__"}
    assert packages == set(RANK), "add a new package to LAYERS (and to README.md)"


@pytest.mark.parametrize(("source", "targets"), sorted(edges().items()))
def test_a_package_imports_only_what_stands_below_it(source: str, targets: set[str]) -> None:
    upward = sorted(t for t in targets if RANK[t] >= RANK[source] and t != "builder")
    assert not upward, f"{source} imports {upward}, which stand at or above it"


def test_no_two_packages_import_each_other() -> None:
    graph = edges()
    pairs = sorted((a, b) for a, targets in graph.items() for b in targets
                   if a < b and a in graph.get(b, set()))
    assert not pairs


def test_the_graph_is_computed_from_real_imports() -> None:
    """Guard against a test that cannot fail: the graph holds the imports we know of."""
    graph = edges()
    assert {"core", "shared"} <= graph["compile"]
    assert "plan" in graph["compile"] and "kernels" in graph["plan"]
    assert "commands" not in graph["site"] and "commands" not in graph["consumers"]
