"""A bootable kernel for a probe: its `linux-image` package, fetched and partly extracted.

Only Debian kernels have an image we can get here: `linux-image-<uname -r>`
at the very package version the probe's headers came from, found through
apt (the archive's signed indices give its URL, sha256 and size), downloaded
once into the shared download cache (hash-checked like the headers) and
extracted with `extract.py`, keeping only what a boot needs: `vmlinuz` and
the modules that put the host's file system in the VM (virtio PCI, and 9p or
virtiofs).
That is ~10 MB of a ~400 MB package, kept per package digest in the cache.
"""

from __future__ import annotations

import gzip
import hashlib
import lzma
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from typing import Any

import zstandard
from elftools.common.exceptions import ELFError
from elftools.elf.elffile import ELFFile

from builder.core import limits
from builder.core.errors import ProbesError
from builder.core.records import DEB_ARCH
from builder.shared.apt import AptArchive
from builder.shared.extract import extract
from builder.shared.fetch import Cache

# What a boot needs from the package (paths under lib/modules/<release>/kernel/).
MODULE_DIRS = ("drivers/virtio/", "net/9p/", "fs/9p/", "fs/netfs/", "fs/fscache/", "fs/fuse/")
# How the VM sees the host's file system, in order of preference, and the modules each
# needs: 9p works without privileges; virtiofs needs a virtiofsd running as root, and
# is there for kernels built without 9p (Debian's cloud flavors).
SHARES = {"9p": ("virtio_pci", "9pnet_virtio", "9p"), "virtiofs": ("virtio_pci", "virtiofs")}
# Why this host does not offer a share (vm.shares_here), for the not-tested reason.
UNOFFERED = {"virtiofs": "this host runs no virtiofsd (it needs root and Debian's virtiofsd "
                         "on Debian 13, qemu-system-x86 on Debian 12)"}
_MODULE_SUFFIXES = (".ko", ".ko.xz", ".ko.zst", ".ko.gz")


class KernelUnavailable(ProbesError):
    """No bootable image for this kernel: its probes are `not_tested` with this reason."""


@dataclass(frozen=True, slots=True)
class KernelModule:
    name: str
    path: Path
    depends: tuple[str, ...]

    def data(self) -> bytes:
        """The module as `insmod` wants it: uncompressed."""
        return _decompressed(self.path.name, self.path.read_bytes())


@dataclass(frozen=True, slots=True)
class KernelImage:
    release: str
    arch: str                    # uname -m: which VM boots it
    package: str                 # name_version of the linux-image package
    vmlinuz: Path
    share: str                   # 9p or virtiofs: how the VM sees the host's files
    modules: tuple[KernelModule, ...]   # what that share needs, in load order


def debian_arch(release: str) -> str:
    """The `uname -m` of a Debian kernel from its `uname -r`: the flavour names its Debian
    architecture (6.1.0-57-cloud-arm64, 6.12.38+deb13-arm64-16k); x86_64 when none does."""
    words = set(release.split("-"))
    return next((arch for arch, deb in DEB_ARCH.items() if deb in words), "x86_64")


def image_package(release: str) -> tuple[str, ...]:
    """Debian's names for the image of `uname -r` release: signed first, then unsigned."""
    return (f"linux-image-{release}", f"linux-image-{release}-unsigned")


def headers_version(release: str, headers: tuple[dict[str, str], ...], fallback: str) -> str:
    """The Debian package version of the headers the probe was built against.

    The headers package's file name says it exactly (the kernel key holds the
    source version, which is the same for Debian's kernels).
    """
    prefix = f"linux-headers-{release}_"
    for header in headers:
        name = urllib.parse.unquote(header.get("name", ""))
        if name.startswith(prefix) and name.endswith(".deb"):
            return name[len(prefix):].rsplit("_", 1)[0]
    return fallback


def fetch_image(release: str, version: str, arch: str, apt: AptArchive, downloads: Cache,
                cache: Path, shares: tuple[str, ...] = tuple(SHARES)) -> KernelImage:
    """The image of Debian kernel `release` at package `version`; KernelUnavailable if none.

    `shares` are the ways this host can share its files, in order of preference.
    """
    if arch not in DEB_ARCH:
        raise KernelUnavailable(f"no {arch} kernel images: Debian's are "
                                f"{' and '.join(DEB_ARCH.values())}")
    package = None
    problems = []
    for name in image_package(release):
        try:
            package = apt.package(name, version)
            break
        except ProbesError as exc:
            problems.append(exc.message)
    if package is None:
        raise KernelUnavailable(f"no kernel image: {problems[0]}")
    try:
        deb = downloads.fetch(package.url, limit=limits.KERNEL_IMAGE, sha256=package.sha256,
                              size=package.size)
    except ProbesError as exc:
        raise KernelUnavailable(f"the kernel image could not be downloaded: {exc.message}") \
            from exc
    # The folder names what was kept, so a change of MODULE_DIRS extracts again.
    kept = hashlib.sha256("\0".join(MODULE_DIRS).encode()).hexdigest()[:8]
    tree = cache / f"{package.sha256[:20]}-{kept}"
    if not tree.is_dir():
        extract(deb, tree, kind="deb", keep=_boot_files(release))
    return image_from_tree(tree, release, package.name.removesuffix(".deb"), shares, arch)


