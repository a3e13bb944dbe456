"""Compile Falco's kernel module (falco.ko) as its kernel was built, and say exactly how.

The compiler is the kernel's own: the gcc major version its headers name, never a guess.
Debian builds out-of-tree modules with the gcc that built the kernel (the headers
package depends on it, `.kernelvariables` sets `CC = $(CROSS_COMPILE)gcc-N`; a major
version change can change the ABI), and `CONFIG_CC_VERSION_TEXT` in the flavour
package's `.config` names it: `gcc-12 (Debian 12.2.0-14+deb12u1) 12.2.0` for Debian 12's
6.1, `x86_64-linux-gnu-gcc-14 (Debian 14.2.0-19) 14.2.0` for Debian 13's 6.12. Another
major fails (gcc-12 does not know gcc-14's `-fmin-function-alignment`) or, worse, builds
something subtly different, which Debian's DEBIAN_KERNEL_NO_CC_VERSION_CHECK hides.
So a kernel whose compiler this machine lacks is a `toolchain` failure naming it and
how to get it, and so is a kernel whose kbuild programs (modpost, fixdep, from its
linux-kbuild package) need a newer C library than this machine's: Debian 13's need
glibc 2.38, Debian 12 has 2.36. A 6.12 kernel's headers ship `vmlinux`, so kbuild makes
the module's BTF with `pahole`, which must be installed too.

The build is upstream's own entry point on a writable copy of the prepared folder
(driversrc.py): `make -C <copy> KERNELDIR=<headers> CC=<the kernel's gcc> -j2`, whose
`all` runs `make -C $(KERNELDIR) M=<copy> modules`. KERNELDIR on the command line also
reaches the configure checks (7.1.0+driver), each a little module built at parse time;
7.1.0 to 8.0.0 would otherwise take it from $(CURDIR), wrong from Linux 6.13. Cross
builds (an arm64 kernel on x86_64) add ARCH=arm64 CROSS_COMPILE=aarch64-linux-gnu- and
the aarch64 gcc of the same major; the configure checks run make through `env -i`,
which drops both, so a `make` first on PATH adds them back (else they link with this
machine's x86 `ld`: "unrecognised emulation mode: aarch64linux").

The module is then stripped of its debug information (`strip -g`, as Falco's own
driverkit does): what remains is path-independent, and a third of the size. The same
-ffile-prefix-map folders as the eBPF build keep the log canonical.
"""

from __future__ import annotations

import functools
import os
import platform
import re
import shlex
import shutil
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from elftools.common.exceptions import ELFError
from elftools.elf.elffile import ELFFile
from elftools.elf.gnuversions import GNUVerNeedSection

from builder.compile.driversrc import PreparedSource
from builder.compile.kbuild import (
    CANONICAL_DRIVER,
    CANONICAL_KERNEL,
    KBUILD_ARCH,
    CompileResult,
    canonical,
    check_folders,
    copy_tree,
    deliver,
    environment,
    failure_category,
    failure_reason,
    kernel_root_of,
    run_killable,
    shorten,
)
from builder.compile.kmodiface import device_interface
from builder.core.errors import BuildError
from builder.core.records import HeaderPackage

MODULE_OBJECT = "falco.ko"
CROSS_PREFIX = {"x86_64": "x86_64-linux-gnu-", "aarch64": "aarch64-linux-gnu-"}
DEBIAN_ARCH = {"x86_64": "amd64", "aarch64": "arm64"}
# The binutils a cross build's configure checks must find under their plain names.
CROSS_TOOLS = ("ld", "ar", "nm", "objcopy", "objdump", "readelf", "strip", "as")
# Where kbuild's host programs live in the headers: what must run on this machine.
KBUILD_PROGRAMS = ("scripts/basic/fixdep", "scripts/mod/modpost")
MAKE_HINT = "install make: apt-get install make"
_CC_TEXT = re.compile(r'^CONFIG_CC_VERSION_TEXT="([^"\n]*)"', re.MULTILINE)
_CC_VARIABLE = re.compile(r"^CC\s*[:?]?=.*?\)?((?:[a-z0-9_]+-linux-gnu-)?gcc(?:-(\d+))?)\s*$",
                          re.MULTILINE)
