"""shared/elfcheck.py: real objects from clang, fake probes and modules, broken files, exact
reasons (the real module's check runs on a real falco.ko in tests/compile/test_kmod.py)."""

from __future__ import annotations

import shutil
import struct
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from fakeprobe import (
    EM_AARCH64,
    EM_X86_64,
    fake_module_bytes,
    fake_probe_bytes,
    make_fake_module,
    make_fake_probe,
)

from builder.shared.elfcheck import check_artifact, check_module, check_probe

TINY_BPF = r"""
#define SEC(name) __attribute__((section(name), used))
struct map_def { unsigned int type, key_size, value_size, max_entries, flags; };
struct map_def settings_map SEC("maps") = { 2, 4, 8, 1, 0 };
char kernel_ver[] SEC("kernel_version") = "6.1.0-47-amd64";
char __license[] SEC("license") = "Dual MIT/GPL";
char probe_ver[] SEC("probe_version") = "9.9.9+driver";
SEC("raw_tracepoint/sys_enter") int bpf_sys_enter(void *ctx) { return 0; }
SEC("raw_tracepoint/sys_exit") int bpf_sys_exit(void *ctx) { return 0; }
"""

needs_clang = pytest.mark.skipif(shutil.which("clang") is None, reason="clang is not installed")


@pytest.fixture(scope="module")
def objects(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Real objects from clang: a tiny BPF probe, an x86-64 object, an x86-64 shared object."""
    if shutil.which("clang") is None:
        pytest.skip("clang is not installed")
    folder = tmp_path_factory.mktemp("objects")
    (folder / "tiny.c").write_text(TINY_BPF)
    (folder / "plain.c").write_text("int answer(void) { return 42; }\n")
    made = {"bpf": folder / "tiny.o", "x86": folder / "plain.o", "so": folder / "plain.so"}
    subprocess.run(["clang", "-O2", "-target", "bpf", "-c", str(folder / "tiny.c"), "-o",
                    str(made["bpf"])], check=True)
    subprocess.run(["clang", "-O2", "-c", str(folder / "plain.c"), "-o", str(made["x86"])],
                   check=True)
    subprocess.run(["clang", "-shared", "-fPIC", str(folder / "plain.c"), "-o",
                    str(made["so"])], check=True)
    return made


def _patched(offset: int, fmt: str, value: int) -> Callable[[bytes], bytes]:
    def patch(data: bytes) -> bytes:
        out = bytearray(data)
        struct.pack_into(fmt, out, offset, value)
        return bytes(out)
    return patch


def _grow_section(index: int) -> Callable[[bytes], bytes]:
    """Make section `index` claim far more bytes than the file has."""
    def patch(data: bytes) -> bytes:
        shoff, = struct.unpack_from("<Q", data, 0x28)
        return _patched(shoff + 64 * index + 0x20, "<Q", 1 << 20)(data)
    return patch


FAKE = fake_probe_bytes()
# (case, bytes of the file, expected reason; "" means the probe passes)
BYTE_CASES: list[tuple[str, bytes, str]] = [
    ("fake probe", FAKE, ""),
    ("old tracepoint programs", fake_probe_bytes(programs=("tracepoint/raw_syscalls/sys_enter",)),
     ""),
    ("dual license", fake_probe_bytes(license="Dual MIT/GPL"), ""),
    ("empty", b"", "empty file (0 bytes)"),
    ("text", b"hello, I am not a probe\n", "not an ELF file (starts with b'hell')"),
    ("header cut", FAKE[:40], "truncated: 40 bytes, shorter than an ELF64 header"),
    ("section headers cut", FAKE[:-10],
     f"truncated: section headers end at byte {len(FAKE)}, the file has {len(FAKE) - 10} bytes"),
    ("section data past the end", _grow_section(4)(FAKE),
     f"truncated: section 'maps' ends at byte {0x70 + (1 << 20)}, the file has {len(FAKE)} bytes"),
    ("32-bit", _patched(4, "<B", 1)(FAKE), "not a 64-bit ELF (ELFCLASS32)"),
    ("big-endian", _patched(5, "<B", 2)(FAKE), "not a little-endian ELF"),
    ("no section headers", _patched(0x3C, "<H", 0)(FAKE), "no section headers"),
    ("executable", _patched(0x10, "<H", 2)(FAKE), "not a relocatable object (e_type ET_EXEC)"),
    ("x86 machine", fake_probe_bytes(machine=EM_X86_64),
     "wrong machine EM_X86_64, expected EM_BPF"),
    ("no programs", fake_probe_bytes(programs=()),
     "no program sections (raw_tracepoint/* or tracepoint/*)"),
    ("no maps or license", fake_probe_bytes(omit=("maps", "license")),
     "missing section(s): maps"),
    # Falco 0.27-0.28's probes have no license section: their loader says GPL itself
    ("no license at all", fake_probe_bytes(omit=("license",)), ""),
    ("no kernel_version", fake_probe_bytes(omit=("kernel_version",)),
     "missing section(s): kernel_version"),
    ("MIT license", fake_probe_bytes(license="MIT"),
     "license 'MIT' is not GPL-compatible (the kernel refuses to load it)"),
]


@pytest.mark.parametrize(("case", "data", "reason"), BYTE_CASES, ids=[c[0] for c in BYTE_CASES])
def test_check_probe_bytes(tmp_path: Path, case: str, data: bytes, reason: str) -> None:
    path = tmp_path / "probe.o"
    path.write_bytes(data)
    checked = check_probe(path)
    assert (checked.ok, checked.reason) == (reason == "", reason)
    assert checked.size == len(data)
    assert checked.path == str(path)


def test_fake_probe_facts(tmp_path: Path) -> None:
    path = make_fake_probe(tmp_path / "p.o", b"x", kernel_release="5.10.0-1-amd64",
                           driver_version="6.0.1+driver")
    checked = check_probe(path, kernel_release="5.10.0-1-amd64", driver_version="6.0.1+driver")
    assert checked.ok, checked.reason
    assert checked.programs == ("raw_tracepoint/sys_enter", "raw_tracepoint/sys_exit",
                                "raw_tracepoint/sched_process_exit")
    assert {"maps", "license", "kernel_version", "probe_version"} <= set(checked.sections)
    assert (checked.license, checked.kernel_release, checked.driver_version) == (
        "GPL", "5.10.0-1-amd64", "6.0.1+driver")


@pytest.mark.parametrize(("kernel", "driver", "reason"), [
    ("6.1.0-2-amd64", None,
     "kernel_version section says '6.1.0-1-amd64', expected '6.1.0-2-amd64'"),
    (None, "7.0.0+driver",
     "probe_version section says '6.0.1+driver', expected '7.0.0+driver'"),
])
def test_expected_kernel_and_driver(tmp_path: Path, kernel: str | None, driver: str | None,
                                    reason: str) -> None:
    path = make_fake_probe(tmp_path / "p.o", kernel_release="6.1.0-1-amd64",
                           driver_version="6.0.1+driver")
    assert check_probe(path, kernel_release=kernel, driver_version=driver).reason == reason


def test_probe_without_version_section_passes_a_driver_check(tmp_path: Path) -> None:
    # probes older than probe_version cannot contradict the driver version
    path = make_fake_probe(tmp_path / "p.o", omit=("probe_version",))
    assert check_probe(path, driver_version="2aa88dcf6243982697811df4c1b484bcbe9488a2").ok


def test_missing_file(tmp_path: Path) -> None:
    checked = check_probe(tmp_path / "nope.o")
    assert not checked.ok
    assert checked.reason == "cannot read the file: No such file or directory"


def test_fake_probes_are_distinct(tmp_path: Path) -> None:
    paths = [make_fake_probe(tmp_path / f"{i}.o", payload=f"probe {i}") for i in range(200)]
    assert len({p.read_bytes() for p in paths}) == 200
    assert all(check_probe(p).ok for p in paths[:5])


@needs_clang
def test_real_clang_bpf_object(objects: dict[str, Path]) -> None:
    checked = check_probe(objects["bpf"], kernel_release="6.1.0-47-amd64",
                          driver_version="9.9.9+driver")
    assert checked.ok, checked.reason
    assert checked.programs == ("raw_tracepoint/sys_enter", "raw_tracepoint/sys_exit")
    assert checked.license == "Dual MIT/GPL"


@needs_clang
@pytest.mark.parametrize(("kind", "reason"), [
    ("x86", "wrong machine EM_X86_64, expected EM_BPF"),
    ("so", "not a relocatable object (e_type ET_DYN)"),
])
def test_real_non_bpf_objects(objects: dict[str, Path], kind: str, reason: str) -> None:
    assert check_probe(objects[kind]).reason == reason


@needs_clang
def test_truncated_real_object(objects: dict[str, Path], tmp_path: Path) -> None:
    data = objects["bpf"].read_bytes()
    cut = tmp_path / "cut.o"
    cut.write_bytes(data[: len(data) // 2])
    reason = check_probe(cut).reason
    assert reason.startswith("truncated: section headers end at byte "), reason


# --- the kernel module -------------------------------------------------------------------

MODULE = fake_module_bytes(kernel_release="6.1.0-57-amd64")
# (case, bytes, what the check is told: kernel release, arch, driver version; reason)
MODULE_CASES: list[tuple[str, bytes, tuple[str | None, str | None, str | None], str]] = [
    ("good", MODULE, ("6.1.0-57-amd64", "x86_64", "9.1.0+driver"), ""),
    ("good, nothing known", MODULE, (None, None, None), ""),
    ("arm64", fake_module_bytes(kernel_release="6.1.0-57-arm64", machine=EM_AARCH64),
     ("6.1.0-57-arm64", "aarch64", "9.1.0+driver"), ""),
    ("a driver without API versions (Falco 0.26)",
     fake_module_bytes(omit=("modinfo:api_version", "modinfo:schema_version")),
     (None, None, "2aa88dcf6243982697811df4c1b484bcbe9488a2"), ""),
    ("another kernel", MODULE, ("6.1.0-56-amd64", "x86_64", None),
     "vermagic is for '6.1.0-57-amd64', expected '6.1.0-56-amd64'"),
    ("another arch", MODULE, (None, "aarch64", None),
     "wrong machine EM_X86_64, expected EM_AARCH64 for aarch64"),
    ("Debian's name", fake_module_bytes(name="scap"), (None, None, None),
     ".modinfo name is 'scap', not 'falco': Falco opens /dev/falco* and /sys/module/falco"),
    ("another driver version's API", MODULE, (None, None, "8.0.0+driver"),
     ".modinfo api_version 8.0.4 and schema_version 4.1.0 are not driver 8.0.0+driver's "
     "(8.0.3 and 3.5.0)"),
    ("no API where one is due", fake_module_bytes(omit=("modinfo:api_version",)),
     (None, None, "9.1.0+driver"),
     ".modinfo api_version none and schema_version 4.1.0 are not driver 9.1.0+driver's "
     "(8.0.4 and 4.1.0)"),
    ("no vermagic", fake_module_bytes(omit=("modinfo:vermagic",)), (None, None, None),
     ".modinfo has no vermagic: no kernel would load it"),
    ("no struct module", fake_module_bytes(omit=(".gnu.linkonce.this_module",)),
     (None, None, None), "no .gnu.linkonce.this_module section: not a loadable kernel module"),
    ("no modinfo", fake_module_bytes(omit=(".modinfo",)), (None, None, None),
     "no .modinfo section: not a kernel module"),
    ("an eBPF probe", FAKE, (None, None, None),
     "wrong machine EM_BPF, expected EM_AARCH64 or EM_X86_64"),
    ("shared object", _patched(0x10, "<H", 3)(MODULE), (None, None, None),
     "not a relocatable object (e_type ET_DYN)"),
    ("cut", MODULE[:-10], (None, None, None),
     f"truncated: section headers end at byte {len(MODULE)}, the file has "
     f"{len(MODULE) - 10} bytes"),
]


@pytest.mark.parametrize(("case", "data", "told", "reason"), MODULE_CASES,
                         ids=[c[0] for c in MODULE_CASES])
def test_check_module(tmp_path: Path, case: str, data: bytes,
                      told: tuple[str | None, str | None, str | None], reason: str) -> None:
    path = tmp_path / "falco.ko"
    path.write_bytes(data)
    release, arch, driver = told
    checked = check_artifact(path, "kmod", kernel_release=release, arch=arch,
                             driver_version=driver)
    assert (checked.ok, checked.reason) == (reason == "", reason)


def test_a_module_says_what_it_is(tmp_path: Path) -> None:
    path = make_fake_module(tmp_path / "falco.ko", kernel_release="6.12.118+deb12-amd64",
                            api="10.1.0", schema="4.5.1")
    checked = check_module(path)
    assert (checked.kernel_release, checked.api, checked.schema, checked.module_name,
            checked.machine, checked.driver_version, checked.license) == (
        "6.12.118+deb12-amd64", "10.1.0", "4.5.1", "falco", "EM_X86_64", "9.1.0+driver",
        "Dual MIT/GPL")
    assert {".modinfo", ".gnu.linkonce.this_module"} <= set(checked.sections)


def test_each_type_has_its_check(tmp_path: Path) -> None:
    module = make_fake_module(tmp_path / "falco.ko")
    probe = make_fake_probe(tmp_path / "probe.o")
    assert check_artifact(module, "kmod").ok and check_artifact(probe, "ebpf").ok
    assert check_artifact(module, "ebpf").reason == "wrong machine EM_X86_64, expected EM_BPF"
    assert not check_artifact(probe, "kmod").ok
    assert check_artifact(probe, "modern_ebpf").reason == \
        "no check for modern_ebpf files in this version"
