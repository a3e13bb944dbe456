"""Stores: where published probes live and how publish, audit and mirror talk to them.

Two stores implement the same small protocol: a directory in the loader's own
layout (`directory.py`) and GitHub Releases (`github.py`). `publish` hands a
store one `Artifact` at a time; the store calls `confirm` once the probe is
final at its URL (immediately, or for immutable GitHub releases when the
draft holding it is published). A `Budget` shared by the run stops writing
cleanly at `--max-uploads` or at the deadline by raising `Stop`.

Beside each probe a store keeps its compile log and the provenance bundle that
attests it (sidecars), so an old catalog record still reaches both after CI's logs
and artifacts expire. A sidecar already in the store is kept (the first write wins:
the log of a published probe is the log of the build that published it).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from builder.core.records import FailureRecord, ProbeRecord
from builder.publish.attest import BundleFile
from builder.publish.stores.assetnames import (
    FamilyKey,  # (driver_version, arch, target, twin root): one set of releases
)

LOG = "log"
ATTESTATION = "attestation"
PROBE = "probe"


def log_name(file: str, attempt: int | None = None) -> str:
    """A compile log's file name: `<file>.log`, a failed attempt's `<file>.attempt-<n>.log`."""
    return f"{file}.log" if attempt is None else f"{file}.attempt-{attempt}.log"


def sidecar_kind(name: str) -> str:
    """What a stored file is, by its name: probe, log or attestation."""
    if name.endswith(".log"):
        return LOG
    if name.endswith(".sigstore.json"):
        return ATTESTATION
    return PROBE


@dataclass(frozen=True, slots=True)
class Artifact:
    """A probe file to publish: its record (everything but url and release) and its bytes,
    with its compile log and the bundle attesting it when there are."""

    probe: ProbeRecord
    path: Path
    log: Path | None = None
    attestation: BundleFile | None = None

    @property
    def file(self) -> str:
        return self.probe.file

    @property
    def family(self) -> FamilyKey:
        return (self.probe.driver_version, self.probe.arch, self.probe.target, self.probe.root)


@dataclass(frozen=True, slots=True)
class Placed:
    """Where a store holds a probe. `uploaded` is False when the store already had it."""

    url: str
    release: str = ""
    uploaded: bool = False
    log: str = ""            # where its compile log is ("" if it has none or it could not go)
    attestation: str = ""    # where its provenance bundle is


Confirm = Callable[[Artifact, Placed], None]


@dataclass(frozen=True, slots=True)
class FailedBuild:
    """A failure to record, with its compile log to keep in the store."""

    failure: FailureRecord
    log: Path

    @property
    def family(self) -> FamilyKey:
        return (self.failure.driver_version, self.failure.arch, self.failure.target,
                self.failure.root)

    @property
    def log_name(self) -> str:
        return log_name(self.failure.file, self.failure.attempts)


ConfirmFailure = Callable[[FailedBuild, str], None]


@dataclass(frozen=True, slots=True)
class StoredItem:
    """One thing a store holds, as audit sees it. sha256 "" means unknown (starter asset)."""

    key: str
    url: str
    sha256: str
    state: str = "ok"       # ok | starter
    release: str = ""
    kind: str = PROBE       # probe | log | attestation (sidecars are not probes)


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

    def publish_failure(self, item: FailedBuild, confirm: ConfirmFailure) -> None:
        """Keep a failure's log and confirm it with the log's URL when final."""

    def finish(self, confirm: Confirm) -> None:
        """End of run: make pending probes final (publish drafts) and confirm them."""

    def expected_keys(self, probe: ProbeRecord) -> tuple[str, ...]:
        """The keys of the StoredItems (see `inventory`) a catalogued probe must be found
        under, each the store's name of one file it serves; the first holds its bytes."""

    def inventory(self) -> Iterable[StoredItem]:
        """Everything the store holds, for audit."""

    def owns(self, url: str) -> bool:
        """Whether `url` points into this store (audit checks only those links)."""

    def retire_alias(self, probe: ProbeRecord, alias: str) -> list[str]:
        """Stop serving `alias` from `probe` (another probe now owns that name); the keys
        removed. Stores that serve aliases only through the catalog remove nothing."""

    def relink(self, probe: ProbeRecord) -> list[str]:
        """Serve every name of a probe whose bytes the store holds again (audit's repair of
        missing paths); the keys restored."""
