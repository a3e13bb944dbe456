"""The user space of a guest of another architecture: Debian's own Python, of that architecture.

The load-test guest runs our loader (guest.py) on Python. A guest of this machine's
architecture chroots into this machine's root and runs this machine's Python; an arm64
guest on an x86_64 machine cannot run one program of this machine's. It chroots into a root
made of Debian's own packages of its architecture instead (initramfs.py), with this
machine's root at /host, where this package, pyelftools and the probes are.

The root holds the fewest packages the loader needs: the interpreter
(`python3.N-minimal`, `libpython3.N-minimal`), its standard library
(`libpython3.N-stdlib`: ctypes, mmap, resource), the C libraries those link (`libc6`,
`zlib1g`, `libexpat1`, `libffi8`) and `busybox-static` for the initramfs's /init. Each is
found through apt (the archive's signed indices give its URL, sha256 and size), downloaded
into the shared download cache and hash-checked like the headers and kernel images, and
extracted safely (extract.py). Then:

- documentation, locales and time zones are dropped;
- the mount points the guest needs are made (a read-only share cannot make them);
- the standard library is byte-compiled here when this machine's Python has the same minor
  version (a .pyc is the same on every architecture; the root is read-only in the guest,
  which would otherwise compile what it imports, under emulation, at every boot);
- the libraries that the interpreter and the extension modules the loader imports need
  (their DT_NEEDED entries, and the interpreter's dynamic loader) must be in the root, so
  a library Debian renames fails here, named, rather than in the VM;
- the busybox must be static and of the guest's architecture.

The root is built in a staging folder and moved into place with one rename, as
`<cache>/guestroot/<key>/`, the key a digest of FORMAT and of each package's file name
(name, version, architecture) and sha256: new packages, a new root; the same packages,
the same root on any machine. Its `PACKAGES` file lists them.

Every package comes from one Debian release, this machine's own (`guest_suites`: its
codename with `-updates` and `-security`), whatever suites the targets read: the newest of
each package across bullseye, bookworm and trixie put bookworm's Python on trixie's libc6
and busybox-static, a root that cannot start (measured with the repository's probes.yaml:
no /lib/ld-linux-aarch64.so.1, no static busybox at /bin: trixie ships them under /usr
and leaves the /lib and /bin links to other packages). Python 3.N is the archive's of this
machine's minor version when it has one (the guest then runs the interpreter version
tested here, and this machine's .pyc files of this package fit), else the newest it has;
the loader needs 3.11 or newer.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from elftools.common.exceptions import ELFError
from elftools.elf.dynamic import DynamicSection
from elftools.elf.elffile import ELFFile
from elftools.elf.segments import InterpSegment

from builder.core import limits
from builder.core.errors import ProbesError
from builder.core.files import remove_tree, swap_tree
from builder.core.naming import parse_os_release
from builder.core.records import HeaderPackage
from builder.loadtest.initramfs import is_static_for
from builder.shared.apt import AptArchive
from builder.shared.extract import extract
from builder.shared.fetch import Cache

log = logging.getLogger(__name__)

FORMAT = "guestroot-1"      # change it when what is done to the packages below changes
HOST_AT = "/host"           # where this machine's root is mounted inside the guest's root
PACKAGES_FILE = "PACKAGES"  # written last: a root without it was never finished
PYTHON = re.compile(r"python3\.(\d+)-minimal")
PYTHON_OR_LIBPYTHON = re.compile(r"(lib)?python3\.\d+-(minimal|stdlib)")
PYTHON_PACKAGES = ("python3.{minor}-minimal", "libpython3.{minor}-minimal",
                   "libpython3.{minor}-stdlib")
LIBRARIES = ("libc6", "zlib1g", "libexpat1", "libffi8", "busybox-static")
OLDEST_MINOR = 11           # the loader's floor, as this package's
SUITE_NAME = re.compile(r"[a-z]{2,20}")  # a Debian codename: bookworm, trixie
# The extension modules the guest imports (guest.py, loader, bpf, events and pyelftools,
# listed with `python -X importtime -m builder.loadtest.guest`); built-in ones have no file.
EXTENSIONS = ("_ctypes", "_json", "_typing", "mmap", "resource")
TRIM = ("usr/share/doc", "usr/share/man", "usr/share/locale", "usr/share/lintian",
        "usr/share/info", "usr/share/zoneinfo", "usr/lib/{triplet}/gconv")
MOUNT_POINTS = ("proc", "sys", "dev", "tmp", HOST_AT.strip("/"))
BUSYBOX = "bin/busybox"
TRIPLETS = {"x86_64": "x86_64-linux-gnu", "aarch64": "aarch64-linux-gnu"}
# Not worth byte-compiling: what the loader never imports, and tests with Python 2 syntax.
NOT_COMPILED = r"(lib2to3/tests|/test/|idlelib|tkinter|turtledemo|ensurepip)"


class GuestRootUnavailable(ProbesError):
    """No root for the guest's architecture: its probes are `not_tested` with this reason."""


