"""loadtest/probeelf.py: maps, programs and map relocations of real and broken probes.

The real probe is the session's one real compile (tests/helpers/realprobe.py); what the
loader reads is checked against what pyelftools says section by section, so a
wrong offset, a wrong map order or a relocation applied to the wrong
instruction shows up here rather than as a verifier error in a VM.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

import pytest
from elftools.elf.elffile import ELFFile
from elftools.elf.relocation import RelocationSection
from elftools.elf.sections import SymbolTableSection
from fakeprobe import EM_X86_64, make_fake_probe

from builder.loadtest.probeelf import (
    BPF_PSEUDO_MAP_FD,
    LD_IMM64,
    MAP_DEF,
    PERF_TRACEPOINT,
    RAW_TRACEPOINT,
    TAIL_CALL,
    ProbeFormatError,
    Program,
    read_probe,
)
from builder.shared.elfcheck import check_probe

# The e5c53d64 driver (Debian's falcosecurity-scap-dkms) declares these maps, in this order.
E5C53D64_MAPS = ("perf_map", "tail_map", "syscall_code_routing_table", "syscall_table",
                 "event_info_table", "fillers_table", "frame_scratch_map", "tmp_scratch_map",
                 "settings_map", "local_state_map")
BPF_MAP_TYPE_ARRAY, BPF_MAP_TYPE_PROG_ARRAY, BPF_MAP_TYPE_PERF_EVENT_ARRAY = 2, 3, 4


@pytest.mark.slow
def test_maps_come_from_the_legacy_section_in_symbol_order(real_probe: Path) -> None:
    probe = read_probe(real_probe)
    assert tuple(m.name for m in probe.maps) == E5C53D64_MAPS
    with real_probe.open("rb") as stream:
        elf = ELFFile(stream)
        maps_index = next(i for i, s in enumerate(elf.iter_sections()) if s.name == "maps")
        data = elf.get_section(maps_index).data()
        symtab = elf.get_section_by_name(".symtab")
        assert isinstance(symtab, SymbolTableSection)
        symbols = sorted((s for s in symtab.iter_symbols() if s["st_shndx"] == maps_index),
                         key=lambda s: s["st_value"])
    assert [s.name for s in symbols] == list(E5C53D64_MAPS)
    for spec, symbol in zip(probe.maps, symbols, strict=True):
        assert spec.offset == symbol["st_value"]
        fields = MAP_DEF.unpack_from(data, spec.offset)
        assert (spec.type, spec.key_size, spec.value_size, spec.max_entries, spec.flags) == \
            fields[:5]
    kinds = {m.name: m.type for m in probe.maps}
    assert kinds["perf_map"] == BPF_MAP_TYPE_PERF_EVENT_ARRAY
    assert kinds["tail_map"] == BPF_MAP_TYPE_PROG_ARRAY
    assert kinds["settings_map"] == BPF_MAP_TYPE_ARRAY
    # perf_map and the per-CPU scratch maps are sized by the loader: one entry per CPU.
    assert {m.name for m in probe.maps if m.max_entries == 0} == \
        {"perf_map", "frame_scratch_map", "tmp_scratch_map", "local_state_map"}


@pytest.mark.slow
def test_programs_are_the_tracepoint_sections(real_probe: Path) -> None:
    probe = read_probe(real_probe)
    checked = check_probe(real_probe)
    assert tuple(p.section for p in probe.programs) == checked.programs
    assert len(probe.programs) == 107
    assert probe.license == checked.license == "GPL"
    assert probe.kernel_release == checked.kernel_release
    attached = {p.event for p in probe.programs if not p.is_filler}
    assert {"sys_enter", "sys_exit", "sched_process_exit", "sched_switch"} <= attached
    fillers = [p for p in probe.programs if p.is_filler]
    assert len(fillers) == 100
    assert all(p.raw for p in probe.programs)
    assert {"sys_open_x", "terminate_filler"} <= {p.event for p in fillers}
    for program in probe.programs:
        assert len(program.insns) % 8 == 0 and program.insns


@pytest.mark.slow
def test_relocations_are_the_program_sections_map_references_only(real_probe: Path) -> None:
    probe = read_probe(real_probe)
    by_section = {p.section: p for p in probe.programs}
    expected: dict[str, list[tuple[int, str]]] = {}
    ignored = []
    with real_probe.open("rb") as stream:
        elf = ELFFile(stream)
        symtab = elf.get_section_by_name(".symtab")
        assert isinstance(symtab, SymbolTableSection)
        for section in elf.iter_sections():
            if not isinstance(section, RelocationSection):
                continue
            target = elf.get_section(section["sh_info"]).name
            if target not in by_section:
                ignored.append(section.name)
                continue
            expected[target] = [(r["r_offset"] // 8, symtab.get_symbol(r["r_info_sym"]).name)
                                for r in section.iter_relocations()]
    # Debug info and BTF carry relocations too; the kernel never sees them.
    assert {".rel.debug_info", ".rel.BTF", ".rel.BTF.ext"} <= set(ignored)
    names = [m.name for m in probe.maps]
    total = 0
    for program in probe.programs:
        got = [(r.insn, names[r.map_index]) for r in program.relocations]
        assert got == expected.get(program.section, [])
        total += len(got)
    assert total > 500


@pytest.mark.slow
def test_linking_points_each_map_reference_at_its_map_fd(real_probe: Path) -> None:
    probe = read_probe(real_probe)
    fds = [100 + i for i in range(len(probe.maps))]
    for program in probe.programs[:20]:
        linked = program.linked(fds)
        assert len(linked) == len(program.insns)
        relocated = {r.insn: r.map_index for r in program.relocations}
        for index in range(len(program.insns) // 8):
            before = program.insns[index * 8:index * 8 + 8]
            after = linked[index * 8:index * 8 + 8]
            if index not in relocated:
                assert after == before
                continue
            assert after[0] == before[0] == LD_IMM64
            assert after[1] >> 4 == BPF_PSEUDO_MAP_FD
            assert after[1] & 0x0F == before[1] & 0x0F  # the destination register is kept
            assert struct.unpack_from("<i", after, 4)[0] == fds[relocated[index]]
            assert after[2:4] == before[2:4]


@pytest.mark.parametrize(("options", "message"), [
    ({"machine": EM_X86_64}, "not a 64-bit little-endian eBPF object"),
    ({"programs": ()}, "no raw_tracepoint/ or tracepoint/ program sections"),
    ({}, "no symbol table"),
])
def test_objects_a_loader_cannot_use_are_refused(tmp_path: Path, options: dict[str, Any],
                                                 message: str) -> None:
    path = make_fake_probe(tmp_path / "probe.o", **options)
    with pytest.raises(ProbeFormatError, match=message):
        read_probe(path)


def test_not_an_elf_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "probe.o"
    path.write_bytes(b"<html>not found</html>")
    with pytest.raises(ProbeFormatError, match="not a readable ELF object"):
        read_probe(path)


def test_missing_file_is_bad_input(tmp_path: Path) -> None:
    with pytest.raises(Exception, match="cannot read"):
        read_probe(tmp_path / "nothing.o")


# Section names as the drivers write them, and what libscap does with each (its
# load_tracepoint): (section, is a filler, load type raw, attach, event, optional).
SECTIONS = [
    ("raw_tracepoint/sys_enter", False, True, RAW_TRACEPOINT, "sys_enter", False),
    ("raw_tracepoint/filler/sys_open_x", True, True, TAIL_CALL, "sys_open_x", False),
    # aarch64 and s390x probes of 8.x and 9.x: a second program on sched_process_fork
    ("raw_tracepoint/sched_process_fork&2", False, True, RAW_TRACEPOINT,
     "sched_process_fork", False),
    # aarch64 probes of drivers whose raw tracepoints were x86-only (the 2022 snapshot)
    ("tracepoint/raw_syscalls/sys_enter", False, False, PERF_TRACEPOINT,
     "raw_syscalls/sys_enter", False),
    ("tracepoint/filler/sys_autofill", True, False, TAIL_CALL, "sys_autofill", False),
    ("tracepoint/sched/sched_process_exit", False, False, PERF_TRACEPOINT,
     "sched/sched_process_exit", False),
    # x86-only tracepoints: skipped where the kernel has none, as libscap does
    ("tracepoint/exceptions/page_fault_user", False, False, PERF_TRACEPOINT,
     "exceptions/page_fault_user", True),
    ("tracepoint/exceptions/page_fault_kernel", False, False, PERF_TRACEPOINT,
     "exceptions/page_fault_kernel", True),
    ("raw_tracepoint/page_fault_user", False, True, RAW_TRACEPOINT, "page_fault_user", False),
]


@pytest.mark.parametrize(("section", "filler", "raw", "attach", "event", "optional"), SECTIONS)
def test_a_section_name_says_how_its_program_loads_and_attaches(
        section: str, filler: bool, raw: bool, attach: str, event: str, optional: bool) -> None:
    program = Program(section, b"", ())
    assert (program.is_filler, program.raw, program.attach, program.event, program.optional) \
        == (filler, raw, attach, event, optional)
