"""Small, valid Falco-like eBPF objects and kernel modules for tests that need many cheaply.

`make_fake_probe` writes an ELF64 little-endian relocatable for EM_BPF with the
sections every Falco eBPF probe has (program sections, maps, license,
kernel_version, probe_version), laid out by hand with struct: a few hundred
bytes, well under a millisecond each. `payload` lands in a `.comment`
section so that every call can produce distinct bytes (distinct sha256).
`make_fake_module` writes a kernel module's shape the same way: EM_X86_64 (or
EM_AARCH64), `.modinfo` (name, vermagic, api_version, schema_version ...) and
`.gnu.linkonce.this_module`.
"""

from __future__ import annotations

import struct
from pathlib import Path

EM_BPF = 247
EM_X86_64 = 62
EM_AARCH64 = 183
ET_REL = 1
SHT_PROGBITS = 1
SHT_STRTAB = 3
SHF_WRITE = 0x1
SHF_ALLOC = 0x2
SHF_EXECINSTR = 0x4
# r0 = 0; exit
BPF_RETURN_ZERO = bytes.fromhex("b700000000000000" "9500000000000000")
DEFAULT_PROGRAMS = ("raw_tracepoint/sys_enter", "raw_tracepoint/sys_exit",
                    "raw_tracepoint/sched_process_exit")
_SECTION_HEADER = struct.Struct("<IIQQQQIIQQ")
_ELF_HEADER = struct.Struct("<16sHHIQQQIHHHHHH")


def fake_probe_bytes(payload: bytes | str = b"", *, kernel_release: str = "6.1.0-0-amd64",
                     driver_version: str = "0.0.0+driver", license: str = "GPL",
                     programs: tuple[str, ...] = DEFAULT_PROGRAMS,
                     machine: int = EM_BPF, omit: tuple[str, ...] = ()) -> bytes:
    """The bytes of a fake probe; `omit` drops named sections to build broken ones."""
    if isinstance(payload, str):
        payload = payload.encode()
    sections: list[tuple[str, int, int, bytes]] = [
        *((name, SHT_PROGBITS, SHF_ALLOC | SHF_EXECINSTR, BPF_RETURN_ZERO) for name in programs),
        ("maps", SHT_PROGBITS, SHF_WRITE | SHF_ALLOC, bytes(28)),
        ("license", SHT_PROGBITS, SHF_WRITE | SHF_ALLOC, license.encode() + b"\0"),
        ("kernel_version", SHT_PROGBITS, SHF_WRITE | SHF_ALLOC, kernel_release.encode() + b"\0"),
        ("probe_version", SHT_PROGBITS, SHF_WRITE | SHF_ALLOC, driver_version.encode() + b"\0"),
        (".comment", SHT_PROGBITS, 0, payload),
    ]
    return elf_bytes([s for s in sections if s[0] not in omit], machine)


def elf_bytes(sections: list[tuple[str, int, int, bytes]], machine: int) -> bytes:
    """An ELF64 LE relocatable of `sections` (name, type, flags, bytes) and a string table."""
    sections = list(sections)
    names = b"\0.strtab\0" + b"".join(s[0].encode() + b"\0" for s in sections)
    sections.append((".strtab", SHT_STRTAB, 0, names))

    body = bytearray()
    headers = [_SECTION_HEADER.pack(0, 0, 0, 0, 0, 0, 0, 0, 0, 0)]
    for name, kind, flags, data in sections:
        body += bytes(-len(body) % 8)
        name_at = names.index(b"\0" + name.encode() + b"\0") + 1
        headers.append(_SECTION_HEADER.pack(name_at, kind, flags, 0, _ELF_HEADER.size + len(body),
                                            len(data), 0, 0, 8 if kind == SHT_PROGBITS else 1, 0))
        body += data
    body += bytes(-len(body) % 8)
    shoff = _ELF_HEADER.size + len(body)
    ident = b"\x7fELF" + bytes([2, 1, 1]) + bytes(9)
    header = _ELF_HEADER.pack(ident, ET_REL, machine, 1, 0, 0, shoff, 0, _ELF_HEADER.size,
                              0, 0, _SECTION_HEADER.size, len(headers), len(headers) - 1)
    return header + bytes(body) + b"".join(headers)


def fake_module_bytes(payload: bytes | str = b"", *, kernel_release: str = "6.1.0-0-amd64",
                      name: str = "falco", api: str = "8.0.4", schema: str = "4.1.0",
                      machine: int = EM_X86_64, omit: tuple[str, ...] = ()) -> bytes:
    """A fake falco.ko: `.modinfo` as modpost writes it, `omit` drops sections (and the
    modinfo keys named `modinfo:<key>`) to build broken ones."""
    if isinstance(payload, str):
        payload = payload.encode()
    info = {"version": "9.1.0+driver", "license": "Dual MIT/GPL", "api_version": api,
            "schema_version": schema, "name": name,
            "vermagic": f"{kernel_release} SMP preempt mod_unload modversions "}
    modinfo = b"".join(f"{k}={v}".encode() + b"\0" for k, v in info.items()
                       if f"modinfo:{k}" not in omit)
    sections: list[tuple[str, int, int, bytes]] = [
        (".text", SHT_PROGBITS, SHF_ALLOC | SHF_EXECINSTR, b"\xc3"),
        (".modinfo", SHT_PROGBITS, SHF_ALLOC, modinfo),
        (".gnu.linkonce.this_module", SHT_PROGBITS, SHF_WRITE | SHF_ALLOC,
         name.encode().ljust(64, b"\0")),
        (".comment", SHT_PROGBITS, 0, payload),
    ]
    return elf_bytes([s for s in sections if s[0] not in omit], machine)


def make_fake_module(path: Path, payload: bytes | str = b"", **options: object) -> Path:
    """Write a fake kernel module to `path` (options as for fake_module_bytes)."""
    path.write_bytes(fake_module_bytes(payload, **options))  # type: ignore[arg-type]
    return path


def make_fake_probe(path: Path, payload: bytes | str = b"", **options: object) -> Path:
    """Write a fake probe to `path` (options as for fake_probe_bytes) and return the path."""
    path.write_bytes(fake_probe_bytes(payload, **options))  # type: ignore[arg-type]
    return path