@dataclass(frozen=True, slots=True)
class GuestRoot:
    path: Path              # the root on this machine, shared read-only with the guest
    key: str
    python: str             # the interpreter, as the guest sees it: /usr/bin/python3.11
    packages: tuple[str, ...]   # "<file name> <sha256>", what it was made of

    @property
    def busybox(self) -> Path:
        return self.path / BUSYBOX


def python_minor(offered: set[int], host_minor: int) -> int:
    """The Python 3 minor version the guest runs: this machine's when the archive has it,
    else the archive's newest; GuestRootUnavailable when that is older than the floor."""
    if host_minor in offered:
        return host_minor
    newest = max(offered, default=0)
    if newest < OLDEST_MINOR:
        have = ", ".join(f"3.{m}" for m in sorted(offered)) or "none"
        raise GuestRootUnavailable(f"the archive's Python for the guest is too old (it has: "
                                   f"{have}); the loader needs 3.{OLDEST_MINOR} or newer",
                                   hint="read the guest's packages from a newer suite "
                                        "(--suite)")
    return newest


def root_packages(found: dict[str, HeaderPackage], arch: str,
                  host_minor: int = sys.version_info.minor) -> tuple[int, list[HeaderPackage]]:
    """The Python version and the packages of the root, from what the archive offers."""
    offered = {int(m[1]) for name in found if (m := PYTHON.fullmatch(name))
               and all(p.format(minor=m[1]) in found for p in PYTHON_PACKAGES)}
    minor = python_minor(offered, host_minor)
    names = [p.format(minor=minor) for p in PYTHON_PACKAGES] + list(LIBRARIES)
    missing = [name for name in names if name not in found]
    if missing:
        raise GuestRootUnavailable(f"the archive has no {arch} package {', '.join(missing)} "
                                   "(the guest's user space needs it)",
                                   hint="check the suites the load test reads (--suite)")
    return minor, [found[name] for name in names]


def guest_suites(os_release: Path = Path("/etc/os-release")) -> tuple[str, ...]:
    """The suites of this machine's own Debian release (`bookworm`, its `-updates` and
    `-security`): a root whose packages all come from one release fits together, and
    its Python is this machine's minor version. () when this is not a Debian release
    (sid, another distribution): then the load test's own suites are read."""
    try:
        fields = parse_os_release(os_release.read_text(encoding="utf-8", errors="replace"))
    except OSError:
        return ()
    codename = fields.get("VERSION_CODENAME", "")
    if fields.get("ID") != "debian" or not SUITE_NAME.fullmatch(codename) or \
            not fields.get("VERSION_ID"):
        return ()
    return (codename, f"{codename}-updates", f"{codename}-security")


def root_key(packages: Sequence[HeaderPackage]) -> tuple[str, tuple[str, ...]]:
    """The cache key of a root made of `packages`, and its PACKAGES lines."""
    lines = tuple(sorted(f"{p.name} {p.sha256}" for p in packages))
    digest = hashlib.sha256("\n".join((FORMAT, *lines)).encode()).hexdigest()
    return digest[:20], lines


def guest_root(arch: str, apt: AptArchive, downloads: Cache, cache: Path) -> GuestRoot:
    """The root of `arch` made of the archive's newest packages, built once into `cache`."""
    found = apt.newest(lambda name: name in LIBRARIES or
                       PYTHON_OR_LIBPYTHON.fullmatch(name) is not None)
    minor, packages = root_packages(found, arch)
    key, lines = root_key(packages)
    dest = cache / key
    if not (dest / PACKAGES_FILE).is_file():
        started = time.monotonic()
        debs = [downloads.fetch(p.url, limit=limits.KERNEL_IMAGE, sha256=p.sha256, size=p.size)
                for p in packages]
        build_root(debs, dest, arch, minor, lines)
        log.info(f"guest root: {arch} Python 3.{minor} from {len(debs)} packages "
                 f"({sum(p.size for p in packages) / 1e6:.1f} MB) in "
                 f"{time.monotonic() - started:.1f} s: {dest}")
    return GuestRoot(dest, key, f"/usr/bin/python3.{minor}", lines)


