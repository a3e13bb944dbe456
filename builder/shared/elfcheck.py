"""Check that a compiled artifact is what it claims before anyone publishes it.

`check_artifact` picks the check of the artifact's kind; `check_probe` is the eBPF one.

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
from dataclasses import dataclass
from pathlib import Path

from elftools.common.exceptions import ELFError, ELFParseError
from elftools.elf.elffile import ELFFile

from builder.core.drivertypes import EBPF

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
    kernel_release: str = ""     # the kernel_version section
    driver_version: str = ""     # the probe_version section, when present


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


def _check_elf(elf: ELFFile, name: str, size: int, kernel_release: str | None,
               driver_version: str | None) -> ProbeCheck:
    if elf["e_type"] != "ET_REL":
        return ProbeCheck(name, False, f"not a relocatable object (e_type {elf['e_type']})", size)
    if elf["e_machine"] != "EM_BPF":
        return ProbeCheck(name, False,
                          f"wrong machine {elf['e_machine']}, expected EM_BPF", size)
    sections = []
    for section in elf.iter_sections():
        end = section["sh_offset"] + section["sh_size"]
        if section["sh_type"] != "SHT_NOBITS" and end > size:
            return ProbeCheck(name, False, f"truncated: section {section.name!r} ends at byte "
                              f"{end}, the file has {size} bytes", size)
        if section.name:
            sections.append(section.name)
    found = tuple(sections)
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


# The check each kind of artifact must pass (artifacts.DRIVER_TYPES); a kind without one
# cannot be published or verified, and says so.
CHECKS: dict[str, Callable[..., ProbeCheck]] = {EBPF.name: check_probe}


def check_artifact(path: Path, kind: str, *, kernel_release: str | None = None) -> ProbeCheck:
    """The check of `kind` on one file; a reason when it is not a valid artifact of it."""
    check = CHECKS.get(kind)
    if check is None:
        return ProbeCheck(str(path), False, f"no check for {kind} files in this version")
    return check(path, kernel_release=kernel_release)