def _boot_files(release: str) -> Callable[[str], bool]:
    prefixes = tuple(f"{root}lib/modules/{release}/kernel/{folder}"
                     for root in ("", "usr/") for folder in MODULE_DIRS)
    builtin = tuple(f"{root}lib/modules/{release}/modules.builtin" for root in ("", "usr/"))

    def keep(rel: str) -> bool:
        return rel == f"boot/vmlinuz-{release}" or rel in builtin or \
            rel.startswith(prefixes) or any(p.startswith(rel + "/") for p in prefixes)

    return keep


def image_from_tree(tree: Path, release: str, package: str, shares: tuple[str, ...],
                    arch: str = "x86_64") -> KernelImage:
    """The bootable parts of an extracted image, with the first share its modules allow."""
    vmlinuz = tree / "boot" / f"vmlinuz-{release}"
    if not vmlinuz.is_file():
        raise KernelUnavailable(f"{package} has no boot/vmlinuz-{release}")
    root = next((r for r in (tree / "lib" / "modules" / release,
                             tree / "usr" / "lib" / "modules" / release) if r.is_dir()), None)
    if root is None:
        raise KernelUnavailable(f"{package} has no lib/modules/{release}")
    builtin = _builtin(root)
    index = module_index(root)
    problems = []
    for share in shares:
        try:
            modules = load_order(index, SHARES[share], builtin)
        except KernelUnavailable as exc:
            problems.append(f"{share}: {exc.message}")
            continue
        return KernelImage(release, arch, package, vmlinuz, share, tuple(modules))
    # A share this host cannot offer is worth saying: it is often the one the kernel has.
    problems += [f"{share}: {UNOFFERED[share]}" for share in SHARES
                 if share not in shares and share in UNOFFERED]
    missing = "; ".join(problems) or "no way to share files with the VM on this host"
    raise KernelUnavailable(f"the VM could not see this machine's files: {missing}")


def _builtin(root: Path) -> set[str]:
    path = root / "modules.builtin"
    if not path.is_file():
        return set()
    return {module_name(line.strip()) for line in path.read_text().splitlines() if line.strip()}


def module_name(path: str) -> str:
    """`kernel/net/9p/9pnet_virtio.ko.xz` -> `9pnet_virtio` (the kernel says _ for -)."""
    name = path.rsplit("/", 1)[-1]
    for suffix in _MODULE_SUFFIXES:
        name = name.removesuffix(suffix)
    return name.replace("-", "_")


def module_index(root: Path) -> dict[str, KernelModule]:
    """Every module file under root, with the dependencies its .modinfo names."""
    out = {}
    for path in sorted(root.rglob("*.ko*")):
        if path.is_file() and path.name.endswith(_MODULE_SUFFIXES):
            out[module_name(path.name)] = KernelModule(module_name(path.name), path,
                                                       _depends(path))
    return out


def _depends(path: Path) -> tuple[str, ...]:
    try:
        elf = ELFFile(BytesIO(_decompressed(path.name, path.read_bytes())))
        section = elf.get_section_by_name(".modinfo")
    except (ELFError, OSError, lzma.LZMAError, zstandard.ZstdError) as exc:
        raise KernelUnavailable(f"{path.name}: not a readable kernel module: {exc}") from exc
    if section is None:
        return ()
    for entry in bytes(section.data()).split(b"\0"):
        if entry.startswith(b"depends="):
            names = entry[len(b"depends="):].decode("ascii", "replace")
            return tuple(n.replace("-", "_") for n in names.split(",") if n)
    return ()


def load_order(index: dict[str, KernelModule], wanted: tuple[str, ...],
               builtin: set[str]) -> list[KernelModule]:
    """`wanted` and everything they depend on, dependencies first; built-ins left out."""
    order: list[KernelModule] = []
    seen: set[str] = set()

    def visit(name: str, chain: tuple[str, ...]) -> None:
        if name in seen or name in builtin:
            return
        if name in chain:
            raise KernelUnavailable(f"kernel modules depend on each other in a circle: "
                                    f"{' -> '.join((*chain, name))}")
        module = index.get(name)
        if module is None:
            needed = f" (needed by {chain[-1]})" if chain else ""
            raise KernelUnavailable(f"the kernel has no module {name}{needed} and it is not "
                                    "built in")
        for dependency in module.depends:
            visit(dependency, (*chain, name))
        seen.add(name)
        order.append(module)

    for name in wanted:
        visit(name, ())
    return order


def _decompressed(name: str, data: bytes) -> bytes:
    try:
        if name.endswith(".xz"):
            return lzma.decompress(data)
        if name.endswith(".zst"):
            return _zstd(data)
        if name.endswith(".gz"):
            return gzip.decompress(data)
    except (lzma.LZMAError, zstandard.ZstdError, OSError, EOFError) as exc:
        raise KernelUnavailable(f"{name}: cannot decompress: {exc}") from exc
    return data


def _zstd(data: bytes) -> bytes:
    reader: Any = zstandard.ZstdDecompressor().stream_reader(BytesIO(data))
    with reader:
        return bytes(reader.read())

