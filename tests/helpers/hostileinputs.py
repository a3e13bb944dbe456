"""Hostile inputs that readers must refuse: a billion-laughs YAML, a FIFO."""

from __future__ import annotations

import os
from pathlib import Path


def alias_bomb(levels: int = 9) -> str:
    """The billion laughs: each level is ten aliases of the one before (10^9 leaves)."""
    lines = ["l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for i in range(1, levels + 1):
        lines.append(f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 10) + "]")
    return "\n".join(lines) + "\n"


def fifo(tmp_path: Path) -> Path:
    """A named pipe: reading it would block forever."""
    path = tmp_path / "fifo"
    os.mkfifo(path)
    return path
