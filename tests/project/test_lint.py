"""Every Python file of the repository is linted (ruff) and type-checked (mypy --strict).

`make lint` runs `ruff check builder tests bench` and `make typecheck` runs `mypy`, whose
files come from pyproject.toml. A folder left out of either, or a file ruff's
configuration excludes, would silently stop being checked: these tests say so.
"""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from testpaths import ROOT

CHECKED = ("builder", "tests", "bench")


def python_files() -> set[Path]:
    """Every .py file under the checked folders."""
    return {path.relative_to(ROOT) for folder in CHECKED for path in (ROOT / folder).rglob("*.py")
            if "__pycache__" not in path.parts}


def test_ruff_checks_every_python_file() -> None:
    ruff = Path(sys.executable).parent / "ruff"
    if not ruff.is_file():
        pytest.skip(f"ruff is not installed in {ruff.parent} (make venv-dev installs it)")
    done = subprocess.run([str(ruff), "check", "--show-files", *CHECKED], cwd=ROOT,
                          capture_output=True, text=True, timeout=120, check=True)
    listed = {Path(line).resolve().relative_to(ROOT) for line in done.stdout.splitlines()
              if line.endswith(".py")}
    assert python_files() - listed == set()
    assert {p for p in listed if p.parts[0] not in CHECKED} == set()


def test_mypy_is_strict_and_covers_every_folder() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mypy"]
    assert config["strict"] is True
    files = {Path(entry) for entry in config["files"]}
    assert set(map(Path, CHECKED)) <= files
    uncovered = {p for p in python_files() if not any(p.is_relative_to(f) for f in files)}
    assert uncovered == set()
    excluded = config.get("exclude")
    assert not excluded, f"mypy excludes {excluded}"
