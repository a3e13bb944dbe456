"""Terminal output: results on stdout, progress and messages on stderr.

Progress bars are rich's, drawn on stderr only when it is a terminal (or
FALCO_PROBES_PROGRESS=1), so logs and pipes stay clean.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

console_err = Console(stderr=True, highlight=False, soft_wrap=True)


def progress_enabled() -> bool:
    forced = os.environ.get("FALCO_PROBES_PROGRESS")
    if forced is not None:
        return forced not in ("", "0")
    return sys.stderr.isatty()


@contextmanager
def progress(kind: str = "count") -> Iterator[Progress]:
    """A progress display on stderr: kind 'count' (items) or 'bytes' (downloads)."""
    columns: list[Any] = [TextColumn("{task.description}"), BarColumn()]
    if kind == "bytes":
        columns += [DownloadColumn(), TransferSpeedColumn(), TimeRemainingColumn()]
    else:
        columns += [MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn()]
    bar = Progress(*columns, console=console_err, disable=not progress_enabled(),
                   transient=False)
    with bar:
        yield bar


def info(message: str) -> None:
    console_err.print(message, markup=False, highlight=False)


def emit_json(data: Any) -> None:
    """One JSON document (or line) on stdout."""
    sys.stdout.write(json.dumps(data, sort_keys=False) + "\n")
    sys.stdout.flush()


def emit(line: str) -> None:
    sys.stdout.write(line + "\n")
