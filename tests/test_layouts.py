"""Every driver source layout era, prepared and compiled from real files.

The real files are Debian's falcosecurity-scap-dkms packages of three suites on
the machine's own mirror: bookworm's 2022 snapshot (the `parent` layout, whose
probe.c includes "../driver_config.h") and sid's 0.23.2-6, whose driver/ is
9.1.0+driver's, shipped as a DKMS tree (the `flat` folder cmake makes). From
sid's tree the tests also lay out the upstream libs driver/ folder that folder
was made from (bpf sources, driver/*.h, driver_config.h.in, configure/*), so
our own cmake-like preparation is checked file for file against Debian's, and
compiled. The old `always +=` Makefiles are rebuilt from the 2022 tree. No
upstream source is committed: everything is made from the Debian packages.
"""

from __future__ import annotations

import functools
import re
import shutil
import tempfile
from pathlib import Path

import pytest
from realkernel import BOOKWORM, debian_headers_or_skip
from realprobe import COMPILE_TIMEOUT, debian_source, shared_cache, sysroot

from builder.compile.driversrc import LAYOUT_FLAT, LAYOUT_PARENT, PreparedSource, prepare_source
from builder.compile.kbuild import CompileResult, compile_probe
from builder.compile.stage import _legacy_always_reason
from builder.compile.sysroot import prepare_sysroot
from builder.core.config import DriverSource, DriverVersion
from builder.core.errors import BuildError
from builder.core.records import HostFacts, Kernel
from builder.shared.elfcheck import check_probe

pytestmark = pytest.mark.slow

SID = DriverSource("debian-package", package="falcosecurity-scap-dkms", suite="sid",
                   version="0.23.2-6")
TRIXIE = DriverSource("debian-package", package="falcosecurity-scap-dkms", suite="trixie",
                      version="0.20.0-3")


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
               arch: str | None = None) -> CompileResult:
    result = compile_probe(build_dir, source, out, timeout=COMPILE_TIMEOUT, arch=arch)
    assert result.ok, f"{result.category}: {result.reason}\n{result.log[-3000:]}"
    return result


# --- Debian's DKMS tree: the flat folder, shipped ------------------------------------

def test_debian_sid_source_is_9_1_0_and_says_exactly_what_it_is() -> None:
    source = sid_source()
    assert (source.layout, source.config, source.api, source.schema, source.libs_version) == (
        LAYOUT_FLAT, "shipped", "8.0.4", "4.1.0", "0.23.2")
    assert source.description == ("debian falcosecurity-scap-dkms 0.23.2-6 from sid "
                                  "(libs 0.23.2, Debian patches), built as 9.1.0+driver")
    assert {p.name for p in (source.bpf_dir / "configure").iterdir()} >= {"0__SANITY",
                                                                          "RSS_STAT_ARRAY"}


def test_a_source_of_another_api_is_refused(tmp_path: Path) -> None:
    with pytest.raises(BuildError) as caught:
        prepare_source(sid_as("9.1.0+driver", TRIXIE), tmp_path)
    assert "declares API 8.0.3 and schema 3.5.0, but driver version 9.1.0+driver is API " \
           "8.0.4, schema 4.1.0" in caught.value.message


def test_aarch64_probe_is_cross_built_and_checked(tmp_path_factory: pytest.TempPathFactory,
                                                  tmp_path: Path) -> None:
    build_dir, uname_r = headers(tmp_path_factory.getbasetemp(), r"6\.1\.0-\d+-arm64", BOOKWORM,
                                 "arm64")
    result = compile_ok(build_dir, sid_source(), tmp_path, arch="aarch64")
    assert "ARCH=arm64" in result.command and "--target=aarch64-linux-gnu" in \
        result.canonical_command
    assert result.probe is not None
    checked = check_probe(result.probe, kernel_release=uname_r)
    assert checked.ok and uname_r.endswith("-arm64"), checked.reason
    # the kernel feature probes ran against the arm64 headers too
    assert "arch/arm64/include" in result.log


# --- the upstream flat layout (7.2.0+), rebuilt from Debian's tree ---------------------

def upstream_layout(dkms_root: Path, dest: Path) -> Path:
    """The libs driver/ folder Debian's DKMS tree was made from, as cmake's input."""
    driver = dest / "driver"
    bpf, configure = driver / "bpf", driver / "bpf" / "configure"
    configure.mkdir(parents=True)
    top = {p.name for p in dkms_root.glob("*.h")}
    for path in (dkms_root / "bpf").iterdir():
        if path.is_file() and path.name != "driver_config.h":
            shutil.copyfile(path, (driver if path.name in top else bpf) / path.name)
    modules = sorted(p for p in (dkms_root / "bpf" / "configure").iterdir() if p.is_dir())
    for module in modules:
        (configure / module.name).mkdir()
        shutil.copyfile(module / "test.c", configure / module.name / "test.c")
    # any module but 0__SANITY, whose name the template also holds literally
    model = next(m for m in modules if m.name != "0__SANITY")
    shutil.copyfile(model / "Makefile", configure / "Makefile")
    shutil.copyfile(model / "build.sh", configure / "build.sh")
    rendered = (model / "Makefile.inc").read_text()
    (configure / "Makefile.inc.in").write_text(
        rendered.replace(model.name, "@CONFIGURE_MODULE@").replace("@@", "@@NEWLINE@@"))
    config = (dkms_root / "bpf" / "driver_config.h").read_text()
    for kind in ("API", "SCHEMA"):
        for part in ("MAJOR", "MINOR", "PATCH"):
            name = f"PPM_{kind}_CURRENT_VERSION_{part}"
            config = re.sub(rf"(#define {name}) \d+", rf"\1 ${{{name}}}", config)
    for name in ("DRIVER_VERSION", "DRIVER_NAME", "DRIVER_DEVICE_NAME"):
        config = re.sub(rf'(#define {name}) "[^"]*"', rf'\1 "${{{name}}}"', config)
    config = re.sub(r'(#define DRIVER_COMMIT) "[^"]*"', r'\1 "${GIT_COMMIT}"', config)
    (driver / "driver_config.h.in").write_text(config)
    (driver / "API_VERSION").write_text("8.0.4\n")
    (driver / "SCHEMA_VERSION").write_text("4.1.0\n")
    return driver