_GCC_WORD = re.compile(r"((?:[a-z0-9_]+-linux-gnu-)?gcc)(?:-(\d+))?")
_GCC_RELEASE = re.compile(r"\)\s+(\d+)\.\d+(?:\.\d+)?")
_GLIBC = re.compile(r"GLIBC_(\d+)\.(\d+)")
_SETTING = re.compile(r"\[configure-kmod\] Setting (HAS_\w+) flag")
# Lines that say "error" but are not the failure: the configure checks fail on purpose
# where a kernel lacks a feature, and print their build logs prefixed so.
_NOISE = "[configure-kmod]"
_BROKEN = "The build system is broken"


@dataclass(frozen=True, slots=True)
class KernelCompiler:
    """The compiler a kernel was built with, as its headers say."""

    name: str        # the program as the kernel named it: gcc-12, x86_64-linux-gnu-gcc-14
    major: int       # its major version (0: unknown)
    text: str        # CONFIG_CC_VERSION_TEXT, or the .kernelvariables line
    where: str       # which file said so

    @property
    def plain(self) -> str:
        """gcc-N without a triplet: the Debian package that provides it."""
        return f"gcc-{self.major}" if self.major else "gcc"


@dataclass(frozen=True, slots=True)
class GccToolchain:
    """What a module compile runs: the kernel's gcc on this machine, make and strip."""

    gcc: str                  # the program run, e.g. gcc-12 or aarch64-linux-gnu-gcc-12
    gcc_version: str          # first line of its --version ("" when it is missing)
    kernel_compiler: str      # CONFIG_CC_VERSION_TEXT: what the kernel was built with
    make: str = "make"
    make_version: str = ""
    strip: str = "strip"

    def info(self) -> dict[str, str]:
        return {"gcc": self.gcc_version, "kernel_compiler": self.kernel_compiler,
                "make": self.make_version}


class ToolchainMissing(Exception):
    """This machine cannot build for that kernel; the message says what it needs."""


def kernel_compiler(build_dir: Path) -> KernelCompiler:
    """The kernel's compiler from its headers' `.config`, else `.kernelvariables`;
    ToolchainMissing when neither names a gcc (a kernel built with clang, say)."""
    config = _read(build_dir / ".config")
    text = _CC_TEXT.search(config)
    if text is not None:
        return from_version_text(text.group(1), ".config")
    found = _CC_VARIABLE.search(_read(build_dir / ".kernelvariables"))
    if found is not None:
        major = int(found.group(2)) if found.group(2) else 0
        return KernelCompiler(found.group(1), major, found.group(0).strip(), ".kernelvariables")
    raise ToolchainMissing(f"the headers in {build_dir.name} do not say which compiler built "
                           "the kernel (no CONFIG_CC_VERSION_TEXT in .config, no CC in "
                           ".kernelvariables)")


def from_version_text(text: str, where: str) -> KernelCompiler:
    """`gcc-12 (Debian 12.2.0-14+deb12u1) 12.2.0` -> gcc-12, major 12."""
    word = text.split(" ", 1)[0]
    found = _GCC_WORD.fullmatch(word)
    if found is None:
        raise ToolchainMissing(f"the kernel was built with {text!r} ({where}), not gcc: "
                               "falco-probes builds modules with gcc only")
    release = _GCC_RELEASE.search(text)
    major = int(found.group(2)) if found.group(2) else int(release.group(1)) if release else 0
    return KernelCompiler(word, major, text, where)


def compiler_for_host(kernel_cc: KernelCompiler, cross: str | None) -> str:
    """The program to run here: the kernel's own name, with the target triplet when
    cross-building (an arm64 kernel built natively names plain gcc-12)."""
    name = kernel_cc.name if kernel_cc.major == 0 or kernel_cc.name.endswith(
        f"-{kernel_cc.major}") else f"{kernel_cc.name}-{kernel_cc.major}"
    if cross is not None and not name.startswith(CROSS_PREFIX[cross]):
        base = name.split("-linux-gnu-", 1)[-1]
        return CROSS_PREFIX[cross] + base
    return name


