"""Real driver source, real headers and one real compile, shared by the build tests.

Everything here is cached: downloads and prepared sources in the test cache
folder (FALCO_PROBES_TEST_CACHE, else ~/.cache/falco-probes-tests), the
sysroots and the compiled probe once per test process, so the suite pays for
one ~5 s compile no matter how many tests look at the probe.
"""

from __future__ import annotations

import functools
import tempfile
from dataclasses import dataclass
from pathlib import Path

from realkernel import BOOKWORM, archive, cache_dir, debian_headers_or_skip

from builder.compile.driversrc import PreparedSource, prepare_source
from builder.compile.kbuild import CompileResult, Toolchain, compile_probe
from builder.compile.kmod import GccToolchain, compile_module
from builder.compile.sysroot import prepare_sysroot
from builder.core.config import DriverSource, DriverVersion
from builder.core.records import HeaderPackage
from builder.shared.apt import AptArchive
from builder.shared.fetch import sha256_file

DKMS_PACKAGE = "falcosecurity-scap-dkms"
# Named, not "whatever the host's archive has": Debian 13 ships 0.20.0-3 under that name.
DKMS_SUITE = "bookworm"
DKMS_PACKAGE_VERSION = "0.1.1dev+git20220316.e5c53d64-5.1"
DKMS_DRIVER_VERSION = "0.1.1dev+git20220316.e5c53d64"
DKMS_REF = "e5c53d64"
COMPILE_TIMEOUT = 300.0
# Debian 13's source of 8.0.0+driver: its probe loads in 6.1 whichever Debian clang (14 to
# 19) builds it. The 2022 snapshot above predates libs' clang 15 verifier fixes (4.0.1 and
# 5.0.0+driver): built by clang 15 or newer, 6.1's verifier rejects 11 of its programs.
TRIXIE_DRIVER_VERSION = "8.0.0+driver"
TRIXIE_SOURCE = DriverSource("debian-package", package=DKMS_PACKAGE, suite="trixie",
                             version="0.20.0-3")
SNAPSHOT_NEWEST_CLANG = 14


def shared_cache() -> Path:
    """The suite's download cache (FALCO_PROBES_TEST_CACHE or ~/.cache/falco-probes-tests)."""
    folder = cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def dkms_driver(kind: str = "debian-package", **where: str) -> DriverVersion:
    """The driver version that Debian's falcosecurity-scap-dkms ships, from any provider."""
    debian = kind == "debian-package"
    source = DriverSource(kind, package=DKMS_PACKAGE if debian else "",
                          suite=DKMS_SUITE if debian else "",
                          version=DKMS_PACKAGE_VERSION if debian else "", **where)
    return DriverVersion(DKMS_DRIVER_VERSION, DKMS_REF, (), source)


def apt_archive() -> AptArchive:
    return archive(shared_cache(), BOOKWORM)


@functools.cache
def debian_source() -> PreparedSource:
    """The Debian-packaged Falco driver source (libs e5c53d64), prepared once."""
    return prepare_source(dkms_driver(), shared_cache() / "driversrc", apt=apt_archive())


@dataclass(frozen=True)
class RealKernel:
    uname_r: str
    package_version: str
    packages: tuple[Path, ...]
    headers: tuple[HeaderPackage, ...]


@functools.cache
def real_kernel() -> RealKernel:
    """One real Debian 6.1 kernel's header packages (downloaded once, cached)."""
    uname_r, version, packages = debian_headers_or_skip(shared_cache())
    headers = tuple(HeaderPackage(p.name, p.as_uri(), sha256_file(p), p.stat().st_size)
                    for p in packages)
    return RealKernel(uname_r, version, tuple(packages), headers)


@functools.cache
def sysroot(base: Path, name: str) -> Path:
    """A sysroot of the real kernel in base/<name> (made once); returns its headers build dir.

    `base` is the session's pytest temp folder (tmp_path_factory.getbasetemp()),
    so pytest removes old sysroots as it removes old temp folders.
    """
    kernel = real_kernel()
    dest = Path(tempfile.mkdtemp(prefix=f"sysroot-{name}-", dir=base))
    return prepare_sysroot(list(kernel.packages), dest).build_dir(kernel.uname_r)


@functools.cache
def compiled_probe(base: Path) -> CompileResult[Toolchain]:
    """The Debian driver source compiled against the real headers, once per test session."""
    out = Path(tempfile.mkdtemp(prefix="probe-out-", dir=base))
    result = compile_probe(sysroot(base, "a"), debian_source(), out, timeout=COMPILE_TIMEOUT,
                           headers=real_kernel().headers)
    assert result.ok, result.reason + "\n" + result.log[-3000:]
    return result


