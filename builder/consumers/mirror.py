"""Mirror: copy catalogued probes into a directory store, for air-gapped sites.

Each probe is downloaded from its catalog URL (http, https or file) into a
hidden staging folder with `builder.shared.fetch.download` (resumable, retried,
size and sha256 checked), then moved into place by the directory store,
which writes the same layout `publish` does (aliases, no-arch path, `%2B`
spellings). A probe already in place with its digest is not downloaded
again, so an interrupted mirror simply runs again.

A probe's provenance bundle (its record's `attestation`) comes along: fetched
once however many probes it attests, checked to attest each probe's sha256,
kept under `attestations/` and linked next to the probe as
`<file>.sigstore.json`, where `verify` and `gh attestation verify --bundle` find
it on the air-gapped side.
"""

from __future__ import annotations

import contextlib
import hashlib
import shutil
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from builder.core import limits
from builder.core.catalog import Catalog, natural_key
from builder.core.errors import InputError, ProbesError
from builder.core.files import require_inside
from builder.core.records import ProbeRecord
from builder.publish.attest import BundleFile, read_bundle
from builder.publish.stores.directory import DirectoryStore, canonical_path
from builder.shared.fetch import download, sha256_file

STAGING = ".partial"


@dataclass(frozen=True, slots=True)
class Filters:
    driver_versions: frozenset[str] | None = None
    target: str | None = None
    arch: str | None = None
    driver_type: str | None = None   # ebpf or kmod; None: both


def select(catalog: Catalog, filters: Filters) -> list[ProbeRecord]:
    """The catalogued probes the filters keep, in a stable order."""
    out = [p for p in catalog.probes()
           if (filters.driver_versions is None or p.driver_version in filters.driver_versions)
           and (filters.target is None or p.target == filters.target)
           and (filters.arch is None or p.arch == filters.arch)
           and (filters.driver_type is None or p.driver_type == filters.driver_type)]
    return sorted(out, key=lambda p: (natural_key(p.driver_version), p.arch, p.target,
                                      natural_key(p.kernel_release), p.kernel_version))


@dataclass
class MirrorSummary:
    downloaded: int = 0
    present: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)   # (probe, reason)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def as_dict(self) -> dict[str, Any]:
        return {"downloaded": self.downloaded, "present": self.present,
                "failed": [{"probe": p, "reason": r} for p, r in self.failed],
                "complete": not self.failed}


class _Bundles:
    """Bundles fetched once per URL and shared by the probes they attest (thread-safe)."""

    def __init__(self, staging: Path) -> None:
        self._staging = staging
        self._lock = threading.Lock()
        self._fetched: dict[str, BundleFile] = {}

    def get(self, url: str) -> BundleFile:
        with self._lock:
            if url not in self._fetched:
                name = hashlib.sha256(url.encode()).hexdigest()[:16] + ".json"
                self._fetched[url] = read_bundle(download(url, self._staging / name,
                                                          limit=limits.PROBE_FILE))
            return self._fetched[url]


def mirror(records: Iterable[ProbeRecord], store: DirectoryStore, *, jobs: int = 4,
           on_done: Callable[[ProbeRecord], None] | None = None) -> MirrorSummary:
    """Place every record; InputError before anything is written if a path would pass
    through a symbolic link inside the destination (or its staging folder)."""
    records = list(records)
    for record in records:
        store.paths_for(record)
        require_inside(store.root, store.root / STAGING / canonical_path(record))
    summary = MirrorSummary()
    bundles = _Bundles(store.root / STAGING / "attestations")

    def one(record: ProbeRecord) -> None:
        label = f"{record.driver_version}/{record.arch}/{record.file}"
        try:
            fetched = _mirror_one(record, store)
            if record.attestation:
                _mirror_bundle(record, store, bundles.get(record.attestation))
        except ProbesError as exc:
            with summary.lock:
                summary.failed.append((label, exc.message))
        except OSError as exc:
            where = f"{exc.filename}: " if exc.filename else ""
            with summary.lock:
                summary.failed.append((label, f"{where}{exc.strerror or exc}"))
        else:
            with summary.lock:
                if fetched:
                    summary.downloaded += 1
                else:
                    summary.present += 1
        if on_done is not None:
            on_done(record)

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        for _ in pool.map(one, records):
            pass
    if not summary.failed:
        with contextlib.suppress(OSError):
            shutil.rmtree(store.root / STAGING)
    return summary


def _mirror_one(record: ProbeRecord, store: DirectoryStore) -> bool:
    """Place one probe; True if it had to be downloaded."""
    real = store.root / canonical_path(record)
    if _has(real, record):
        store.place(real, record)  # (re)creates aliases and spellings
        return False
    staging = store.root / STAGING / canonical_path(record)
    require_inside(store.root, staging)
    download(record.url, staging, limit=limits.PROBE_FILE, sha256=record.sha256,
             size=record.size)
    store.place(staging, record, consume=True)
    return True


def _mirror_bundle(record: ProbeRecord, store: DirectoryStore, bundle: BundleFile) -> None:
    if not bundle.attests(record.sha256):
        raise InputError(f"the bundle at {record.attestation} does not attest sha256 "
                         f"{record.sha256}")
    store.place_attestation(bundle, record)


def _has(path: Path, record: ProbeRecord) -> bool:
    try:
        return bool(path.stat().st_size == record.size and sha256_file(path) == record.sha256)
    except (OSError, InputError):
        return False