def install_hint(kernel_cc: KernelCompiler, cross: str | None) -> str:
    """The Debian package that brings the compiler, and where to build if it has none."""
    package = kernel_cc.plain + (f"-{CROSS_PREFIX[cross][:-1]}" if cross else "")
    return (f"apt-get install {package}; a Debian release that does not package it cannot "
            "build for this kernel: build on the release the kernel belongs to (or its "
            "container), see docs/kernel-module.md")


def find_gcc(kernel_cc: KernelCompiler, cross: str | None) -> GccToolchain:
    """The kernel's gcc on this machine, checked to be that major; ToolchainMissing if not."""
    program = compiler_for_host(kernel_cc, cross)
    path = os.environ.get("PATH", os.defpath)
    if shutil.which(program, path=path) is None:
        raise ToolchainMissing(f"{program} not found: the kernel was built with "
                               f"{kernel_cc.text!r} ({kernel_cc.where}) and its modules must "
                               f"be too ({install_hint(kernel_cc, cross)})")
    major = _output(program, "-dumpversion").split(".", 1)[0]
    if kernel_cc.major and major != str(kernel_cc.major):
        raise ToolchainMissing(f"{program} is gcc {major}, the kernel was built with gcc "
                               f"{kernel_cc.major} ({kernel_cc.text!r})")
    strip = f"{CROSS_PREFIX[cross]}strip" if cross else "strip"
    if shutil.which(strip, path=path) is None:
        raise ToolchainMissing(f"{strip} not found (binutils"
                               + (f"-{CROSS_PREFIX[cross][:-1]})" if cross else ")"))
    return GccToolchain(program, _first_line(_output(program, "--version")), kernel_cc.text,
                        "make", _first_line(_output("make", "--version")), strip)


def needed_glibc(build_dir: Path) -> tuple[int, int]:
    """The newest glibc version kbuild's host programs (fixdep, modpost) require."""
    newest = (0, 0)
    for rel in KBUILD_PROGRAMS:
        for program in sorted(build_dir.glob(rel + "*")):
            newest = max(newest, _glibc_of(program))
    return newest


def _glibc_of(program: Path) -> tuple[int, int]:
    try:
        with program.open("rb") as stream:
            elf = ELFFile(stream)
            needs = elf.get_section_by_name(".gnu.version_r")
            if not isinstance(needs, GNUVerNeedSection):
                return (0, 0)
            versions = [(int(m[1]), int(m[2])) for _, auxes in needs.iter_versions()
                        for aux in auxes if (m := _GLIBC.fullmatch(aux.name))]
    except (ELFError, OSError, ValueError):
        return (0, 0)  # a shell wrapper (Debian's modpost), or not there: nothing to run
    return max(versions, default=(0, 0))


def host_glibc() -> tuple[int, int]:
    found = re.search(r"(\d+)\.(\d+)", os.confstr("CS_GNU_LIBC_VERSION") or "")
    return (int(found[1]), int(found[2])) if found else (0, 0)


def check_host(build_dir: Path, kernel_cc: KernelCompiler) -> None:
    """ToolchainMissing when kbuild's programs cannot run here, or BTF needs pahole."""
    needs, has = needed_glibc(build_dir), host_glibc()
    if has != (0, 0) and needs > has:
        raise ToolchainMissing(
            f"the kernel's kbuild programs (scripts/mod/modpost, from its linux-kbuild "
            f"package) need glibc {needs[0]}.{needs[1]}, this machine has {has[0]}.{has[1]}: "
            f"build on the Debian release the kernel belongs to (it has {kernel_cc.plain} "
            "too), see docs/kernel-module.md")
    config = _read(build_dir / ".config")
    btf = "CONFIG_DEBUG_INFO_BTF_MODULES=y" in config and (build_dir / "vmlinux").is_file()
    if btf and shutil.which("pahole", path=os.environ.get("PATH", os.defpath)) is None:
        raise ToolchainMissing("pahole not found: the kernel's headers ship vmlinux, so "
                               "kbuild makes the module's BTF with it (apt-get install pahole)")


