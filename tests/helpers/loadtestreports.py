"""Build reports for the load-test tests: probes and modules (real or fake) filed under a
kernel."""

from __future__ import annotations

import hashlib
import shutil
import struct
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from elftools.elf.elffile import ELFFile
from fakeprobe import make_fake_module, make_fake_probe

from builder.core.report import REPORT_NAME, BuildResult, read_report, replace_report

BUILT = "2026-01-02T03:04:05Z"
# r0 = *(u64 *)(r10 + 0): a read above the stack frame, which every verifier refuses.
INVALID_STACK_READ = struct.pack("<BBhi", 0x79, 0xA0, 0, 0)


@dataclass(frozen=True)
class Built:
    """One probe as `build` reports it, for the kernel `uname_r` at Debian `package_version`."""

    uname_r: str
    package_version: str
    driver_version: str = "0.0.1+driver"
    target: str = "debian"
    arch: str = "x86_64"
    kernel_release: str = ""       # the loader's name; default: uname_r
    probe: Path | None = None      # a real probe file to use; default: a fake one
    loadtest: dict[str, Any] | None = None
    driver_type: str = "ebpf"      # kmod: a module (with the interface its build read)
    interface: dict[str, Any] | None = None


def write_built(folder: Path, items: Iterable[Built], failed: Iterable[Built] = ()
                ) -> list[BuildResult]:
    results = []
    for item in items:
        draft = _result(item, ok=True)
        # where build puts it: twin kernels' probes share a file name, not a folder
        rel = f"probes/{item.driver_version}/{item.arch}/{item.uname_r}/{draft.file}"
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if item.probe is not None:
            shutil.copyfile(item.probe, path)
        else:
            make = make_fake_module if item.driver_type == "kmod" else make_fake_probe
            make(path, f"{item.driver_version} {draft.file}", kernel_release=item.uname_r)
        data = path.read_bytes()
        results.append(BuildResult(**{**_fields(draft), "path": rel,
                                      "sha256": hashlib.sha256(data).hexdigest(),
                                      "size": len(data)}))
    for item in failed:
        results.append(BuildResult(**{**_fields(_result(item, ok=False)), "step": "compile",
                                      "reason": "error: it does not compile",
                                      "log": "logs/x.log"}))
    folder.mkdir(parents=True, exist_ok=True)
    replace_report(folder / REPORT_NAME, results)
    return results


def _result(item: Built, ok: bool) -> BuildResult:
    headers = ({"name": f"linux-headers-{item.uname_r}_{item.package_version}_amd64.deb",
                "sha256": "0" * 64},)
    return BuildResult(ok, item.driver_version, item.arch, item.target,
                       item.kernel_release or item.uname_r, "1", built=BUILT,
                       kernel_key=f"{item.target}/{item.arch}/{item.uname_r}/"
                                  f"{item.package_version}",
                       # the raw mapping a report line holds (malformed on purpose in some
                       # tests, for publish to refuse): asdict writes it as it is
                       headers=headers, loadtest=item.loadtest,  # type: ignore[arg-type]
                       driver_type=item.driver_type, interface=item.interface or {})


def _fields(result: BuildResult) -> dict[str, Any]:
    return {name: getattr(result, name) for name in BuildResult.__dataclass_fields__}


def by_file(folder: Path) -> dict[str, BuildResult]:
    return {r.file: r for r in read_report(folder / REPORT_NAME)}


def by_driver(folder: Path, arch: str = "x86_64") -> dict[str, BuildResult]:
    """The results of one architecture's probes, by driver version."""
    return {r.driver_version: r for r in read_report(folder / REPORT_NAME) if r.arch == arch}


def wrong_crc_copy(module: Path, dest: Path) -> Path:
    """A copy of a real module whose first imported symbol's CRC (in __versions:
    struct modversion_info {unsigned long crc; char name[56]}) is not the kernel's: what a
    twin kernel's module looks like to the kernel, which refuses it."""
    shutil.copyfile(module, dest)
    with module.open("rb") as stream:
        found = ELFFile(stream).get_section_by_name("__versions")
        assert found is not None, f"{module} has no __versions (no CONFIG_MODVERSIONS?)"
        offset = found["sh_offset"]
    with dest.open("r+b") as out:
        out.seek(offset)
        crc = struct.unpack("<Q", out.read(8))[0]
        out.seek(offset)
        out.write(struct.pack("<Q", crc ^ 0xFFFF))
    return dest


def broken_copy(probe: Path, dest: Path, section: str = "raw_tracepoint/sys_enter") -> Path:
    """A copy of a real probe whose `section` starts with an invalid stack read."""
    shutil.copyfile(probe, dest)
    with probe.open("rb") as stream:
        found = ELFFile(stream).get_section_by_name(section)
        assert found is not None, f"{probe} has no section {section}"
        offset = found["sh_offset"]
    with dest.open("r+b") as out:
        out.seek(offset)
        out.write(INVALID_STACK_READ)
    return dest
