"""What a loader needs from a legacy Falco eBPF probe: maps, programs, relocations.

The steps are those of libscap's BPF engine (`scap_bpf.c`, `load_bpf_file`):

- maps are the legacy 28-byte `struct bpf_map_def` entries of the `maps`
  section (type, key_size, value_size, max_entries, map_flags,
  inner_map_idx, numa_node), one per symbol defined in that section, in
  symbol-value order; that order is each map's index;
- programs are the `raw_tracepoint/...` (or `tracepoint/...`) sections;
  fillers, reached by tail calls, are `raw_tracepoint/filler/<name>`
  (`tracepoint/filler/<name>` in the aarch64 probes of drivers whose raw
  tracepoints were x86-only, such as the 2022 snapshot's: see `attach`);
- each `.rel<program>` section (SHT_REL whose sh_info is a program section)
  holds R_BPF_64_64 relocations on `ld_imm64` instructions against map
  symbols, matched by symbol value; the loader sets src_reg to
  BPF_PSEUDO_MAP_FD and imm to the map's fd. Other relocation sections
  (debug info, BTF) are not for the kernel and are ignored;
- `license` is the license string; `kernel_version` the `uname -r` the probe
  was built for (libscap refuses to load it into another kernel).

pyelftools reads the ELF container; symbol and relocation entries are
unpacked with struct in bulk, because a probe has ~6,000 symbols and this
also runs inside an emulated CPU.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from elftools.common.exceptions import ELFError, ELFParseError
from elftools.elf.elffile import ELFFile

from builder.core.errors import InputError

PROGRAM_PREFIXES = ("raw_tracepoint/", "tracepoint/")
FILLER_PREFIXES = ("raw_tracepoint/filler/", "tracepoint/filler/")
# `raw_tracepoint/sched_process_fork&2`: a second program on one tracepoint (aarch64 and
# s390x probes of 8.x and 9.x); libscap attaches it to the name without `&N`.
_SECOND_PROGRAM = re.compile(r"&\d$")
# Tracepoints libscap skips when the kernel has none (x86 only): `load_tracepoint`.
OPTIONAL_TRACEPOINTS = ("exceptions/page_fault_user", "exceptions/page_fault_kernel")
# How a program is attached once loaded (Program.attach).
TAIL_CALL, RAW_TRACEPOINT, PERF_TRACEPOINT = "tail call", "raw tracepoint", "perf tracepoint"
MAP_DEF = struct.Struct("<7I")         # legacy struct bpf_map_def: 7 x u32 = 28 bytes
SYMBOL = struct.Struct("<IBBHQQ")      # Elf64_Sym: name, info, other, shndx, value, size
REL = struct.Struct("<QQ")             # Elf64_Rel: offset, info
INSN_SIZE = 8
LD_IMM64 = 0x18                        # BPF_LD | BPF_IMM | BPF_DW
R_BPF_64_64 = 1
BPF_PSEUDO_MAP_FD = 1
EM_BPF = 247
SHT_PROGBITS = "SHT_PROGBITS"
SHT_REL = "SHT_REL"


class ProbeFormatError(InputError):
    """The file is not a legacy Falco eBPF probe a loader can load."""


@dataclass(frozen=True, slots=True)
class MapDef:
    """One map of the `maps` section, as `bpf(BPF_MAP_CREATE)` will get it."""

    name: str
    offset: int            # symbol value: where its bpf_map_def is in the section
    type: int
    key_size: int
    value_size: int
    max_entries: int       # 0: one entry per CPU (perf_map, per-CPU scratch maps)
    flags: int


@dataclass(frozen=True, slots=True)
class Relocation:
    insn: int              # index of the ld_imm64 instruction in its program
    map_index: int


@dataclass(frozen=True, slots=True)
class Program:
    section: str           # raw_tracepoint/sys_enter, raw_tracepoint/filler/sys_open_x ...
    insns: bytes
    relocations: tuple[Relocation, ...]

    @property
    def is_filler(self) -> bool:
        return self.section.startswith(FILLER_PREFIXES)

    @property
    def raw(self) -> bool:
        return self.section.startswith("raw_tracepoint/")

    @property
    def attach(self) -> str:
        """How libscap attaches it: fillers go into the tail-call map, `raw_tracepoint/`
        programs through BPF_RAW_TRACEPOINT_OPEN, `tracepoint/` ones through a perf
        tracepoint event (PERF_EVENT_IOC_SET_BPF)."""
        if self.is_filler:
            return TAIL_CALL
        return RAW_TRACEPOINT if self.raw else PERF_TRACEPOINT

    @property
    def event(self) -> str:
        """The tracepoint to attach to (fillers: the filler's name)."""
        if self.is_filler:
            return self.section.split("/", 2)[-1]
        return _SECOND_PROGRAM.sub("", self.section.split("/", 1)[1])

    @property
    def optional(self) -> bool:
        """Whether a kernel without its tracepoint skips it (libscap does) or refuses it."""
        return self.attach == PERF_TRACEPOINT and self.event in OPTIONAL_TRACEPOINTS

    def linked(self, map_fds: list[int]) -> bytes:
        """The instructions with each map reference pointing at its created map."""
        code = bytearray(self.insns)
        for reloc in self.relocations:
            at = reloc.insn * INSN_SIZE
            code[at + 1] = (code[at + 1] & 0x0F) | (BPF_PSEUDO_MAP_FD << 4)
            struct.pack_into("<i", code, at + 4, map_fds[reloc.map_index])
        return bytes(code)


@dataclass(frozen=True, slots=True)
class ProbeObject:
    path: str
    maps: tuple[MapDef, ...]
    programs: tuple[Program, ...]
    license: str
    kernel_release: str    # the kernel_version section ("" when absent)


def read_probe(path: Path) -> ProbeObject:
    """Parse a probe file; ProbeFormatError says what a loader could not use."""
    try:
        with open(path, "rb") as stream:
            return _read(ELFFile(stream), str(path))
    except (ELFError, ELFParseError, struct.error) as exc:
        raise ProbeFormatError(f"{path}: not a readable ELF object: {exc}") from exc
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror or exc}") from exc


