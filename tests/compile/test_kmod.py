"""compile/kmod.py: the kernel's own compiler read from real Debian headers' texts, the
toolchain this machine lacks named as a failure, the make line, the failure reasons of
real logs, and one real compile of falco.ko against Debian 12's 6.1 headers (slow)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from realprobe import compiled_module, real_kernel

from builder.compile import kmod
from builder.compile.kmod import (
    GccToolchain,
    KernelCompiler,
    ToolchainMissing,
    compiler_for_host,
    configure_flags,
    find_gcc,
    from_version_text,
    kernel_compiler,
    make_command,
    module_failure_category,
    module_failure_reason,
    needed_glibc,
)
from builder.shared.elfcheck import check_module

# CONFIG_CC_VERSION_TEXT of real Debian kernels (the flavour package's .config), with the
# compiler each names and what this x86_64 machine runs for it (native, then for arm64).
REAL_TEXTS = [
    ("bullseye 5.10", "gcc-10 (Debian 10.2.1-6) 10.2.1 20210110", "gcc-10", 10,
     "gcc-10", "aarch64-linux-gnu-gcc-10"),
    ("bookworm 6.1", "gcc-12 (Debian 12.2.0-14+deb12u1) 12.2.0", "gcc-12", 12,
     "gcc-12", "aarch64-linux-gnu-gcc-12"),
    ("bookworm 6.12+deb12", "x86_64-linux-gnu-gcc-12 (Debian 12.2.0-14+deb12u1) 12.2.0",
     "x86_64-linux-gnu-gcc-12", 12, "x86_64-linux-gnu-gcc-12", "aarch64-linux-gnu-gcc-12"),
    ("bookworm 6.12+deb12 arm64", "aarch64-linux-gnu-gcc-12 (Debian 12.2.0-14+deb12u1) 12.2.0",
     "aarch64-linux-gnu-gcc-12", 12, "aarch64-linux-gnu-gcc-12", "aarch64-linux-gnu-gcc-12"),
    ("trixie 6.12+deb13", "x86_64-linux-gnu-gcc-14 (Debian 14.2.0-19) 14.2.0",
     "x86_64-linux-gnu-gcc-14", 14, "x86_64-linux-gnu-gcc-14", "aarch64-linux-gnu-gcc-14"),
    ("sid 7.2", "x86_64-linux-gnu-gcc-16 (Debian 16.2.0-4) 16.2.0", "x86_64-linux-gnu-gcc-16",
     16, "x86_64-linux-gnu-gcc-16", "aarch64-linux-gnu-gcc-16"),
    ("a plain gcc", "gcc (GCC) 8.5.0 20210514 (Red Hat 8.5.0-18)", "gcc", 8,
     "gcc-8", "aarch64-linux-gnu-gcc-8"),
]


@pytest.mark.parametrize(("kernel", "text", "name", "major", "native", "cross"), REAL_TEXTS,
                         ids=[t[0] for t in REAL_TEXTS])
def test_the_compiler_is_the_one_the_headers_name(tmp_path: Path, kernel: str, text: str,
                                                  name: str, major: int, native: str,
                                                  cross: str) -> None:
    (tmp_path / ".config").write_text(f"CONFIG_CC_IS_GCC=y\nCONFIG_CC_VERSION_TEXT=\"{text}\"\n"
                                      f"CONFIG_GCC_VERSION={major}0200\n")
    found = kernel_compiler(tmp_path)
    assert (found.name, found.major, found.text, found.where) == (name, major, text, ".config")
    assert compiler_for_host(found, None) == native
    assert compiler_for_host(found, "aarch64") == cross


def test_without_a_config_kernelvariables_says_it(tmp_path: Path) -> None:
    # Debian 13's 6.12: .kernelvariables, as the headers ship it
    (tmp_path / ".kernelvariables").write_text(
        "override ARCH = x86\nCCACHE = ccache\n"
        "CC = $(if $(DEBIAN_KERNEL_USE_CCACHE),$(CCACHE)) $(CROSS_COMPILE)gcc-14\n"
        "override CROSS_COMPILE = x86_64-linux-gnu-\n")
    found = kernel_compiler(tmp_path)
    assert (found.name, found.major, found.where) == ("gcc-14", 14, ".kernelvariables")


@pytest.mark.parametrize(("files", "message"), [
    ({}, "do not say which compiler built the kernel"),
    ({".config": 'CONFIG_CC_VERSION_TEXT="Debian clang version 16.0.6 (15)"\n'},
     r"built with 'Debian clang version 16\.0\.6 \(15\)' \(\.config\), not gcc"),
])
def test_a_compiler_that_cannot_be_told_is_never_guessed(tmp_path: Path,
                                                          files: dict[str, str],
                                                          message: str) -> None:
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    with pytest.raises(ToolchainMissing, match=message):
        kernel_compiler(tmp_path)


def test_a_missing_compiler_is_named_with_its_package(monkeypatch: pytest.MonkeyPatch,
                                                     tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # nothing at all
    trixie = from_version_text("x86_64-linux-gnu-gcc-14 (Debian 14.2.0-19) 14.2.0", ".config")
    with pytest.raises(ToolchainMissing) as native:
        find_gcc(trixie, None)
    assert str(native.value).startswith(
        "x86_64-linux-gnu-gcc-14 not found: the kernel was built with "
        "'x86_64-linux-gnu-gcc-14 (Debian 14.2.0-19) 14.2.0' (.config)")
    assert "apt-get install gcc-14;" in str(native.value)
    with pytest.raises(ToolchainMissing, match=r"apt-get install gcc-14-aarch64-linux-gnu;"):
        find_gcc(trixie, "aarch64")


def test_another_major_is_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    fake = tmp_path / "gcc-14"
    fake.write_text("#!/bin/sh\necho 12\n")  # a gcc-14 that is really 12
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    kmod._output.cache_clear()
    with pytest.raises(ToolchainMissing, match="gcc-14 is gcc 12, the kernel was built with "
                                               "gcc 14"):
        find_gcc(KernelCompiler("gcc-14", 14, "gcc-14 (Debian 14.2.0-19) 14.2.0", ".config"),
                 None)
    kmod._output.cache_clear()


def test_kbuild_programs_that_need_a_newer_glibc_are_seen(tmp_path: Path) -> None:
    # this machine's own make stands in for fixdep: whatever glibc it needs, we read it
    (tmp_path / "scripts" / "basic").mkdir(parents=True)
    shutil.copy(shutil.which("make") or "/usr/bin/make", tmp_path / "scripts/basic/fixdep")
    (tmp_path / "scripts" / "mod").mkdir()
    (tmp_path / "scripts/mod/modpost").write_text("#!/bin/sh\n")  # Debian's wrapper script
    assert needed_glibc(tmp_path) >= (2, 2)
    assert needed_glibc(tmp_path / "nothing") == (0, 0)


def test_the_make_line_is_upstreams_entry_point(tmp_path: Path) -> None:
    gcc = GccToolchain("aarch64-linux-gnu-gcc-12", "", "gcc-12 (Debian) 12.2.0")
    maps = {tmp_path / "driver": "/falco-probes/driver", tmp_path / "k": "/falco-probes/kernel"}
    command = make_command(gcc, tmp_path / "driver", tmp_path / "k/build", maps, 2, "aarch64")
    assert command == [
        "make", "-C", str(tmp_path / "driver"), f"KERNELDIR={tmp_path / 'k/build'}",
        "CC=aarch64-linux-gnu-gcc-12", "-j2", "ARCH=arm64", "CROSS_COMPILE=aarch64-linux-gnu-",
        f"KCPPFLAGS=-ffile-prefix-map={tmp_path / 'driver'}=/falco-probes/driver "
        f"-ffile-prefix-map={tmp_path / 'k'}=/falco-probes/kernel"]


# Real logs (this machine, libs sources), cut to the lines that matter.
CONFIGURE_NOISE = (
    "[configure-kmod] Build output for HAS_CLASS_CREATE_1:\n"
    "[configure-kmod] make: Entering directory '/falco-probes/driver/configure/"
    "CLASS_CREATE_1'  CC [M]  /falco-probes/driver/configure/CLASS_CREATE_1/test.o "
    "/falco-probes/driver/configure/CLASS_CREATE_1/test.c:23:56: error: macro "
    "\"class_create\" requires 2 arguments, but only 1 given\n"
    "[configure-kmod] Setting HAS_ACCESS_OK_2 flag\n"
    "[configure-kmod] Setting HAS_0__SANITY flag\n"
    "[configure-kmod] Build system is sane\n")
LOGS = [
    ("7.0.0 on 6.12", CONFIGURE_NOISE +
     "  CC [M]  /falco-probes/driver/main.o\n"
     "/falco-probes/driver/main.c:1653:22: error: implicit declaration of function "
     "'fd_is_open'; did you mean 'finish_open'? [-Werror=implicit-function-declaration]\n"
     "make[2]: *** [scripts/Makefile.build:243: /falco-probes/driver/main.o] Error 1\n",
     "/falco-probes/driver/main.c:1653:22: error: implicit declaration of function "
     "'fd_is_open'; did you mean 'finish_open'? [-Werror=implicit-function-declaration]",
     "unsupported-kernel"),
    ("Falco 0.26's driver on 6.1",
     "  MODPOST /falco-probes/driver/Module.symvers\n"
     "ERROR: modpost: \"cc_mkenc\" [/falco-probes/driver/falco.ko] undefined!\n"
     "make[2]: *** [scripts/Makefile.modpost:127: /falco-probes/driver/Module.symvers] "
     "Error 1\n",
     "ERROR: modpost: \"cc_mkenc\" [/falco-probes/driver/falco.ko] undefined!",
     "unsupported-kernel"),
    ("arm64 without the cross make",
     "[configure-kmod] Build output for HAS_0__SANITY:\n"
     "[configure-kmod] ld: unrecognised emulation mode: aarch64linux\n"
     "[configure-kmod] Build system is broken, please see above errors\n"
     "Makefile:44: *** The build system is broken, please see above errors.  Stop.\n",
     "Makefile:44: *** The build system is broken, please see above errors.  Stop.",
     "toolchain"),
]


@pytest.mark.parametrize(("case", "log", "reason", "category"), LOGS, ids=[c[0] for c in LOGS])
def test_failures_are_the_first_error_outside_the_configure_checks(
        case: str, log: str, reason: str, category: str) -> None:
    assert module_failure_reason(log, 2) == reason
    assert module_failure_category(log) == category


def test_the_configure_flags_set_are_read_from_the_log() -> None:
    assert configure_flags(CONFIGURE_NOISE) == ("HAS_0__SANITY", "HAS_ACCESS_OK_2")


@pytest.mark.slow
def test_a_real_module_for_debian_12s_6_1(tmp_path_factory: pytest.TempPathFactory) -> None:
    """sid's 9.1.0+driver source, as falco.ko, with gcc-12, against real 6.1 headers."""
    result = compiled_module(tmp_path_factory.getbasetemp())
    assert result.ok and result.probe is not None
    uname_r = real_kernel().uname_r
    check = check_module(result.probe, kernel_release=uname_r, arch="x86_64",
                         driver_version="9.1.0+driver")
    assert check.ok, check.reason
    assert (check.api, check.schema, check.module_name) == ("8.0.4", "4.1.0", "falco")
    info = result.compiler_info()
    assert info["gcc"].startswith("gcc-12 ") and info["kernel_compiler"].startswith("gcc-12 ")
    assert "HAS_0__SANITY" in info["configure"].split()
    assert " CC=gcc-12 " in f" {info['command']} " and "KERNELDIR=/falco-probes/kernel/" in \
        info["command"]
    assert ".debug_info" not in check.sections                 # stripped, as driverkit does
    assert result.interface["api"] == "8.0.4"
    assert result.interface["ioctls"]["GET_API_VERSION"] == 0x7318  # _IO('s', 24)
    assert result.interface["capture"] == "enable_tp"
    assert "/work" not in result.log and str(tmp_path_factory.getbasetemp()) not in result.log
