"""Check that a compiled artifact is what it claims before anyone publishes it.

`check_artifact` picks the check of the artifact's kind: `check_probe` for the eBPF
probe, `check_module` for the kernel module (below).

A Falco eBPF probe is an ELF64 little-endian relocatable object for EM_BPF.
Every probe since Falco 0.26 carries program sections named
`raw_tracepoint/<event>` (or `tracepoint/<category>/<event>` on kernels
without raw tracepoints), a `maps` section, a `license` section that the
kernel requires to be GPL-compatible (absent from Falco 0.27-0.28's probes,
whose loader says GPL itself), and a `kernel_version` section holding
the `uname -r` of the headers it was built against. Newer probes add
`probe_version`, `build_commit`, `api_version` and `schema_version`; we report
those when present but do not require them.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from elftools.common.exceptions import ELFError, ELFParseError
from elftools.elf.elffile import ELFFile

from builder.core.drivertypes import EBPF, KMOD
from builder.core.versions import DRIVER_API

PROGRAM_PREFIXES = ("raw_tracepoint/", "tracepoint/")
REQUIRED_SECTIONS = ("maps", "kernel_version")
# Probes of Falco 0.27-0.28 (5c0b863d) carry no `license` section: that era's libscap
# loads every program as "GPL" itself. When the section is there it must say GPL.
DEFAULT_LICENSE = "GPL"
ELF_MAGIC = b"\x7fELF"


@dataclass(frozen=True, slots=True)
class ProbeCheck:
    """What we found in one probe file; `reason` says why it is not a probe."""

    path: str
    ok: bool
    reason: str = ""
    size: int = 0
    sections: tuple[str, ...] = ()
    programs: tuple[str, ...] = ()
    license: str = ""
    kernel_release: str = ""     # the kernel_version section (a module: vermagic's first word)
    driver_version: str = ""     # the probe_version section, when present (a module: version=)
    api: str = ""                # a module's api_version= and schema_version= (.modinfo)
    schema: str = ""
    machine: str = ""            # a module's e_machine (EM_X86_64, EM_AARCH64)
    module_name: str = ""        # a module's .modinfo name=


def check_probe(path: Path, *, kernel_release: str | None = None,
                driver_version: str | None = None) -> ProbeCheck:
    """Check one probe file; never raises for a bad file, the reason says what is wrong.

    `kernel_release` / `driver_version`, when given, must match the probe's
    `kernel_version` / `probe_version` sections (catches builds against the
    wrong headers or source).
    """
    name = str(path)
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as stream:
            head = stream.read(64)
            problem = _header_problem(head, size)
            if problem:
                return ProbeCheck(name, False, problem, size)
            stream.seek(0)
            return _check_elf(ELFFile(stream), name, size, kernel_release, driver_version)
    except OSError as exc:
        return ProbeCheck(name, False, f"cannot read the file: {exc.strerror or exc}")
    except (ELFError, ELFParseError, struct.error, ValueError) as exc:
        return ProbeCheck(name, False, f"malformed ELF: {exc}")


def _header_problem(head: bytes, size: int) -> str:
    """Reasons visible in the first 64 bytes, so pyelftools never sees garbage."""
    if size == 0:
        return "empty file (0 bytes)"
    if not head.startswith(ELF_MAGIC):
        return f"not an ELF file (starts with {head[:4]!r})"
    if len(head) < 64:
        return f"truncated: {size} bytes, shorter than an ELF64 header"
    if head[4] != 2:
        return "not a 64-bit ELF (ELFCLASS32)" if head[4] == 1 else "unknown ELF class"
    if head[5] != 1:
        return "not a little-endian ELF"
    shoff, = struct.unpack_from("<Q", head, 0x28)
    shentsize, shnum = struct.unpack_from("<HH", head, 0x3A)
    end = shoff + shentsize * shnum
    if shnum == 0:
        return "no section headers"
    if end > size:
        return f"truncated: section headers end at byte {end}, the file has {size} bytes"
    return ""


def _section_names(elf: ELFFile, size: int) -> tuple[tuple[str, ...], str]:
    """The named sections, or why the file is cut short (a section ending past its end)."""
    names = []
    for section in elf.iter_sections():
        end = section["sh_offset"] + section["sh_size"]
        if section["sh_type"] != "SHT_NOBITS" and end > size:
            return (), (f"truncated: section {section.name!r} ends at byte {end}, the file "
                        f"has {size} bytes")
        if section.name:
            names.append(section.name)
    return tuple(names), ""


def _check_elf(elf: ELFFile, name: str, size: int, kernel_release: str | None,
               driver_version: str | None) -> ProbeCheck:
    if elf["e_type"] != "ET_REL":
        return ProbeCheck(name, False, f"not a relocatable object (e_type {elf['e_type']})", size)
    if elf["e_machine"] != "EM_BPF":
        return ProbeCheck(name, False,
                          f"wrong machine {elf['e_machine']}, expected EM_BPF", size)
    found, truncated = _section_names(elf, size)
    if truncated:
        return ProbeCheck(name, False, truncated, size)
    programs = tuple(s for s in found if s.startswith(PROGRAM_PREFIXES))
    facts = {key: _c_string(elf, key) for key in ("license", "kernel_version", "probe_version")}
    result = ProbeCheck(name, True, "", size, found, programs, facts["license"],
                        facts["kernel_version"], facts["probe_version"])
    reason = _content_problem(result, kernel_release, driver_version)
    if reason:
        return ProbeCheck(name, False, reason, size, found, programs, result.license,
                          result.kernel_release, result.driver_version)
    return result


def _content_problem(probe: ProbeCheck, kernel_release: str | None,
                     driver_version: str | None) -> str:
    if not probe.programs:
        return "no program sections (raw_tracepoint/* or tracepoint/*)"
    missing = [s for s in REQUIRED_SECTIONS if s not in probe.sections]
    if missing:
        return "missing section(s): " + ", ".join(missing)
    if "license" in probe.sections and "GPL" not in probe.license:
        return (f"license {probe.license!r} is not GPL-compatible "
                "(the kernel refuses to load it)")
    if kernel_release is not None and probe.kernel_release != kernel_release:
        return (f"kernel_version section says {probe.kernel_release!r}, "
                f"expected {kernel_release!r}")
    if driver_version is not None and "probe_version" in probe.sections \
            and probe.driver_version != driver_version:
        return (f"probe_version section says {probe.driver_version!r}, "
                f"expected {driver_version!r}")
    return ""


def _c_string(elf: ELFFile, section_name: str) -> str:
    """A section holding one NUL-terminated string (license, kernel_version ...)."""
    section = elf.get_section_by_name(section_name)
    if section is None or section["sh_type"] == "SHT_NOBITS":
        return ""
    data: bytes = section.data()
    return data.split(b"\0", 1)[0].decode("utf-8", "replace")


# --- the kernel module ------------------------------------------------------------------
#
# A Falco kernel module is an ELF64 little-endian relocatable object (ET_REL) for the
# kernel's machine (EM_X86_64 or EM_AARCH64), named falco: .modinfo says `name=falco`
# (libscap writes /sys/module/falco/parameters and opens /dev/falco<cpu>), `vermagic=`
# starts with the `uname -r` of the headers it was built against (the kernel refuses any
# other: modversions compare every imported symbol's CRC), and from Falco 0.31.1 on
# `api_version=` and `schema_version=` are the driver version's (what the ioctls answer).
# `.gnu.linkonce.this_module` is the module's `struct module`: without it no kernel loads it.

MODULE_MACHINES = {"x86_64": "EM_X86_64", "aarch64": "EM_AARCH64"}
MODULE_NAME = "falco"
THIS_MODULE = ".gnu.linkonce.this_module"


def check_module(path: Path, *, kernel_release: str | None = None, arch: str | None = None,
                 driver_version: str | None = None) -> ProbeCheck:
    """Check one kernel module file; never raises for a bad file, the reason says why.

    `kernel_release` must be vermagic's first word, `arch` (`uname -m`) its machine, and a
    `driver_version` with known API and schema versions (versions.DRIVER_API) its own.
    """
    name = str(path)
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as stream:
            problem = _header_problem(stream.read(64), size)
            if problem:
                return ProbeCheck(name, False, problem, size)
            stream.seek(0)
            found = _read_module(ELFFile(stream), name, size)
    except OSError as exc:
        return ProbeCheck(name, False, f"cannot read the file: {exc.strerror or exc}")
    except (ELFError, ELFParseError, struct.error, ValueError) as exc:
        return ProbeCheck(name, False, f"malformed ELF: {exc}")
    if not found.ok:
        return found
    reason = _module_problem(found, kernel_release, arch, driver_version)
    return replace(found, ok=not reason, reason=reason)


def _read_module(elf: ELFFile, name: str, size: int) -> ProbeCheck:
    if elf["e_type"] != "ET_REL":
        return ProbeCheck(name, False, f"not a relocatable object (e_type {elf['e_type']})", size)
    machines = set(MODULE_MACHINES.values())
    if elf["e_machine"] not in machines:
        return ProbeCheck(name, False, f"wrong machine {elf['e_machine']}, expected "
                          f"{' or '.join(sorted(machines))}", size)
    sections, truncated = _section_names(elf, size)
    if truncated:
        return ProbeCheck(name, False, truncated, size)
    info = modinfo(elf)
    release = info.get("vermagic", "").split(" ", 1)[0]
    return ProbeCheck(name, True, "", size, sections, (), info.get("license", ""),
                      release, info.get("version", ""), info.get("api_version", ""),
                      info.get("schema_version", ""), elf["e_machine"], info.get("name", ""))


def modinfo(elf: ELFFile) -> dict[str, str]:
    """The module's .modinfo `key=value` strings (the first of each key, as modinfo -F)."""
    section = elf.get_section_by_name(".modinfo")
    out: dict[str, str] = {}
    if section is None or section["sh_type"] == "SHT_NOBITS":
        return out
    for entry in bytes(section.data()).split(b"\0"):
        key, equals, value = entry.decode("utf-8", "replace").partition("=")
        if equals:
            out.setdefault(key, value)
    return out