def find_toolchain() -> str:
    """What every module build needs whatever its kernel: make (the compiler is per
    kernel and checked with it)."""
    if shutil.which("make") is None:
        raise BuildError("make not found on PATH", hint=MAKE_HINT)
    return "make"


def compile_module(build_dir: Path, source: PreparedSource, out_dir: Path, *, timeout: float,
                   jobs: int = 2, headers: Sequence[HeaderPackage] = (),
                   kernel_root: Path | None = None, work_root: Path | None = None,
                   keep_work: bool = False,
                   arch: str | None = None) -> CompileResult[GccToolchain]:
    """Compile `source` (a kmod tree) against the headers in `build_dir` with the kernel's
    own gcc; the module lands in out_dir/falco.ko. A toolchain this machine lacks is a
    result (category toolchain), as a compile error is; BuildError only for what stops
    every compile (not a headers folder, unusable work folders)."""
    build = build_dir.resolve()
    if not (build / "Makefile").is_file():
        raise BuildError(f"{build_dir}: no Makefile, not a kernel headers build folder",
                         hint="pass the folder that `make -C` needs (lib/modules/<uname -r>/build)")
    cross = _cross_arch(arch)
    started = time.monotonic()
    try:
        kernel_cc = kernel_compiler(build)
        toolchain = find_gcc(kernel_cc, cross)
        check_host(build, kernel_cc)
    except ToolchainMissing as exc:
        return _toolchain_failure(str(exc), source, headers, time.monotonic() - started)
    root = (kernel_root or kernel_root_of(build)).resolve()
    work = Path(tempfile.mkdtemp(prefix="falco-kmod-", dir=work_root)).resolve()
    try:
        check_folders(work, root)
        copy_tree(source.driver_dir, work / "driver")
        maps = {work / "driver": CANONICAL_DRIVER, root: CANONICAL_KERNEL}
        command = make_command(toolchain, work / "driver", build, maps, jobs, cross)
        env = environment(_cross_bin(work, cross) if cross else None)
        returncode, output, timed_out = run_killable(command, work, env, timeout)
        built = work / "driver" / MODULE_OBJECT
        if not timed_out and returncode == 0 and built.is_file():
            output += _strip(toolchain, built, env)
        base = CompileResult(
            False, None, time.monotonic() - started, tuple(command),
            canonical(shlex.join(command), maps), toolchain, canonical(output, maps),
            driver_version=source.driver_version, driver_ref=source.ref,
            source_digest=source.digest, source_provider=source.provider,
            headers=tuple(headers), kernel_dir=canonical(str(build), maps),
            environment=tuple(sorted((k, v) for k, v in env.items() if k != "PATH")),
            notes=(("configure", " ".join(configure_flags(output))),))
        if timed_out:
            return replace(base, step="compile", timed_out=True, category="timeout",
                           reason=f"timed out after {timeout:g} s")
        if returncode != 0 or not built.is_file():
            return replace(base, step="compile", reason=module_failure_reason(base.log, returncode),
                           category=module_failure_category(base.log))
        module, digest, size = deliver(built, out_dir, MODULE_OBJECT)
        return replace(base, ok=True, probe=module, sha256=digest, size=size,
                       interface=device_interface(work / "driver"))
    finally:
        if not keep_work:
            shutil.rmtree(work, ignore_errors=True)


