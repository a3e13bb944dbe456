"""compile/kbuild.py: real compiles of the Debian-packaged Falco driver on real headers.

One good compile per session (tests/helpers/realprobe.py), plus a deliberately broken
probe.c and a timeout, which fail fast. Toolchain and folder errors are
checked without compiling. An aarch64 probe is cross-built against Debian's arm64
headers. Probes are reproducible: the same source and headers give the same bytes
wherever they are built (two real compiles whose every folder differs: without the
prefix maps the debug info and BTF would record those folders and the digests would
differ).
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest
from realprobe import (
    DKMS_DRIVER_VERSION,
    compiled_probe,
    debian_source,
    dkms_driver,
    real_kernel,
    sid_arm64_probe,
    sysroot,
)

from builder.compile.driversrc import PreparedSource, prepare_source
from builder.compile.kbuild import (
    CANONICAL_DRIVER,
    CANONICAL_KERNEL,
    TOOLCHAIN_HINT,
    compile_probe,
    failure_category,
    failure_reason,
    find_toolchain,
    kernel_root_of,
    version_number,
)
from builder.core.errors import BuildError
from builder.shared.elfcheck import check_probe

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.getbasetemp()


@pytest.fixture(scope="module")
def broken_source(tmp_path_factory: pytest.TempPathFactory) -> PreparedSource:
    """The Debian driver source with a syntax error added at the end of probe.c."""
    folder = tmp_path_factory.mktemp("broken") / "driver"
    shutil.copytree(debian_source().driver_dir, folder, copy_function=shutil.copyfile)
    for path in [folder, *folder.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    with (folder / "bpf" / "probe.c").open("a") as probe:
        probe.write("\nint deliberately_broken = ;\n")
    return prepare_source(dkms_driver("directory", path=str(folder)),
                          tmp_path_factory.mktemp("broken-cache"))


def _processes_mentioning(text: str) -> list[str]:
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if text in cmdline:
            found.append(f"{pid}: {cmdline[:200]}")
    return found


def test_compile_real_probe(base: Path) -> None:
    result = compiled_probe(base)
    kernel = real_kernel()
    assert result.ok and result.probe is not None
    assert (result.step, result.reason, result.timed_out) == ("", "", False)
    assert result.probe.name == "probe.o"
    data = result.probe.read_bytes()
    assert result.size == len(data) > 1_000_000
    import hashlib
    assert result.sha256 == hashlib.sha256(data).hexdigest()
    checked = check_probe(result.probe, kernel_release=kernel.uname_r,
                          driver_version=DKMS_DRIVER_VERSION)
    assert checked.ok, checked.reason
    assert {"raw_tracepoint/sys_enter", "raw_tracepoint/sys_exit",
            "raw_tracepoint/sched_switch"} <= set(checked.programs)
    assert {"maps", "license", "kernel_version", "probe_version"} <= set(checked.sections)
    assert checked.license == "GPL"


def test_compile_records_how_to_rebuild(base: Path) -> None:
    result = compiled_probe(base)
    source = debian_source()
    assert result.command[:2] == ("make", "-C")
    assert result.canonical_command.startswith(f"make -C {CANONICAL_KERNEL}/src/linux-headers-")
    assert f"M={CANONICAL_DRIVER}/bpf" in result.canonical_command
    assert "CLANG=clang LLC=llc" in result.canonical_command
    assert str(base) not in result.canonical_command + result.log + result.kernel_dir
    assert result.kernel_dir == f"{CANONICAL_KERNEL}/src/linux-headers-{real_kernel().uname_r}"
    assert re.fullmatch(r"\d+\.\d+\.\d+", result.toolchain.clang_release)
    assert "LLVM version" in result.toolchain.llc_version
    assert result.toolchain.make_version.startswith("GNU Make")
    assert dict(result.environment)["SOURCE_DATE_EPOCH"] == str(result.source_date_epoch)
    assert (result.driver_version, result.driver_ref, result.source_digest,
            result.source_provider) == (source.driver_version, source.ref, source.digest,
                                        "debian-package")
    fields = result.report_fields()
    assert fields["driver_source_sha256"] == source.digest
    assert [h["name"] for h in fields["headers"]] == [h.name for h in real_kernel().headers]
    assert all(len(h["sha256"]) == 64 for h in fields["headers"])
    assert fields["compiler"]["command"] == result.canonical_command
    assert "clang" in result.log and "probe.c" in result.log
    assert result.duration > 0


def test_compile_error_is_a_result(base: Path, broken_source: PreparedSource,
                                   tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = compile_probe(sysroot(base, "a"), broken_source, out, timeout=300)
    assert not result.ok and result.probe is None
    assert result.step == "compile"
    assert result.reason.startswith(f"{CANONICAL_DRIVER}/bpf/probe.c:")
    assert "error: expected expression" in result.reason
    assert result.reason in result.log
    assert "Error 1" in result.log  # make's own account is kept in the full log
    assert not (out / "probe.o").exists()
    assert result.report_fields()["reason"] == result.reason


@pytest.mark.parametrize(("line", "release"), [
    ("Debian clang version 14.0.6", "14.0.6"),          # Debian 12
    ("Debian clang version 19.1.7 (3+b1)", "19.1.7"),   # Debian 13
    ("clang version 16.0.0 (https://github.com/llvm/llvm-project 08d094a0)", "16.0.0"),
    ("Ubuntu clang version 18.1.3 (1ubuntu1)", "18.1.3"),
    ("Homebrew clang version 17.0.6", "17.0.6"),
    ("no version here", ""),
])
def test_clang_release_in_every_form(line: str, release: str) -> None:
    assert version_number(line, "clang version") == release


D = CANONICAL_DRIVER
K = CANONICAL_KERNEL
EXPR = "expr: syntax error: unexpected argument '1'"
FAILURE_LOGS = [
    # (log, reason, category)
    (f"{EXPR}\n{D}/bpf/fillers.h:2567:12: error: no member named 'rss_stat' in "
     "'struct mm_struct'\nmake[1]: *** [x] Error 1",
     f"{D}/bpf/fillers.h:2567:12: error: no member named 'rss_stat' in 'struct mm_struct'",
     "unsupported-kernel"),
    (f"{EXPR}\n{D}/bpf/probe.c:18:10: fatal error: 'driver_config.h' file not found",
     f"{D}/bpf/probe.c:18:10: fatal error: 'driver_config.h' file not found", "source-layout"),
    (f"{D}/bpf/types.h:9:10: fatal error: 'linux/gone.h' file not found",
     f"{D}/bpf/types.h:9:10: fatal error: 'linux/gone.h' file not found", "unsupported-kernel"),
    (f"{K}/arch/arm64/include/asm/x.h:4:2: error: invalid output constraint '=Q' in asm",
     f"{K}/arch/arm64/include/asm/x.h:4:2: error: invalid output constraint '=Q' in asm",
     "toolchain"),
    # an old source on newer headers (2aa88dcf on 5.10): the source's limit, not clang's
    (f"{K}/include/net/flow_offload.h:323:4: error: use of undeclared identifier "
     "'KBUILD_MODNAME'", f"{K}/include/net/flow_offload.h:323:4: error: use of undeclared "
     "identifier 'KBUILD_MODNAME'", "unsupported-kernel"),
    ("LLVM ERROR: Cannot select: intrinsic\nmake: *** [probe.o] Error 1",
     "LLVM ERROR: Cannot select: intrinsic", "toolchain"),
    (f"{EXPR}\nmake[1]: *** No rule to make target '{D}/bpf/maps.h'. Stop.",
     f"make[1]: *** No rule to make target '{D}/bpf/maps.h'. Stop.", "source-layout"),
    (f"{EXPR}\n", "make succeeded but produced no probe.o", "unknown"),
    # a kernel feature probe failing on purpose is not the failure
    (f"[configure-bpf] x {D}/bpf/configure/RSS_STAT_ARRAY/test.c:27:20: error: subscripted\n"
     f"{D}/bpf/configure/RSS_STAT_ARRAY/test.c:27:20: error: subscripted value\n"
     f"{D}/bpf/fillers.h:1:2: error: use of undeclared identifier 'x'",
     f"{D}/bpf/fillers.h:1:2: error: use of undeclared identifier 'x'", "unsupported-kernel"),
]


@pytest.mark.parametrize(("log", "reason", "category"), FAILURE_LOGS)
def test_failure_reason_and_category_from_the_log(log: str, reason: str, category: str) -> None:
    assert failure_reason(log, 0) == reason
    assert failure_category(log) == category


def test_long_reasons_are_cut_between_words_and_point_to_the_log() -> None:
    line = f"{D}/bpf/fillers.h:1:1: error: " + "someverylongword " * 40
    reason = failure_reason(line, 2)
    assert len(reason) <= 300 and reason.endswith(" … (see the log)")
    assert reason.removesuffix(" … (see the log)").endswith("someverylongword")


def test_timeout_kills_the_whole_build(base: Path, tmp_path: Path) -> None:
    work_root = tmp_path / "work"
    work_root.mkdir()
    result = compile_probe(sysroot(base, "a"), debian_source(), tmp_path / "out", timeout=0.5,
                           work_root=work_root)
    assert not result.ok and result.timed_out
    assert (result.step, result.reason) == ("compile", "timed out after 0.5 s")
    assert result.duration < 30
    assert _processes_mentioning(str(work_root)) == []
    assert list(work_root.iterdir()) == []


@pytest.mark.parametrize(("tools", "missing"), [
    ({"clang": "clang-does-not-exist"}, "clang-does-not-exist"),
    ({"llc": "llc-does-not-exist"}, "llc-does-not-exist"),
])
def test_missing_toolchain_raises(tools: dict[str, str], missing: str, tmp_path: Path) -> None:
    with pytest.raises(BuildError) as caught:
        compile_probe(tmp_path, debian_source(), tmp_path / "out", timeout=10, **tools)  # type: ignore[arg-type]
    assert caught.value.message == f"{missing} not found on PATH"
    assert caught.value.hint == TOOLCHAIN_HINT == (
        "install the toolchain: apt-get install clang llvm make libelf-dev")


def test_toolchain_versions() -> None:
    toolchain = find_toolchain()
    assert toolchain.clang_version and toolchain.llc_version and toolchain.make_version


def test_not_a_build_dir(tmp_path: Path) -> None:
    with pytest.raises(BuildError, match="no Makefile, not a kernel headers build folder"):
        compile_probe(tmp_path, debian_source(), tmp_path / "out", timeout=10)


def test_work_folder_inside_the_kernel_folder_is_refused(tmp_path: Path) -> None:
    (tmp_path / "Makefile").write_text("all:\n")
    (tmp_path / "work").mkdir()
    with pytest.raises(BuildError, match="are nested"):
        compile_probe(tmp_path, debian_source(), tmp_path / "out", timeout=10,
                      work_root=tmp_path / "work")
    assert list((tmp_path / "work").iterdir()) == []


def _debian_layout(root: Path, include: str) -> Path:
    build = root / "usr/src/linux-headers-6.1.0-1-amd64"
    common = root / "usr/src/linux-headers-6.1.0-1-common"
    kbuild = root / "usr/lib/linux-kbuild-6.1/scripts"
    for folder in (build, common, kbuild):
        folder.mkdir(parents=True)
    (common / "Makefile").write_text("# kernel\n")
    (build / "scripts").symlink_to("../../lib/linux-kbuild-6.1/scripts")
    (build / "Makefile").write_text(include.format(common=common) + "\n")
    return build


@pytest.mark.parametrize(("case", "include", "expected"), [
    ("relative include", "include ../linux-headers-6.1.0-1-common/Makefile", "usr"),
    ("absolute include", "include {common}/Makefile", "usr"),
    ("variable include", "include $(srctree)/Makefile", "usr"),  # the symlink still counts
    ("nothing outside", "# standalone", "usr/src/linux-headers-6.1.0-1-amd64"),
])
def test_kernel_root_of(tmp_path: Path, case: str, include: str, expected: str) -> None:
    build = _debian_layout(tmp_path, include)
    if case == "nothing outside":
        (build / "scripts").unlink()
    assert kernel_root_of(build) == tmp_path / expected


def test_aarch64_probe_is_cross_built_and_checked(tmp_path_factory: pytest.TempPathFactory
                                                  ) -> None:
    built = sid_arm64_probe(tmp_path_factory.getbasetemp())  # the one the load test boots
    result, uname_r = built.result, built.uname_r
    assert "ARCH=arm64" in result.command and "--target=aarch64-linux-gnu" in \
        result.canonical_command
    assert result.probe is not None
    checked = check_probe(result.probe, kernel_release=uname_r)
    assert checked.ok and uname_r.endswith("-arm64"), checked.reason
    # the kernel feature probes ran against the arm64 headers too
    assert "arch/arm64/include" in result.log


def test_same_bytes_from_different_folders(tmp_path_factory: pytest.TempPathFactory) -> None:
    base = tmp_path_factory.getbasetemp()
    first = compiled_probe(base)

    # everything elsewhere: another sysroot, another copy of the source, a deeper work folder
    other_build_dir = sysroot(base, "b")
    copy = tmp_path_factory.mktemp("elsewhere") / "a" / "much" / "longer" / "path"
    source = prepare_source(dkms_driver("directory", path=str(debian_source().driver_dir)),
                            copy / "cache")
    work_root = copy / "work"
    work_root.mkdir()
    second = compile_probe(other_build_dir, source, copy / "out", timeout=300,
                           work_root=work_root, headers=real_kernel().headers)
    assert second.ok, second.reason

    assert first.probe is not None and second.probe is not None
    assert source.driver_dir != debian_source().driver_dir
    assert other_build_dir != sysroot(base, "a")
    assert source.digest == first.source_digest
    assert second.sha256 == first.sha256
    assert second.probe.read_bytes() == first.probe.read_bytes()
    # what a report records is the same too
    assert second.canonical_command == first.canonical_command
    assert second.kernel_dir == first.kernel_dir
    assert second.log == first.log


def test_probe_names_only_canonical_folders(tmp_path_factory: pytest.TempPathFactory) -> None:
    base = tmp_path_factory.getbasetemp()
    result = compiled_probe(base)
    assert result.probe is not None
    data = result.probe.read_bytes()
    assert f"{CANONICAL_DRIVER}/bpf/probe.c".encode() in data
    assert str(base).encode() not in data
    assert b"/tmp/" not in data
    assert str(sysroot(base, "a")).encode() not in data