def build_root(debs: Sequence[Path], dest: Path, arch: str, minor: int,
               lines: Sequence[str]) -> None:
    """Extract, trim, check and byte-compile the root in a staging folder, then move it to
    `dest` with one rename (another process's finished root there is kept instead)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    try:
        tree = staging / "root"
        for deb in debs:
            extract(deb, tree, kind="deb")
        for rel in TRIM:
            shutil.rmtree(tree / rel.format(triplet=TRIPLETS.get(arch, "")),
                          ignore_errors=True)
        for rel in MOUNT_POINTS:
            (tree / rel).mkdir(exist_ok=True)
        problems = root_problems(tree, arch, minor)
        if problems:
            names = ", ".join(line.split()[0] for line in lines)
            raise GuestRootUnavailable(f"the {arch} guest root made of {names} is not usable: "
                                       f"{'; '.join(problems)}")
        if minor == sys.version_info.minor:
            _byte_compile(tree, minor)
        (tree / PACKAGES_FILE).write_text("\n".join(lines) + "\n", encoding="utf-8")
        os.chmod(tree, 0o755)  # noqa: S103 - a tree the guest reads
        swap_tree(tree, dest, theirs_will_do=lambda d: (d / PACKAGES_FILE).is_file())
    finally:
        remove_tree(staging)


def root_problems(tree: Path, arch: str, minor: int) -> list[str]:
    """What the guest would miss in `tree`: libraries, the dynamic loader, a static busybox
    of its architecture."""
    problems = []
    if not is_static_for(tree / BUSYBOX, arch):
        problems.append(f"/{BUSYBOX} is not a static {arch} program")
    python = f"usr/bin/python3.{minor}"
    dynload = f"usr/lib/python3.{minor}/lib-dynload"
    triplet = TRIPLETS.get(arch, f"{arch}-linux-gnu")
    binaries = [python] + [f"{dynload}/{name}.cpython-3{minor}-{triplet}.so"
                           for name in EXTENSIONS]
    folders = [tree / "lib" / triplet, tree / "usr" / "lib" / triplet, tree / "lib",
               tree / "usr" / "lib"]
    for rel in binaries:
        if rel != python and not os.path.lexists(tree / rel):
            continue  # built into this interpreter
        try:
            interpreter, needed = _dynamic(tree / rel)
        except (ELFError, OSError) as exc:
            problems.append(f"/{rel}: not a readable program: {exc}")
            continue
        if interpreter and not _inside_exists(tree, interpreter):
            problems.append(f"/{rel} needs the dynamic loader {interpreter}, which is missing")
        problems += [f"/{rel} needs {library}, which is missing" for library in needed
                     if not any(_inside_exists(tree, str(f.relative_to(tree) / library))
                                for f in folders)]
    return problems


def _dynamic(path: Path) -> tuple[str, list[str]]:
    """A program's dynamic loader (PT_INTERP) and the libraries it needs (DT_NEEDED)."""
    with path.open("rb") as stream:
        elf = ELFFile(stream)
        interpreter = next((s.get_interp_name() for s in elf.iter_segments()
                            if isinstance(s, InterpSegment)), "")
        # pyelftools sets a DT_NEEDED tag's library name as the attribute `needed`
        needed = [str(vars(tag)["needed"]) for section in elf.iter_sections()
                  if isinstance(section, DynamicSection)
                  for tag in section.iter_tags() if tag.entry.d_tag == "DT_NEEDED"]
    return interpreter, needed


def _inside_exists(tree: Path, path: str) -> bool:
    """Whether `path` (absolute as the guest sees it, or relative to the root) exists in
    `tree`, following its links as the guest would: an absolute link target is read
    inside the root, never on this machine."""
    current = tree
    parts = [p for p in path.split("/") if p]
    hops = 0
    while parts:
        part = parts.pop(0)
        candidate = current / part
        if candidate.is_symlink():
            hops += 1
            if hops > 40:
                return False
            target = os.readlink(candidate)
            parts = [p for p in target.split("/") if p] + parts
            current = tree if target.startswith("/") else current
            continue
        if part == "..":
            current = current.parent if current != tree else tree
            continue
        if not candidate.exists():
            return False
        current = candidate
    return True


def _byte_compile(tree: Path, minor: int) -> None:
    """The standard library's .pyc files, made here with this machine's Python of the same
    version, stamped with the guest's paths (-s/-p). Only an optimisation: a file it cannot
    compile is compiled (in memory) by the guest when imported."""
    done = subprocess.run([sys.executable, "-m", "compileall", "-q", "-j", "0",
                           "-s", str(tree), "-p", "/", "-x", NOT_COMPILED,
                           str(tree / "usr" / "lib" / f"python3.{minor}")],
                          stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          check=False, timeout=600)
    if done.returncode != 0:
        log.info(f"guest root: some of the standard library was not byte-compiled: "
                 f"{(done.stdout + done.stderr).strip()[-300:]}")
