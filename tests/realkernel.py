"""Real Debian kernel header packages for tests, downloaded once into a cache.

`debian_headers(cache)` asks the machine's own apt (its configured archive,
never a host name of ours) which kernel the `linux-headers-<arch>`
metapackage points at, then downloads that kernel's three packages
(`linux-headers-<abi>-<flavor>`, its `-common` and `linux-kbuild-<x.y>`) with
our own `builder.fetch.download`, checked against apt's SHA256 and size.
Files land in `<cache>/debian-headers/` and are reused by every test run.
When apt cannot answer (no package lists, offline) the last kernel
downloaded into the cache is used; with neither, RealKernelUnavailable.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

from builder.fetch import download, sha256_file

MANIFEST = "manifest.json"


class RealKernelUnavailable(Exception):
    """Neither apt nor the cache can give us a real kernel's header packages."""


def cache_dir() -> Path:
    """The shared download cache of the test suite."""
    configured = os.environ.get("FALCO_PROBES_TEST_CACHE")
    return Path(configured) if configured else Path.home() / ".cache" / "falco-probes-tests"


def debian_headers(cache: Path) -> tuple[str, str, list[Path]]:
    """(uname -r, Debian package version, [flavor .deb, -common .deb, kbuild .deb])."""
    folder = cache / "debian-headers"
    try:
        uname_r, version, wanted = _from_apt()
    except RealKernelUnavailable:
        cached = _from_manifest(folder)
        if cached is None:
            raise
        return cached
    paths = [download(url, folder / name, sha256=sha256, size=size)
             for name, url, size, sha256 in wanted]
    manifest = {"uname_r": uname_r, "version": version,
                "packages": [{"name": p.name, "sha256": w[3], "size": w[2]}
                             for p, w in zip(paths, wanted, strict=True)]}
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
    return uname_r, version, paths


def debian_headers_or_skip(cache: Path) -> tuple[str, str, list[Path]]:
    """debian_headers, skipping the test where apt cannot help, failing in CI."""
    import pytest

    try:
        return debian_headers(cache)
    except RealKernelUnavailable as why:
        if os.environ.get("CI"):
            pytest.fail(f"CI must reach the Debian archive: {why}")
        pytest.skip(f"no real Debian kernel headers: {why}")


def _run(*command: str) -> str:
    try:
        proc = subprocess.run(command, capture_output=True, text=True, timeout=120,
                              check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise RealKernelUnavailable(f"{command[0]}: {exc}") from exc
    if proc.returncode != 0:
        raise RealKernelUnavailable(f"{' '.join(command)}: {proc.stderr.strip()[-300:]}")
    return proc.stdout


def _field(control: str, name: str) -> str:
    match = re.search(rf"^{name}: (.*)$", control, re.MULTILINE)
    if match is None:
        raise RealKernelUnavailable(f"apt-cache show printed no {name} field")
    return match.group(1)


def _depends(control: str) -> list[str]:
    return [alternative.split("|")[0].split("(")[0].strip()
            for alternative in _field(control, "Depends").split(",")]


def _from_apt() -> tuple[str, str, list[tuple[str, str, int, str]]]:
    arch = _run("dpkg", "--print-architecture").strip()
    meta = _run("apt-cache", "show", "--no-all-versions", f"linux-headers-{arch}")
    flavor_package = next((d for d in _depends(meta) if re.fullmatch(
        r"linux-headers-\d[\w.+~-]*", d)), None)
    if flavor_package is None:
        raise RealKernelUnavailable(f"linux-headers-{arch} depends on no kernel headers")
    flavor = _run("apt-cache", "show", "--no-all-versions", flavor_package)
    version = _field(flavor, "Version")
    wanted = [flavor_package] + [d for d in _depends(flavor)
                                 if d.endswith("-common") or d.startswith("linux-kbuild-")]
    if len(wanted) != 3:
        raise RealKernelUnavailable(f"{flavor_package} does not depend on -common and kbuild")
    uris = _run("apt-get", "download", "--print-uris", *(f"{p}={version}" for p in wanted))
    found = []
    for line in uris.splitlines():
        match = re.fullmatch(r"'(\S+)' (\S+) (\d+) SHA256:([0-9a-f]{64})", line.strip())
        if match:
            url, name, size, sha256 = match.groups()
            found.append((name, url, int(size), sha256))
    ordered = [next((f for f in found if f[0].startswith(f"{package}_")), None)
               for package in wanted]
    if None in ordered:
        raise RealKernelUnavailable(f"apt-get download --print-uris did not give all of "
                                    f"{', '.join(wanted)}")
    return flavor_package.removeprefix("linux-headers-"), version, [o for o in ordered if o]


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
