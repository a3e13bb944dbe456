"""One sysroot per kernel: all its header packages extracted into one folder.

The sysroot is built in `<dest>.tmp-<pid>` and renamed into place, so a
refused package leaves nothing behind. A marker file inside it records the
packages (name, sha256, size) it was made from: asking again for the same
packages is a cache hit that extracts nothing; other packages rebuild it.

After extraction, wrapper Makefiles that name another package's folder by
absolute path (Debian's `include /usr/src/linux-headers-<x>-common/Makefile`,
and from Linux 7 also `KBUILD_OUTPUT=/usr/src/linux-headers-<x>-<flavor>`)
are pointed at the copy inside the sysroot, so `make -C <build_dir>` works
without the headers being installed on the host.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from builder.core.errors import InputError
from builder.core.files import atomic_write, swap_tree
from builder.core.records import check_kernel_release
from builder.shared.extract import ExtractReport, extract, resolve_inside
from builder.shared.fetch import sha256_file

MARKER = ".falco-probes-sysroot.json"
MARKER_FORMAT = 2  # 2: wrappers also get their KBUILD_OUTPUT made relative
_WRAPPER_MAX_BYTES = 4096  # a real kernel Makefile is ~70 KB; wrappers are a few lines
_ABSOLUTE_INCLUDE = re.compile(r"^(\s*-?include\s+)(/\S+)(\s*)$", re.MULTILINE)
_ABSOLUTE_ASSIGNMENT = re.compile(r"^(\s*[A-Za-z_][A-Za-z0-9_]*\s*[:?]?=\s*)(/\S+)(\s*)$",
                                  re.MULTILINE)
_HINT = ("a Debian kernel needs linux-headers-<abi>-<flavor>, linux-headers-<abi>-common "
         "and linux-kbuild-<major.minor>; an RPM kernel needs kernel-devel")


@dataclass(frozen=True, slots=True)
class Sysroot:
    """An extracted header tree; `build_dir` finds the kbuild folder in it."""

    root: Path
    packages: tuple[str, ...]                 # package file names, in extraction order
    reports: tuple[ExtractReport, ...] = ()   # empty when it came from the cache
    cached: bool = False
    fixed_makefiles: tuple[str, ...] = ()

    @property
    def extract_seconds(self) -> float:
        """Time spent extracting (0 on a cache hit): what bench/ reports."""
        return sum(report.seconds for report in self.reports)

    def build_dir(self, uname_r: str) -> Path:
        """The kbuild directory for `uname_r`, resolved inside the sysroot."""
        wrong = check_kernel_release(uname_r)
        if wrong:
            raise InputError(f"kernel release {uname_r!r}: {wrong}")
        candidates = (f"lib/modules/{uname_r}/build", f"usr/lib/modules/{uname_r}/build",
                      f"usr/src/linux-headers-{uname_r}", f"usr/src/kernels/{uname_r}")
        problems: dict[str, str] = {}  # one line per distinct folder the candidates reach
        for candidate in candidates:
            inside = resolve_inside(self.root, candidate)
            if inside is None or inside in problems or not (self.root / inside).is_dir():
                continue
            missing = _missing_parts(self.root, inside)
            if not missing:
                return self.root / inside
            problems[inside] = f"{inside} lacks {', '.join(missing)}"
        detail = f" ({'; '.join(problems.values())})" if problems else ""
        raise InputError(f"no kernel build directory for {uname_r} in "
                         f"{', '.join(self.packages)}{detail}", hint=_HINT)


def prepare_sysroot(packages: list[Path], dest: Path) -> Sysroot:
    """Extract `packages` (in order) into the sysroot `dest`, or reuse it."""
    if not packages:
        raise InputError(f"{dest}: no header packages given", hint=_HINT)
    for package in packages:
        if not package.is_file():
            raise InputError(f"header package {package}: no such file")
    names = tuple(package.name for package in packages)
    wanted = _describe(packages)
    marker = _read_marker(dest)
    if marker is not None and marker.get("packages") == wanted:
        fixed = marker.get("fixed_makefiles")
        return Sysroot(dest, names, cached=True,
                       fixed_makefiles=tuple(fixed) if isinstance(fixed, list) else ())
    tmp = dest.with_name(f"{dest.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)  # left by a crashed run with our pid
    try:
        reports = tuple(extract(package, tmp) for package in packages)
        fixed = _fix_absolute_includes(tmp)
        record = {"format": MARKER_FORMAT, "packages": wanted, "fixed_makefiles": fixed}
        atomic_write(tmp / MARKER, json.dumps(record, indent=1) + "\n")
        _install(tmp, dest, wanted)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return Sysroot(dest, names, reports, fixed_makefiles=tuple(fixed))


def _describe(packages: list[Path]) -> list[dict[str, object]]:
    return [{"name": p.name, "sha256": sha256_file(p), "size": p.stat().st_size}
            for p in packages]


def _read_marker(dest: Path) -> dict[str, object] | None:
    try:
        data = json.loads((dest / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("format") != MARKER_FORMAT:
        return None
    return data


def _install(tmp: Path, dest: Path, wanted: list[dict[str, object]]) -> None:
    """Swap the new tree in; one that a concurrent run installed from the same packages
    meanwhile is kept as is."""
    swap_tree(tmp, dest, theirs_will_do=lambda there: _marker_packages(there) == wanted)


def _marker_packages(dest: Path) -> object:
    marker = _read_marker(dest)
    return None if marker is None else marker.get("packages")


def _fix_absolute_includes(root: Path) -> list[str]:
    """Point `include /abs/path` lines of small wrapper Makefiles in usr/src/*
    at the same path inside the sysroot, when it is there."""
    fixed: list[str] = []
    source_dir = root / "usr" / "src"
    if not source_dir.is_dir():
        return fixed
    for makefile in sorted(source_dir.glob("*/Makefile")):
        if makefile.is_symlink() or makefile.parent.is_symlink() or not makefile.is_file():
            continue
        info = makefile.stat()
        if info.st_size > _WRAPPER_MAX_BYTES:
            continue
        text = makefile.read_text(encoding="utf-8", errors="surrogateescape")

        def relative(match: re.Match[str], here: Path = makefile.parent) -> str:
            target = match.group(2).lstrip("/")
            if resolve_inside(root, target) is None or not (root / target).exists():
                return match.group(0)
            return match.group(1) + os.path.relpath(root / target, here) + match.group(3)

        new_text = _ABSOLUTE_ASSIGNMENT.sub(relative, _ABSOLUTE_INCLUDE.sub(relative, text))
        if new_text != text:
            atomic_write(makefile, new_text.encode("utf-8", "surrogateescape"))
            os.chmod(makefile, info.st_mode & 0o777)
            os.utime(makefile, (info.st_atime, info.st_mtime))
            fixed.append(makefile.relative_to(root).as_posix())
    return fixed


def _missing_parts(root: Path, build: str) -> list[str]:
    """What a kbuild directory needs but this one lacks (all links stay inside root)."""
    here = root / build
    missing = [part for part in ("Makefile", ".config", "scripts/Makefile.build")
               if not (here / part).is_file()]
    makefile = here / "Makefile"
    if makefile.is_file() and makefile.stat().st_size <= _WRAPPER_MAX_BYTES:
        text = makefile.read_text(encoding="utf-8", errors="surrogateescape")
        for line in text.splitlines():
            match = re.match(r"\s*include\s+(\S+)\s*$", line)
            if match and "$" not in match.group(1):
                included = match.group(1)
                if included.startswith("/") or not (here / included).is_file():
                    missing.append(f"{included} (included by its Makefile)")
    return missing