def make_command(toolchain: GccToolchain, folder: Path, build: Path, maps: dict[Path, str],
                 jobs: int, cross: str | None = None) -> list[str]:
    """Upstream's entry point: make in the module's folder, which runs kbuild's M= build."""
    prefix_maps = " ".join(f"-ffile-prefix-map={real}={canonical}"
                           for real, canonical in maps.items())
    extra = [f"ARCH={KBUILD_ARCH[cross]}", f"CROSS_COMPILE={CROSS_PREFIX[cross]}"] if cross else []
    return [toolchain.make, "-C", str(folder), f"KERNELDIR={build}", f"CC={toolchain.gcc}",
            f"-j{max(1, jobs)}", *extra, f"KCPPFLAGS={prefix_maps}"]


def configure_flags(log: str) -> tuple[str, ...]:
    """The HAS_* flags the configure checks set (what this kernel's API offered)."""
    return tuple(sorted(set(_SETTING.findall(log))))


def module_failure_reason(log: str, returncode: int) -> str:
    """The first error outside the configure checks' own (expected) failures: the
    compiler's, else modpost's (`ERROR: modpost: "x" undefined!`), else make's."""
    kept = [line for line in log.splitlines() if not line.startswith(_NOISE)]
    reason = failure_reason("\n".join(kept), returncode)
    modpost = next((line for line in kept if line.startswith("ERROR: ")), None)
    if modpost is not None and "error:" not in reason:
        return shorten(modpost.strip(), 300)
    return reason.replace("produced no probe.o", f"produced no {MODULE_OBJECT}")


def module_failure_category(log: str) -> str:
    """toolchain when the configure sanity check says the build system is broken (a
    compiler or linker that cannot build an empty module), else what kbuild.py says."""
    if any(_BROKEN in line for line in log.splitlines()):
        return "toolchain"
    kept = "\n".join(line for line in log.splitlines() if not line.startswith(_NOISE))
    if "ERROR: modpost:" in kept and "undefined!" in kept:
        return "unsupported-kernel"  # a symbol this kernel no longer exports
    return failure_category(kept)


def _toolchain_failure(reason: str, source: PreparedSource, headers: Sequence[HeaderPackage],
                       duration: float) -> CompileResult[GccToolchain]:
    return CompileResult(False, None, duration, (), "", GccToolchain("", "", ""),
                         reason + "\n", step="compile", reason=reason, category="toolchain",
                         driver_version=source.driver_version, driver_ref=source.ref,
                         source_digest=source.digest, source_provider=source.provider,
                         headers=tuple(headers))


def _cross_arch(arch: str | None) -> str | None:
    if arch is None or arch == platform.machine():
        return None
    if arch not in CROSS_PREFIX:
        raise BuildError(f"cannot build kernel modules for {arch!r}", hint="x86_64 or aarch64")
    return arch


def _cross_bin(work: Path, cross: str) -> Path:
    """A `make` that adds ARCH and CROSS_COMPILE, first on PATH: the configure checks run
    make through `env -i`, which keeps only PATH, CC and KERNELDIR."""
    real = shutil.which("make")
    folder = work / ".cross-bin"
    folder.mkdir()
    wrapper = folder / "make"
    wrapper.write_text(f"#!/bin/sh\nexec {shlex.quote(str(real))} ARCH={KBUILD_ARCH[cross]} "
                       f"CROSS_COMPILE={CROSS_PREFIX[cross]} \"$@\"\n")
    wrapper.chmod(0o755)
    return folder


def _strip(toolchain: GccToolchain, module: Path, env: dict[str, str]) -> str:
    """Drop the debug information (as driverkit does); the log says so."""
    command = [toolchain.strip, "-g", str(module)]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120,
                          check=False)
    return f"{shlex.join([toolchain.strip, '-g', MODULE_OBJECT])}\n{done.stdout}{done.stderr}"


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


@functools.lru_cache(maxsize=32)
def _output(*command: str) -> str:
    """A tool's output (its version), once per run."""
    try:
        done = subprocess.run(list(command), capture_output=True, text=True, timeout=30,
                              check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ToolchainMissing(f"{command[0]} does not run: {exc}") from exc
    return done.stdout.strip()


def _first_line(text: str) -> str:
    return text.splitlines()[0].strip() if text else ""
