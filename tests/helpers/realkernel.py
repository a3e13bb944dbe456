"""Real Debian kernel header packages for tests, downloaded once into a cache.

`debian_headers(cache)` reads the suites it names (Debian 12, `bookworm`, by
default) from the mirror the machine's apt already uses, through our own
AptArchive (apt itself checks the signatures and hashes), picks the newest
kernel whose `uname -r` matches, and downloads its three packages
(`linux-headers-<abi>-<flavor>`, its `-common` and `linux-kbuild-<x.y>`) with
our own `builder.shared.fetch.download`, checked against the index's SHA256 and
size. Naming the suites makes the tests mean the same on a Debian 12 and a
Debian 13 host. Files land in `<cache>/debian-headers/<key>/` and are reused
by every run; when apt cannot answer (offline) the last kernel downloaded
into the cache for the same key is used; with neither, RealKernelUnavailable.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
from pathlib import Path

from builder.core import limits
from builder.core.errors import ProbesError
from builder.core.records import Kernel
from builder.kernels.select import version_order
from builder.shared.apt import AptArchive
from builder.shared.fetch import download, sha256_file

MANIFEST = "manifest.json"
BOOKWORM = ("bookworm",)
# The default kernel: Debian 12's newest 6.1 amd64 kernel of its point release.
DEFAULT_RELEASE = r"6\.1\.0-\d+-amd64"


class RealKernelUnavailable(Exception):
    """Neither apt nor the cache can give us a real kernel's header packages."""


def cache_dir() -> Path:
    """The shared download cache of the test suite."""
    configured = os.environ.get("FALCO_PROBES_TEST_CACHE")
    return Path(configured) if configured else Path.home() / ".cache" / "falco-probes-tests"


@functools.cache
def archive(cache: Path, suites: tuple[str, ...] = BOOKWORM, arch: str = "amd64") -> AptArchive:
    """The suites' indices, updated once per test process."""
    apt = AptArchive(cache / "apt", suites=suites, arch=arch)
    apt.update()
    return apt


def debian_kernel(cache: Path, release: str = DEFAULT_RELEASE,
                  suites: tuple[str, ...] = BOOKWORM, arch: str = "amd64") -> Kernel:
    """The newest kernel of `suites` whose uname -r fully matches `release`."""
    try:
        kernels = [k for k in archive(cache, suites, arch).kernels()
                   if re.fullmatch(release, k.host.uname_r)]
    except ProbesError as exc:
        raise RealKernelUnavailable(exc.message) from exc
    if not kernels:
        raise RealKernelUnavailable(f"no kernel matching {release!r} in {', '.join(suites)}")
    return max(kernels, key=version_order)


def debian_headers(cache: Path, release: str = DEFAULT_RELEASE,
                   suites: tuple[str, ...] = BOOKWORM,
                   arch: str = "amd64") -> tuple[str, str, list[Path]]:
    """(uname -r, Debian package version, [flavor .deb, -common .deb, kbuild .deb])."""
    key = hashlib.sha256(f"{release} {' '.join(suites)} {arch}".encode()).hexdigest()[:12]
    folder = cache / "debian-headers" / key
    try:
        kernel = debian_kernel(cache, release, suites, arch)
    except RealKernelUnavailable:
        cached = _from_manifest(folder)
        if cached is None:
            raise
        return cached
    paths = [download(h.url, folder / h.name, limit=limits.HEADER_PACKAGE, sha256=h.sha256,
                      size=h.size)
             for h in kernel.headers]
    manifest = {"uname_r": kernel.host.uname_r, "version": kernel.package_version,
                "packages": [{"name": h.name, "sha256": h.sha256, "size": h.size}
                             for h in kernel.headers]}
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
    return kernel.host.uname_r, kernel.package_version, paths


def debian_headers_or_skip(cache: Path, release: str = DEFAULT_RELEASE,
                           suites: tuple[str, ...] = BOOKWORM,
                           arch: str = "amd64") -> tuple[str, str, list[Path]]:
    """debian_headers, skipping the test where apt cannot help, failing in CI."""
    import pytest

    try:
        return debian_headers(cache, release, suites, arch)
    except RealKernelUnavailable as why:
        if os.environ.get("CI"):
            pytest.fail(f"CI must reach the Debian archive: {why}")
        pytest.skip(f"no real Debian kernel headers: {why}")


def _from_manifest(folder: Path) -> tuple[str, str, list[Path]] | None:
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
        paths = [folder / p["name"] for p in manifest["packages"]]
        if all(p.is_file() and sha256_file(p) == e["sha256"]
               for p, e in zip(paths, manifest["packages"], strict=True)):
            return manifest["uname_r"], manifest["version"], paths
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return None