@functools.cache
def dkms_root() -> Path:
    """sid's /usr/src/scap-<version> tree, unpacked once (the prepared copy is bpf/ only)."""
    from builder.shared.apt import AptArchive
    from builder.shared.extract import extract
    from builder.shared.fetch import download

    apt = AptArchive(shared_cache() / "apt", suites=("sid",))
    if not apt.index_files():
        apt.update()
    package = apt.package(SID.package, SID.version)
    deb = download(package.url, shared_cache() / "downloads" / package.name,
                   sha256=package.sha256, size=package.size)
    dest = Path(tempfile.mkdtemp(prefix="dkms-"))
    extract(deb, dest)
    return next((dest / "usr" / "src").iterdir())


def test_flat_layout_is_prepared_as_cmake_does(tmp_path: Path) -> None:
    driver = upstream_layout(dkms_root(), tmp_path / "libs")
    ours = prepare_source(DriverVersion("9.1.0+driver", "9.1.0+driver", (),
                                        DriverSource("directory", path=str(driver))),
                          tmp_path / "cache")
    assert (ours.layout, ours.config, ours.api, ours.schema) == (LAYOUT_FLAT, "generated",
                                                                 "8.0.4", "4.1.0")
    debian = sid_source().bpf_dir

    def files(root: Path) -> dict[str, bytes]:
        return {p.relative_to(root).as_posix(): p.read_bytes()
                for p in root.rglob("*") if p.is_file()}

    made, shipped = files(ours.bpf_dir), files(debian)
    assert sorted(made) == sorted(shipped)  # the same folder, file for file
    assert {n for n in made if made[n] != shipped[n]} == {"driver_config.h"}
    config = made["driver_config.h"].decode()
    assert '#define DRIVER_VERSION "9.1.0+driver"' in config
    assert '#define DRIVER_NAME "falco"' in config


def test_flat_layout_from_upstream_builds_for_debian_12s_6_12(
        tmp_path_factory: pytest.TempPathFactory, tmp_path: Path) -> None:
    """9.1.0+driver, laid out as upstream's tree, on the newest Debian 12 kernel (6.12)."""
    driver = upstream_layout(dkms_root(), tmp_path / "libs")
    source = prepare_source(DriverVersion("9.1.0+driver", "9.1.0+driver", (),
                                          DriverSource("directory", path=str(driver))),
                            tmp_path / "cache")
    build_dir, uname_r = headers(tmp_path_factory.getbasetemp(), r"6\.12\.\d+\+deb12-amd64",
                                 ("bookworm", "bookworm-updates", "bookworm-security"), "amd64")
    result = compile_ok(build_dir, source, tmp_path / "o")
    assert result.probe is not None
    checked = check_probe(result.probe, kernel_release=uname_r, driver_version="9.1.0+driver")
    assert checked.ok, checked.reason
    assert "[configure-bpf] Build system is sane" in result.log


# --- the parent layout and its oldest Makefiles ----------------------------------------

def test_parent_layout_is_the_2022_snapshot() -> None:
    source = debian_source()
    assert (source.layout, source.legacy_always) == (LAYOUT_PARENT, False)


def test_always_plus_equals_makefile_cannot_build_for_5_11_and_says_why(
        tmp_path_factory: pytest.TempPathFactory, tmp_path: Path) -> None:
    tree = tmp_path / "driver"
    shutil.copytree(debian_source().driver_dir, tree, copy_function=shutil.copyfile)
    for path in [tree, *tree.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    makefile = tree / "bpf" / "Makefile"
    text = makefile.read_text()
    assert "always-y += probe.o" in text
    makefile.write_text(text.replace("always-y += probe.o", "always += probe.o"))
    driver = DriverVersion("2aa88dcf6243982697811df4c1b484bcbe9488a2",
                           "2aa88dcf6243982697811df4c1b484bcbe9488a2", (),
                           DriverSource("directory", path=str(tree)))
    (tree / "driver_config.h").unlink()
    (tree / "driver_config.h.in").write_text('#define DRIVER_VERSION "${DRIVER_VERSION}"\n')
    source = prepare_source(driver, tmp_path / "cache")
    assert source.legacy_always
    result = compile_probe(sysroot(tmp_path_factory.getbasetemp(), "a"), source, tmp_path / "o",
                           timeout=COMPILE_TIMEOUT)
    assert not result.ok and result.reason == "make succeeded but produced no probe.o"
    kernel = Kernel("debian", HostFacts("debian", "6.1.0-1-amd64", "#1", "x86_64"))
    why = _legacy_always_reason(kernel, source)
    assert why is not None and "kbuild ignores from Linux 5.11" in why
    old = Kernel("debian", HostFacts("debian", "5.10.0-1-amd64", "#1", "x86_64"))
    assert _legacy_always_reason(old, source) is None