def _module_problem(module: ProbeCheck, kernel_release: str | None, arch: str | None,
                    driver_version: str | None) -> str:
    if THIS_MODULE not in module.sections:
        return f"no {THIS_MODULE} section: not a loadable kernel module"
    if ".modinfo" not in module.sections:
        return "no .modinfo section: not a kernel module"
    if module.module_name != MODULE_NAME:
        return (f".modinfo name is {module.module_name!r}, not {MODULE_NAME!r}: Falco opens "
                f"/dev/{MODULE_NAME}* and /sys/module/{MODULE_NAME}")
    if not module.kernel_release:
        return ".modinfo has no vermagic: no kernel would load it"
    if kernel_release is not None and module.kernel_release != kernel_release:
        return f"vermagic is for {module.kernel_release!r}, expected {kernel_release!r}"
    machine = MODULE_MACHINES.get(arch or "")
    if arch is not None and module.machine != machine:
        return f"wrong machine {module.machine}, expected {machine} for {arch}"
    expected = DRIVER_API.get(driver_version or "")
    if expected is not None and (module.api, module.schema) != expected:
        return (f".modinfo api_version {module.api or 'none'} and schema_version "
                f"{module.schema or 'none'} are not driver {driver_version}'s "
                f"({expected[0]} and {expected[1]})")
    return ""


# The check each kind of artifact must pass (drivertypes.DRIVER_TYPES); a kind without one
# cannot be published or verified, and says so. Each takes the file and what is known of
# it: the kernel's `uname -r`, its arch, the driver version.

def _check_ebpf(path: Path, *, kernel_release: str | None = None, arch: str | None = None,
                driver_version: str | None = None) -> ProbeCheck:
    """An eBPF object names no arch, and its probe_version is the libs release it was
    built from (Debian's 0.23.2 for 9.1.0+driver): only the kernel release is compared."""
    return check_probe(path, kernel_release=kernel_release)


CHECKS: dict[str, Callable[..., ProbeCheck]] = {EBPF.name: _check_ebpf, KMOD.name: check_module}


def check_artifact(path: Path, kind: str, *, kernel_release: str | None = None,
                   arch: str | None = None, driver_version: str | None = None) -> ProbeCheck:
    """The check of `kind` on one file; a reason when it is not a valid artifact of it."""
    check = CHECKS.get(kind)
    if check is None:
        return ProbeCheck(str(path), False, f"no check for {kind} files in this version")
    return check(path, kernel_release=kernel_release, arch=arch, driver_version=driver_version)
