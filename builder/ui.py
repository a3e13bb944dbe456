"""Terminal output: results on stdout, progress and messages on stderr.

Progress bars are rich's, drawn on stderr only when it is a terminal (or
FALCO_PROBES_PROGRESS=1), so logs and pipes stay clean.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from builder.core import secrets
from builder.core.schema import printable


class _Redacted:
    """sys.stderr (looked up at each write, so a test's capture is honoured) with every
    registered secret masked: rich's progress, messages and tracebacks all go through it."""

    def write(self, text: str) -> int:
        return sys.stderr.write(secrets.redact(text))

    def flush(self) -> None:
        sys.stderr.flush()

    def isatty(self) -> bool:
        return sys.stderr.isatty()

    def fileno(self) -> int:
        return sys.stderr.fileno()

    @property
    def encoding(self) -> str:
        return getattr(sys.stderr, "encoding", None) or "utf-8"


# The one place that writes to the terminal: every line below passes through
# secrets.redact (core/secrets.py), with or without --debug.
console_err = Console(file=_Redacted(), highlight=False, soft_wrap=True,  # type: ignore[arg-type]
                      emoji=False)


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


class DownloadMeter:
    """fetch.Meter drawn on a rich progress display: one bar per download."""

    def __init__(self, bar: Progress) -> None:
        self._bar = bar

    def start(self, name: str, total: int | None, done: int) -> int:
        return int(self._bar.add_task(escape(printable(name)), total=total, completed=done))

    def advance(self, task: int, count: int) -> None:
        self._bar.advance(TaskID(task), count)

    def restart(self, task: int, done: int, total: int | None) -> None:
        self._bar.update(TaskID(task), completed=done, total=total)


class LibraryMessages(logging.Handler):
    """What the library says (`logging`, logger "builder"), shown on stderr like `info`."""

    def emit(self, record: logging.LogRecord) -> None:
        info(record.getMessage())  # info() masks secrets


def show_library_messages() -> None:
    """The library logs instead of printing; the command line shows its messages."""
    logger = logging.getLogger("builder")
    if not any(isinstance(h, LibraryMessages) for h in logger.handlers):
        logger.addHandler(LibraryMessages())
    logger.setLevel(logging.INFO)
    logger.propagate = False


def info(message: str) -> None:
    """A message on stderr, with anything a terminal would obey shown as an escape."""
    console_err.print(printable(message), markup=False, highlight=False)


def emit_json(data: Any) -> None:
    """One JSON document (or line) on stdout; JSON escapes control and non-ASCII characters."""
    sys.stdout.write(secrets.redact(json.dumps(data, sort_keys=False, ensure_ascii=True)) + "\n")
    sys.stdout.flush()


def emit(line: str) -> None:
    """One result line on stdout. Lines carry external data (catalog values, file names,
    server messages): ESC, CR, LF and bidi overrides are shown as escapes, never obeyed."""
    sys.stdout.write(secrets.redact(printable(line)) + "\n")