def _read(elf: ELFFile, name: str) -> ProbeObject:
    if elf["e_machine"] not in ("EM_BPF", EM_BPF) or not elf.little_endian or \
            elf.elfclass != 64:
        raise ProbeFormatError(f"{name}: not a 64-bit little-endian eBPF object "
                               f"(machine {elf['e_machine']})")
    sections = list(elf.iter_sections())
    by_name = {s.name: i for i, s in enumerate(sections)}
    wanted = [i for i, s in enumerate(sections) if s.name.startswith(PROGRAM_PREFIXES)
              and s["sh_type"] == SHT_PROGBITS and s["sh_size"]]
    if not wanted:
        raise ProbeFormatError(f"{name}: no raw_tracepoint/ or tracepoint/ program sections")
    symtab = next((s for s in sections if s["sh_type"] == "SHT_SYMTAB"), None)
    if symtab is None:
        raise ProbeFormatError(f"{name}: no symbol table")
    symbols = [SYMBOL.unpack_from(symtab.data(), at)
               for at in range(0, symtab["sh_size"] - SYMBOL.size + 1, SYMBOL.size)]
    maps = _maps(elf, sections, by_name.get("maps"), symbols, name)
    offsets = {m.offset: i for i, m in enumerate(maps)}
    relocations = _relocations(sections, symbols, offsets, name)
    programs = tuple(Program(sections[i].name, sections[i].data(), relocations.get(i, ()))
                     for i in wanted)
    for program in programs:
        _check_relocated(program, name)
    # no license section (Falco 0.27-0.28): their libscap loaded every program as GPL
    return ProbeObject(name, maps, programs, _text(sections, by_name.get("license")) or "GPL",
                       _text(sections, by_name.get("kernel_version")))