def snapshot_loads_with(toolchain: Toolchain) -> bool:
    """Whether this clang builds the 2022 snapshot into a probe that 6.1's verifier
    accepts (clang 14 or older: Debian 12's; Debian 13 has 17 to 19)."""
    major = toolchain.clang_release.partition(".")[0]
    return major.isdigit() and int(major) <= SNAPSHOT_NEWEST_CLANG


@functools.cache
def trixie_probe(base: Path) -> CompileResult[Toolchain]:
    """Debian 13's 8.0.0+driver source compiled against the real headers, once."""
    driver = DriverVersion(TRIXIE_DRIVER_VERSION, TRIXIE_DRIVER_VERSION, (), TRIXIE_SOURCE)
    source = prepare_source(driver, shared_cache() / "driversrc")
    out = Path(tempfile.mkdtemp(prefix="probe-out-8.0.0-", dir=base))
    result = compile_probe(sysroot(base, "a"), source, out, timeout=COMPILE_TIMEOUT,
                           headers=real_kernel().headers)
    assert result.ok, result.reason + "\n" + result.log[-3000:]
    return result


SID = DriverSource("debian-package", package="falcosecurity-scap-dkms", suite="sid",
                   version="0.23.2-6")


def sid_as(version: str, source: DriverSource = SID) -> DriverVersion:
    return DriverVersion(version, version, ("0.43.0", "0.43.1"), source)


@functools.cache
def sid_source() -> PreparedSource:
    """Debian sid's driver source (libs 0.23.2 = 9.1.0+driver's driver/), as 9.1.0+driver."""
    return prepare_source(sid_as("9.1.0+driver"), shared_cache() / "driversrc")


@functools.cache
def headers(base: Path, release: str, suites: tuple[str, ...], arch: str) -> tuple[Path, str]:
    """A sysroot of the newest kernel matching `release`: its kbuild folder and uname -r."""
    uname_r, _, packages = debian_headers_or_skip(shared_cache(), release, suites, arch)
    dest = Path(tempfile.mkdtemp(prefix="sysroot-", dir=base))
    return prepare_sysroot(packages, dest).build_dir(uname_r), uname_r


def compile_ok(build_dir: Path, source: PreparedSource, out: Path,
               arch: str | None = None) -> CompileResult[Toolchain]:
    result = compile_probe(build_dir, source, out, timeout=COMPILE_TIMEOUT, arch=arch)
    assert result.ok, f"{result.category}: {result.reason}\n{result.log[-3000:]}"
    return result


@functools.cache
def sid_module_source() -> PreparedSource:
    """sid's driver source (9.1.0+driver's driver/) prepared as the kernel module."""
    return prepare_source(sid_as("9.1.0+driver"), shared_cache() / "driversrc",
                          driver_type="kmod")


@functools.cache
def compiled_module(base: Path) -> CompileResult[GccToolchain]:
    """sid's 9.1.0+driver source compiled as falco.ko against the real 6.1 headers with
    the kernel's own gcc, once per test session."""
    out = Path(tempfile.mkdtemp(prefix="module-out-", dir=base))
    result = compile_module(sysroot(base, "a"), sid_module_source(), out,
                            timeout=COMPILE_TIMEOUT, headers=real_kernel().headers)
    assert result.ok, f"{result.category}: {result.reason}\n{result.log[-3000:]}"
    return result


ARM64_RELEASE = r"6\.1\.0-\d+-arm64"


@dataclass(frozen=True)
class CrossBuilt:
    result: CompileResult[Toolchain]
    uname_r: str
    package_version: str


@functools.cache
def sid_arm64_probe(base: Path) -> CrossBuilt:
    """sid's 9.1.0+driver source cross-built for the newest Debian 12 arm64 6.1 kernel, once
    per test session (the compile tests check it, the load test boots it)."""
    uname_r, version, _ = debian_headers_or_skip(shared_cache(), ARM64_RELEASE, BOOKWORM,
                                                 "arm64")
    build_dir, _ = headers(base, ARM64_RELEASE, BOOKWORM, "arm64")
    out = Path(tempfile.mkdtemp(prefix="probe-out-arm64-", dir=base))
    return CrossBuilt(compile_ok(build_dir, sid_source(), out, arch="aarch64"), uname_r, version)
