"""Synthesize a realistic catalog: the 2022 kernel list times the real driver versions.

The kernel list (4,450 x86_64 kernels, 13 distros) lives outside the repository in
../shared/data/; every bench that needs it skips with a message when it is absent.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path

from builder.core.catalog import CatalogFile, render
from builder.core.files import atomic_write
from builder.core.records import ProbeRecord, probe_file_name

KERNEL_LIST_NAME = "kernel-crawler-x86_64-2022.json"


def find_kernel_list() -> Path:
    """$FALCO_PROBES_KERNEL_LIST, else shared/data/<list> beside a folder above the repo."""
    configured = os.environ.get("FALCO_PROBES_KERNEL_LIST")
    if configured:
        return Path(configured)
    repo = Path(__file__).resolve().parents[1]
    for folder in repo.parents:
        candidate = folder / "shared" / "data" / KERNEL_LIST_NAME
        if candidate.is_file():
            return candidate
    return repo.parent / "shared" / "data" / KERNEL_LIST_NAME  # absent: callers skip


KERNEL_LIST = find_kernel_list()

# Every driver version a Falco release (0.26-0.43) loads by default, newest first.
DRIVER_VERSIONS = (
    "9.1.0+driver", "9.0.0+driver", "8.1.0+driver", "8.0.0+driver", "7.3.0+driver",
    "7.2.1+driver", "7.2.0+driver", "7.0.0+driver", "6.0.1+driver", "5.0.1+driver",
    "4.0.0+driver", "3.0.1+driver", "2.0.0+driver", "39ae7d40496793cf3d3e7890c9bbdc202263836b",
    "b7eb0dd65226a8dc254d228c8d950d07bf3521d2", "319368f1ad778691164d33d59945e00c5752cd27",
    "3aa7a83bf7b9e6229a3824e3fd1f4452d1e95cb4", "17f5df52a7d9ed6bb12d3b1768460def8439936d",
    "5c0b863ddade7a45568c0ac97d037422c9efb750", "2aa88dcf6243982697811df4c1b484bcbe9488a2",
)
REPO = "https://github.com/falcosecurity/falco-probes/releases/download"


def kernels(path: Path = KERNEL_LIST) -> list[tuple[str, str, str]]:
    """(target, kernel release, kernel version) of every usable entry in the list."""
    data = json.loads(path.read_text())
    out = []
    for entries in data.values():
        for entry in entries:
            target = str(entry.get("target", "")).lower()
            release = str(entry.get("kernelrelease", ""))
            version = str(entry.get("kernelversion", ""))
            if target and release and version and "/" not in release:
                out.append((target, release, version))
    return sorted(set(out))


def records(count: int, path: Path = KERNEL_LIST, salt: str = "") -> Iterator[ProbeRecord]:
    """`count` distinct probe records: every kernel for each driver version, then aarch64;
    past 2 x 20 x 4,450, the list again as the kernels of later years (`.yN` releases),
    as the nightly adds them."""
    made = 0
    listed = kernels(path)
    for year in itertools.count():
        for arch in ("x86_64", "aarch64"):
            for driver in DRIVER_VERSIONS:
                for target, release, version in listed:
                    if made >= count:
                        return
                    if arch == "aarch64":
                        release = release.replace("x86_64", "aarch64")
                    if year:
                        release = f"{release}.y{year}"
                    yield _record(driver, arch, target, release, version, salt)
                    made += 1


def _record(driver: str, arch: str, target: str, release: str, version: str,
            salt: str) -> ProbeRecord:
    file = probe_file_name(target, release, version)
    digest = hashlib.sha256(f"{salt}{driver}/{arch}/{file}".encode()).hexdigest()
    slug = driver.replace("+", "-")
    tag = f"probes-{slug}-{arch}-{target}-001"
    return ProbeRecord(driver, arch, target, release, version, digest,
                       3_000_000 + int(digest[:5], 16), f"{REPO}/{tag}/{file}", tag,
                       "2026-11-25T03:00:00Z",
                       "https://github.com/falcosecurity/falco-probes/actions/runs/1/job/2",
                       "0123456789abcdef0123456789abcdef01234567", driver)


def write_catalog(root: Path, count: int, path: Path = KERNEL_LIST,
                  decorate: Callable[[ProbeRecord, int], ProbeRecord] | None = None) -> int:
    """Write a catalog of `count` probes under root; returns the number of files.
    `decorate(record, n)` may add fields to the n-th record (the site bench fills the
    load test, source, job and attestation fields)."""
    groups: dict[tuple[str, str, str], list[ProbeRecord]] = defaultdict(list)
    for n, record in enumerate(records(count, path)):
        if decorate is not None:
            record = decorate(record, n)
        groups[(record.driver_version, record.arch, record.target)].append(record)
    for key, probes in groups.items():
        cat_file = CatalogFile(*key, tuple(probes))
        atomic_write(root / cat_file.relpath, render(cat_file))
    return len(groups)
