"""Compile one Falco eBPF probe with kbuild, reproducibly, and say exactly how.

`compile_probe` copies the prepared driver source into a fresh work folder and
runs `make -C <headers build dir> M=<work>/driver/bpf` with clang and llc, in a
process group that a timeout kills whole. A compile error is a result
(ok=False, step "compile", a one-line reason and the full log), never an
exception: one kernel's failure must not stop the others. Only what stops
every compile raises BuildError: a missing toolchain, a folder that is not a
kernel headers build folder, unusable work folders.

Reproducibility: the object's debug info and BTF record file names, so the
same source and headers built in two folders would differ. We pass
`-ffile-prefix-map` (debug info, BTF, __FILE__) for the work folder and the
kernel headers root through KCPPFLAGS, which kbuild appends to
KBUILD_CPPFLAGS and every Falco bpf Makefile since 0.26 passes to clang.
They map to /falco-probes/driver and /falco-probes/kernel. The environment is
reduced to a fixed minimum (locale, time zone, SOURCE_DATE_EPOCH) so nothing
from the caller's shell (MAKEFLAGS, ARCH, CROSS_COMPILE, ccache) leaks in.
kbuild writes nothing into the headers folder, so one sysroot serves
concurrent compiles.

Cross-building (an aarch64 kernel's probe on an x86_64 machine, from the
arm64 headers and the machine's own linux-kbuild): make gets ARCH=arm64 and
clang targets aarch64, or the arm64 inline assembly in the kernel headers
does not parse. The bpf Makefile's kernel feature probes (configure/*) run
make again through `env -i` with only PATH kept, so ARCH reaches them
through a `make` on PATH that adds it.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import platform
import re
import shlex
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

from builder.compile.driversrc import PreparedSource
from builder.core.errors import BuildError
from builder.core.files import atomic_write
from builder.core.records import HeaderPackage

CANONICAL_DRIVER = "/falco-probes/driver"
CANONICAL_KERNEL = "/falco-probes/kernel"
SOURCE_DATE_EPOCH = 1577836800  # 2020-01-01T00:00:00Z; clang >= 16 uses it for __DATE__
TOOLCHAIN_HINT = "install the toolchain: apt-get install clang llvm make libelf-dev"
PROBE_OBJECT = "probe.o"
KBUILD_ARCH = {"x86_64": "x86", "aarch64": "arm64"}
CLANG_TARGET = {"x86_64": "x86_64-linux-gnu", "aarch64": "aarch64-linux-gnu"}
_REASON_MAX = 300
_INCLUDE_RE = re.compile(r"^\s*-?include\s+([^$\s]+)\s*$", re.MULTILINE)


class ToolchainInfo(Protocol):
    """What a compile says about the programs it ran (the build report's `compiler`)."""

    def info(self) -> dict[str, str]: ...


ToolT = TypeVar("ToolT", bound=ToolchainInfo)


@dataclass(frozen=True, slots=True)
class Toolchain:
    """The programs a compile runs, as named to make, and their versions."""

    clang: str
    llc: str
    make: str
    clang_version: str    # first line of `clang --version`
    llc_version: str      # the "LLVM version" line of `llc --version`
    make_version: str     # first line of `make --version`

    @property
    def clang_release(self) -> str:
        """`14.0.6` from `Debian clang version 14.0.6`, `19.1.7` from `... 19.1.7 (3+b1)`."""
        return version_number(self.clang_version, "clang version")

    def info(self) -> dict[str, str]:
        return {"clang": self.clang_version, "llc": self.llc_version, "make": self.make_version}


def version_number(line: str, after: str) -> str:
    """The dotted version that follows `after` in a tool's --version line ("" if none)."""
    found = re.search(re.escape(after) + r"\s+(\d+(?:\.\d+)+)", line)
    return found.group(1) if found else ""


@dataclass(frozen=True, slots=True)
class CompileResult(Generic[ToolT]):
    """One compile: the probe (or module) or why not, and everything needed to do it again."""

    ok: bool
    probe: Path | None
    duration: float
    command: tuple[str, ...]           # exactly what ran
    canonical_command: str             # the same, with canonical folders, as shell words
    toolchain: ToolT
    log: str                           # full make/clang/llc output, canonical folders
    step: str = ""                     # "compile" when ok is False
    reason: str = ""                   # one line: the compiler's first error, or the timeout
    category: str = ""                 # records.FAILURE_CATEGORIES, from the log
    timed_out: bool = False
    sha256: str = ""
    size: int = 0
    driver_version: str = ""
    driver_ref: str = ""
    source_digest: str = ""
    source_provider: str = ""
    headers: tuple[HeaderPackage, ...] = ()
    kernel_dir: str = ""               # canonical headers build dir passed to make -C
    source_date_epoch: int = SOURCE_DATE_EPOCH
    environment: tuple[tuple[str, str], ...] = ()  # what the build ran with, but PATH
    notes: tuple[tuple[str, str], ...] = ()        # more of how it was built (configure flags)
    interface: Mapping[str, Any] = field(default_factory=dict)  # a module's, kmodiface.py

    def compiler_info(self) -> dict[str, str]:
        """The toolchain and the exact command, for the build report's `compiler`."""
        return {**self.toolchain.info(), "command": self.canonical_command,
                "kernel_dir": self.kernel_dir,
                "environment": " ".join(f"{k}={v}" for k, v in self.environment),
                **dict(self.notes)}

    def report_fields(self) -> dict[str, Any]:
        """The BuildResult (builder.core.report) fields this compile knows, ready for **kwargs."""
        fields: dict[str, Any] = {
            "ok": self.ok, "sha256": self.sha256, "size": self.size,
            "driver_ref": self.driver_ref, "driver_source_sha256": self.source_digest,
            "compiler": self.compiler_info(),
            "headers": tuple({"name": h.name, "sha256": h.sha256} for h in self.headers),
            "duration": round(self.duration, 3),
        }
        if self.interface:
            fields["interface"] = dict(self.interface)
        if not self.ok:
            fields.update(step=self.step, reason=self.reason, category=self.category)
        return fields


def find_toolchain(clang: str = "clang", llc: str = "llc", make: str = "make") -> Toolchain:
    """Locate clang, llc and make and read their versions; BuildError if one is missing."""
    path = os.environ.get("PATH", os.defpath)
    return _toolchain(clang, llc, make, path)


@functools.lru_cache(maxsize=16)
def _toolchain(clang: str, llc: str, make: str, path: str) -> Toolchain:
    found = {name: shutil.which(name, path=path) for name in (clang, llc, make)}
    missing = [name for name, where in found.items() if where is None]
    if missing:
        raise BuildError(f"{', '.join(missing)} not found on PATH", hint=TOOLCHAIN_HINT)
    llc_lines = _version_lines(llc)
    llc_version = next((line for line in llc_lines if "LLVM version" in line),
                       llc_lines[0] if llc_lines else "")
    return Toolchain(clang, llc, make, _first(_version_lines(clang)), llc_version,
                     _first(_version_lines(make)))


def _version_lines(program: str) -> list[str]:
    try:
        done = subprocess.run([program, "--version"], capture_output=True, text=True,
                              timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise BuildError(f"{program} --version failed: {exc}", hint=TOOLCHAIN_HINT) from exc
    return [line.strip() for line in done.stdout.splitlines() if line.strip()]


def _first(lines: list[str]) -> str:
    return lines[0] if lines else ""


def kernel_root_of(build_dir: Path) -> Path:
    """The folder holding everything the headers build dir refers to.

    Debian's build dir includes the -common headers' Makefile (make reads a
    relative include from the -C folder) and links scripts/ and tools/ into
    linux-kbuild; their common ancestor (the sysroot's usr/) is what we map to
    the canonical kernel folder.
    """
    build = build_dir.resolve()
    places = [build]
    for entry in build.iterdir():
        if entry.is_symlink() and entry.exists():
            places.append(entry.resolve())
    makefile = build / "Makefile"
    if makefile.is_file():
        for match in _INCLUDE_RE.finditer(makefile.read_text(errors="replace")):
            included = build / match.group(1)
            if included.exists():
                places.append(included.resolve().parent)
    root = Path(os.path.commonpath(places))
    return build if root == Path(root.anchor) else root


def compile_probe(build_dir: Path, source: PreparedSource, out_dir: Path, *, timeout: float,
                  clang: str = "clang", llc: str = "llc", jobs: int = 1,
                  headers: Sequence[HeaderPackage] = (), kernel_root: Path | None = None,
                  work_root: Path | None = None, keep_work: bool = False,
                  arch: str | None = None) -> CompileResult[Toolchain]:
    """Compile `source` against the headers in `build_dir`; the probe lands in out_dir/probe.o.

    `headers` (the packages the sysroot came from, with digests) and the
    source's ref and digest are recorded in the result for the build report.
    `kernel_root` defaults to kernel_root_of(build_dir). `arch` is the kernel's
    (`uname -m`); another than this machine's cross-builds.
    """
    toolchain = find_toolchain(clang, llc)
    build = build_dir.resolve()
    if not (build / "Makefile").is_file():
        raise BuildError(f"{build_dir}: no Makefile, not a kernel headers build folder",
                         hint="pass the folder that `make -C` needs (lib/modules/<uname -r>/build)")
    root = (kernel_root or kernel_root_of(build)).resolve()
    work = Path(tempfile.mkdtemp(prefix="falco-probe-", dir=work_root)).resolve()
    try:
        check_folders(work, root)
        copy_tree(source.driver_dir, work / "driver")
        bpf = work / "driver" / source.bpf_dir.relative_to(source.driver_dir)
        maps = {work / "driver": CANONICAL_DRIVER, root: CANONICAL_KERNEL}
        cross = _cross_arch(arch)
        command = _make_command(toolchain, build, bpf, maps, jobs, cross)
        env = environment(_cross_bin(work, toolchain, cross) if cross else None)
        started = time.monotonic()
        returncode, output, timed_out = run_killable(command, work, env, timeout)
        duration = time.monotonic() - started
        base: CompileResult[Toolchain] = CompileResult(
            False, None, duration, tuple(command), canonical(shlex.join(command), maps),
            toolchain, canonical(output, maps), driver_version=source.driver_version,
            driver_ref=source.ref, source_digest=source.digest, source_provider=source.provider,
            headers=tuple(headers), kernel_dir=canonical(str(build), maps),
            environment=tuple(sorted((k, v) for k, v in env.items() if k != "PATH")))
        built = bpf / PROBE_OBJECT
        if timed_out:
            return replace(base, step="compile", timed_out=True, category="timeout",
                           reason=f"timed out after {timeout:g} s")
        if returncode != 0 or not built.is_file():
            return replace(base, step="compile", reason=failure_reason(base.log, returncode),
                           category=failure_category(base.log))
        probe, digest, size = deliver(built, out_dir)
        return replace(base, ok=True, probe=probe, sha256=digest, size=size)
    finally:
        if not keep_work:
            shutil.rmtree(work, ignore_errors=True)


def check_folders(work: Path, root: Path) -> None:
    # clang 14 applies the first matching prefix map in sorted order, so nested
    # folders would be mapped by the shorter prefix; make splits flags on blanks.
    if work.is_relative_to(root) or root.is_relative_to(work):
        raise BuildError(f"work folder {work} and kernel headers {root} are nested",
                         hint="put the work folder (--work-dir) outside the sysroot")
    for folder in (work, root):
        if re.search(r"\s", str(folder)):
            raise BuildError(f"{folder}: folder names with blanks break kbuild flags",
                             hint="use a cache or work folder whose path has no spaces")


def _cross_arch(arch: str | None) -> str | None:
    """The kernel arch when it is not this machine's (a cross-build), else None."""
    if arch is None or arch == platform.machine():
        return None
    if arch not in KBUILD_ARCH:
        raise BuildError(f"cannot build probes for {arch!r}", hint="x86_64 or aarch64")
    return arch


def _make_command(toolchain: Toolchain, build: Path, bpf: Path, maps: dict[Path, str],
                  jobs: int, cross: str | None = None) -> list[str]:
    prefix_maps = " ".join(f"-ffile-prefix-map={real}={canonical}"
                           for real, canonical in maps.items())
    clang = toolchain.clang
    extra = []
    if cross is not None:
        clang = f"{clang} --target={CLANG_TARGET[cross]}"
        extra = [f"ARCH={KBUILD_ARCH[cross]}"]
    return [toolchain.make, "-C", str(build), f"M={bpf}", f"-j{max(1, jobs)}", *extra,
            f"CLANG={clang}", f"LLC={toolchain.llc}", f"KCPPFLAGS={prefix_maps}"]


def _cross_bin(work: Path, toolchain: Toolchain, cross: str) -> Path:
    """A folder with a `make` that adds ARCH: the feature probes' `env -i` keeps only PATH."""
    real = shutil.which(toolchain.make)
    folder = work / ".cross-bin"
    folder.mkdir()
    wrapper = folder / "make"
    wrapper.write_text(f'#!/bin/sh\nexec {shlex.quote(str(real))} ARCH={KBUILD_ARCH[cross]} "$@"\n')
    wrapper.chmod(0o755)
    return folder


def environment(first_on_path: Path | None = None) -> dict[str, str]:
    path = os.environ.get("PATH", os.defpath)
    return {
        "PATH": f"{first_on_path}:{path}" if first_on_path else path,
        "HOME": "/nonexistent",
        "LC_ALL": "C",
        "TZ": "UTC",
        "SOURCE_DATE_EPOCH": str(SOURCE_DATE_EPOCH),
    }


def run_killable(command: list[str], cwd: Path, env: dict[str, str],
         timeout: float) -> tuple[int, str, bool]:
    """Run in a new session; on timeout (or interrupt) kill the whole process group."""
    proc = subprocess.Popen(command, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=timeout)
        return proc.returncode, out.decode("utf-8", "replace"), False
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        try:
            out, _ = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:  # a straggler kept the pipe open
            out = b""
        return proc.returncode if proc.returncode is not None else -9, \
            out.decode("utf-8", "replace"), True
    except BaseException:
        _kill_group(proc)
        proc.wait()
        raise


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


def copy_tree(src: Path, dest: Path) -> None:
    """Copy regular files with fresh, writable modes (the prepared source is read-only)."""
    for folder, dirs, files in os.walk(src):
        rel = Path(folder).relative_to(src)
        (dest / rel).mkdir(parents=True, exist_ok=True)
        dirs.sort()
        for name in files:
            shutil.copyfile(Path(folder) / name, dest / rel / name)


def canonical(text: str, maps: dict[Path, str]) -> str:
    for real, canonical in sorted(maps.items(), key=lambda item: -len(str(item[0]))):
        text = text.replace(str(real), canonical)
    return text


# `file:line:col: error: message`, as clang prints it.
_DIAGNOSTIC = re.compile(r"^(?P<file>[^\s:]+):\d+:\d+: (?:fatal )?error: (?P<message>.*)$")
_NOT_FOUND = re.compile(r"'(?P<name>[^']+)' file not found")
# Lines that say "error:" but are not the failure: the bpf Makefile greps a header
# that split header packages keep elsewhere (DESIGN.md section 5), and the kernel
# feature probes (configure/*, from 7.2.0) fail on purpose where a feature is absent.
_NOISE = ("expr:", "[configure-bpf]")
_FEATURE_PROBE = "/configure/"
_TOOLCHAIN_IN_HEADERS = re.compile(r"\basm\b|constraint|target|register|builtin|attribute")
_TOOLCHAIN = ("LLVM ERROR", "PLEASE submit a bug report", "clang: error: unable to execute",
              "command not found", "Killed signal", "Build system is broken",
              "error: unknown target", "error: unable to create target")


def _first_error(lines: list[str]) -> str | None:
    for line in lines:
        found = _DIAGNOSTIC.match(line.strip())
        if found is not None and _FEATURE_PROBE not in found.group("file"):
            return line
    return next((x for x in lines if "error:" in x and not x.strip().startswith(_NOISE)
                 and _FEATURE_PROBE not in x), None)


def failure_reason(log: str, returncode: int) -> str:
    """One line a person can act on: the compiler's first error, never a harmless warning."""
    lines = log.splitlines()
    line = _first_error(lines) \
        or next((x for x in lines if any(m in x for m in _TOOLCHAIN)), None) \
        or next((x for x in lines if "***" in x), None) \
        or (f"make exited with status {returncode}" if returncode
            else f"make succeeded but produced no {PROBE_OBJECT}")
    return shorten(line.strip(), _REASON_MAX)


def shorten(text: str, limit: int) -> str:
    """At most `limit` characters, cut between words, saying where the rest is."""
    if len(text) <= limit:
        return text
    tail = " … (see the log)"
    cut = text[: limit - len(tail)]
    if " " in cut:
        cut = cut[: cut.rindex(" ")]
    return cut.rstrip(" ,;:") + tail


def failure_category(log: str) -> str:
    """Why a compile failed (records.FAILURE_CATEGORIES), from its log."""
    lines = log.splitlines()
    if any(marker in line for line in lines for marker in _TOOLCHAIN):
        return "toolchain"
    first = _first_error(lines)
    diagnostic = _DIAGNOSTIC.match(first.strip()) if first else None
    if diagnostic is None:
        if any("No rule to make target" in line and CANONICAL_DRIVER in line for line in lines):
            return "source-layout"
        return "unknown"
    in_driver = diagnostic.group("file").startswith(CANONICAL_DRIVER)
    missing = _NOT_FOUND.search(diagnostic.group("message"))
    if missing is not None and in_driver:
        # a driver header missing is how the source was laid out; a kernel header
        # missing is an API this kernel does not have
        return "unsupported-kernel" if "/" in missing.group("name") else "source-layout"
    if in_driver:
        return "unsupported-kernel"
    # An error inside the kernel headers: the compiler cannot take them (inline assembly,
    # a target it lacks), or the driver source predates what they expect of it (an old
    # source without KBUILD_MODNAME on 5.10, say).
    message = diagnostic.group("message")
    return "toolchain" if _TOOLCHAIN_IN_HEADERS.search(message) else "unsupported-kernel"


def deliver(built: Path, out_dir: Path, name: str = PROBE_OBJECT) -> tuple[Path, str, int]:
    """Copy the probe (or module) to out_dir/name atomically; return its path, sha256, size."""
    target = out_dir / name
    data = built.read_bytes()
    atomic_write(target, data)
    return target, hashlib.sha256(data).hexdigest(), len(data)