def _text(sections: list[Any], index: int | None) -> str:
    if index is None:
        return ""
    return bytes(sections[index].data()).split(b"\0", 1)[0].decode("utf-8", "replace")


def _maps(elf: ELFFile, sections: list[Any], index: int | None, symbols: list[tuple[int, ...]],
          name: str) -> tuple[MapDef, ...]:
    if index is None:
        return ()
    data = sections[index].data()
    names = _symbol_names(elf, sections)
    in_maps = sorted((s for s in symbols if s[3] == index), key=lambda s: s[4])
    if not in_maps:
        raise ProbeFormatError(f"{name}: the maps section has no map symbols")
    if len(data) != len(in_maps) * MAP_DEF.size:
        raise ProbeFormatError(f"{name}: the maps section has {len(data)} bytes for "
                               f"{len(in_maps)} maps; legacy bpf_map_def entries are "
                               f"{MAP_DEF.size} bytes each")
    out = []
    for symbol in in_maps:
        offset = symbol[4]
        if offset + MAP_DEF.size > len(data):
            raise ProbeFormatError(f"{name}: map symbol at offset {offset} is past the end of "
                                   "the maps section")
        kind, key, value, entries, flags, _inner, _numa = MAP_DEF.unpack_from(data, offset)
        out.append(MapDef(names(symbol[0]), offset, kind, key, value, entries, flags))
    return tuple(out)


def _symbol_names(elf: ELFFile, sections: list[Any]) -> Callable[[int], str]:
    symtab = next(s for s in sections if s["sh_type"] == "SHT_SYMTAB")
    strings = elf.get_section(symtab["sh_link"]).data()

    def name_at(offset: int) -> str:
        end = strings.find(b"\0", offset)
        return bytes(strings[offset:end if end >= 0 else len(strings)]).decode("utf-8", "replace")

    return name_at


def _relocations(sections: list[Any], symbols: list[tuple[int, ...]], offsets: dict[int, int],
                 name: str) -> dict[int, tuple[Relocation, ...]]:
    """Map relocations per program section index; only `.rel<program>` sections count."""
    out: dict[int, tuple[Relocation, ...]] = {}
    for section in sections:
        if section["sh_type"] != SHT_REL:
            continue
        target = section["sh_info"]
        if not 0 < target < len(sections) or \
                not sections[target].name.startswith(PROGRAM_PREFIXES):
            continue  # .rel.debug_*, .rel.BTF*, .rel.eh_frame: not for the kernel
        program = sections[target].name
        relocs = []
        data = section.data()
        for at in range(0, len(data) - REL.size + 1, REL.size):
            offset, info = REL.unpack_from(data, at)
            symbol_index, kind = info >> 32, info & 0xFFFFFFFF
            if kind != R_BPF_64_64:
                raise ProbeFormatError(f"{name}: {program}: relocation type {kind} at offset "
                                       f"{offset} (only R_BPF_64_64 map references load)")
            if symbol_index >= len(symbols) or symbols[symbol_index][4] not in offsets:
                raise ProbeFormatError(f"{name}: {program}: the relocation at offset {offset} "
                                       "refers to no map")
            if offset % INSN_SIZE:
                raise ProbeFormatError(f"{name}: {program}: relocation offset {offset} is "
                                       "not on an instruction")
            relocs.append(Relocation(offset // INSN_SIZE, offsets[symbols[symbol_index][4]]))
        out[target] = tuple(relocs)
    return out


def _check_relocated(program: Program, name: str) -> None:
    count = len(program.insns) // INSN_SIZE
    for reloc in program.relocations:
        if reloc.insn + 1 >= count or program.insns[reloc.insn * INSN_SIZE] != LD_IMM64:
            raise ProbeFormatError(f"{name}: {program.section}: the relocation on instruction "
                                   f"{reloc.insn} is not on an ld_imm64")
