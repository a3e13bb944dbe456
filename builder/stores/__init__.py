"""Stores: where published probes live and how publish, audit and mirror talk to them.

Two stores implement the same small protocol: a directory in the loader's own
layout (`directory.py`) and GitHub Releases (`github.py`). `publish` hands a
store one `Artifact` at a time; the store calls `confirm` once the probe is
final at its URL (immediately, or for immutable GitHub releases when the
draft holding it is published). A `Budget` shared by the run stops writing
cleanly at `--max-uploads` or at the deadline by raising `Stop`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from ..records import ProbeRecord

FamilyKey = tuple[str, str, str]  # (driver_version, arch, target): one catalog file, one shard set


@dataclass(frozen=True, slots=True)
class Artifact:
    """A probe file to publish: its record (everything but url and release) and its bytes."""

    probe: ProbeRecord
    path: Path

    @property
    def file(self) -> str:
        return self.probe.file

    @property
    def family(self) -> FamilyKey:
        return (self.probe.driver_version, self.probe.arch, self.probe.target)


@dataclass(frozen=True, slots=True)
class Placed:
    """Where a store holds a probe. `uploaded` is False when the store already had it."""

    url: str
    release: str = ""
    uploaded: bool = False


Confirm = Callable[[Artifact, Placed], None]


@dataclass(frozen=True, slots=True)
class StoredItem:
    """One thing a store holds, as audit sees it. sha256 "" means unknown (starter asset)."""

    key: str
    url: str
    sha256: str
    state: str = "ok"       # ok | starter
    release: str = ""


class Stop(Exception):
    """The run's write budget or deadline is reached: stop cleanly, keep what is confirmed."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason  # "budget" | "deadline"


@dataclass
class Budget:
    """Uploads left and the wall-clock deadline of one run (epoch seconds), shared by stores."""

    max_uploads: int | None = None
    deadline: float | None = None
    clock: Callable[[], float] = time.time
    uploads: int = field(default=0)

    def take_upload(self) -> None:
        """Call right before writing a probe; raises Stop when the run may not write more."""
        self.check_time()
        if self.max_uploads is not None and self.uploads >= self.max_uploads:
            raise Stop("budget")
        self.uploads += 1

    def check_time(self) -> None:
        if self.deadline is not None and self.clock() >= self.deadline:
            raise Stop("deadline")

    def may_wait(self, seconds: float) -> None:
        """Raise Stop("deadline") if waiting `seconds` would end past the deadline."""
        if self.deadline is not None and self.clock() + seconds >= self.deadline:
            raise Stop("deadline")


class Store(Protocol):
    """What publish, audit and mirror need from a store."""

    description: str

    def publish(self, artifact: Artifact, confirm: Confirm) -> None:
        """Make the probe available (or find it already there) and confirm it when final."""

    def finish(self, confirm: Confirm) -> None:
        """End of run: make pending probes final (publish drafts) and confirm them."""

    def expected_keys(self, probe: ProbeRecord) -> tuple[str, ...]:
        """Audit keys a probe must be found under; the first is where its bytes live."""

    def inventory(self) -> Iterable[StoredItem]:
        """Everything the store holds, for audit."""
