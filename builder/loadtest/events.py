"""Capture real system call events with a loaded probe: the least of libscap's user space.

A probe loads without any of its tables filled; it only emits events once user
space has filled them, as libscap's BPF engine does (`scap_bpf.c`: settings,
syscall table, event and filler tables, tail calls at their filler ids, one
perf buffer per CPU). We do the minimum for one kind of event, in a way every
legacy driver version (Falco 0.30's libs to 9.1.0+driver) reads alike:

- `openat` gets a syscall table entry marked `UF_USED` whose enter *and* exit
  event type is `PPME_GENERIC_E`: every driver version's `sys_generic` filler
  writes that event with the same two parameters (the ppm syscall code, the
  native number), whereas `PPME_GENERIC_X` has one parameter up to 8.1.0+driver
  and two from 9.0.0+driver, which no DWARF says. 9.x's `sys_enter` only runs
  for `UF_USED` entries of a few calls, openat among them;
- every other system call keeps an empty entry: the probe reports it as a
  generic event flagged `UF_ALWAYS_DROP`, which the settings' `dropping_mode`
  (with `sampling_ratio` 1, so nothing else is sampled away) drops. The other
  tracepoints (`sched_switch`, `signal_deliver` ...) are dropped the same way
  or find no filler in the tail-call map;
- where the probe has them, `interesting_syscalls_table` (3.0.1+driver on)
  marks openat interesting, `syscall_code_routing_table` (up to 2.0.0+driver;
  later the entry's own `ppm_sc`) holds its ppm code, and the settings'
  `capture_enabled` (up to 3.0.1+driver) is set;
- the event table describes `PPME_GENERIC_E`, the filler table points it at
  `sys_generic`, the tail-call map holds `sys_generic` and `terminate_filler`;
- one BPF output perf event per CPU goes into `perf_map`, each mapped once.

Then a child process opens a file a known number of times, and we count the
events the probe wrote with that child's thread id, about openat. Bookworm's
sysdig 0.29.3 cannot do this on current Debian kernels: it maps each perf
buffer twice with MAP_FIXED so that the second mapping overlaps the first one's
header page, which the fix for CVE-2025-38563 refuses (ENOMEM, in Debian 6.1
since 6.1.148-1). A single mapping, read with wrap-around, needs no such trick.

The recipe (struct layouts, constants) is read on the host from the probe's
own DWARF (`capture_recipe`), so no table of a driver version is copied here:
a struct's name, its members and an enum's name changed between versions, and
the recipe takes whatever this probe has. Which optional maps a probe has is
read from its ELF in the VM. A probe whose DWARF lacks what is needed gets no
recipe and its events stay 0 ("not tried"). The capture runs in the VM
(`count_events`).
"""

from __future__ import annotations

import mmap
import os
import struct
import time
from pathlib import Path
from typing import Any

from builder.loadtest.bpf import PERF_TYPE_SOFTWARE, Bpf, BpfError, perf_attr

# Native syscall numbers of openat (the guest's `uname -m` picks one), and what a perf BPF
# output event is.
OPENAT = {"x86_64": 257, "aarch64": 56}
PERF_COUNT_SW_BPF_OUTPUT = 10
PERF_RECORD_SAMPLE = 9
PERF_PAGES = 64                 # data pages per CPU (256 KiB): plenty for a few events
PERF_HEAD = 1024                # offsetof(struct perf_event_mmap_page, data_head)
SNAPLEN = 80
OPENS = 3                       # openat calls the child makes: 2 events each
PARAM_LEN = 2                   # a parameter's length in an event: u16 (generic events)

# What the capture writes or reads, by each struct's name today (older names after it)
# and the members it uses; a member ending in "?" is one some driver versions lack.
STRUCTS = {
    "scap_bpf_settings": (("sysdig_bpf_settings",),
                          ("snaplen", "sampling_ratio", "dropping_mode", "capture_enabled?")),
    "syscall_evt_pair": ((), ("flags", "enter_event_type", "exit_event_type", "ppm_sc?")),
    "ppm_event_info": ((), ("nparams", "params")),
    "ppm_param_info": ((), ("type",)),
    "ppm_event_entry": ((), ("filler_id",)),
    "ppm_evt_hdr": ((), ("tid", "type", "nparams")),
}
# Enum constants, found by name in whichever enum holds them (enums were renamed and
# made anonymous over the versions: ppm_event_type, ppm_event_code, ppm_sc_code ...).
CONSTANTS = ("PPME_GENERIC_E", "PT_SYSCALLID", "PT_UINT16", "UF_USED",
             "PPM_FILLER_sys_generic", "PPM_FILLER_terminate_filler", "PPM_SC_OPENAT?")
MAPS = ("settings_map", "syscall_table", "event_info_table", "fillers_table", "tail_map",
        "perf_map")
FILLERS = ("sys_generic", "terminate_filler")


# --- host: the recipe, from the probe's DWARF ---------------------------------------------

def capture_recipe(path: Path) -> dict[str, Any] | None:
    """What count_events needs to know about this probe's types, or None if it cannot."""
    from elftools.common.exceptions import DWARFError, ELFError
    from elftools.elf.elffile import ELFFile

    try:
        with path.open("rb") as stream:
            elf = ELFFile(stream)
            if not elf.has_dwarf_info():
                return None
            structs, constants = _types(elf.get_dwarf_info(relocate_dwarf_sections=False))
    except (ELFError, DWARFError, OSError, KeyError, ValueError):
        return None
    return build_recipe(structs, constants)


def build_recipe(structs: dict[str, Any], constants: dict[str, int]) -> dict[str, Any] | None:
    """The recipe from a probe's struct layouts and enum constants; None if one is missing."""
    recipe: dict[str, Any] = {"structs": {}, "constants": {}}
    for name, (old_names, members) in STRUCTS.items():
        found = next((structs[n] for n in (name, *old_names) if n in structs), None)
        picked = _members(found, members) if found is not None else None
        if found is None or picked is None:
            return None
        recipe["structs"][name] = {"size": found["size"], "members": picked}
    for wanted in CONSTANTS:
        constant = wanted.rstrip("?")
        if constant not in constants and not wanted.endswith("?"):
            return None
        recipe["constants"][constant] = constants.get(constant, 0)
    return recipe


def _members(found: dict[str, Any], wanted: tuple[str, ...]) -> dict[str, list[int]] | None:
    """The wanted members' [offset, size] (optional ones only when present); None if short."""
    members = found["members"]
    if any(m not in members or not members[m][1] for m in wanted if not m.endswith("?")):
        return None
    return {m.rstrip("?"): list(members[m.rstrip("?")]) for m in wanted
            if m.rstrip("?") in members}


def _types(dwarf: Any) -> tuple[dict[str, Any], dict[str, int]]:
    """Named structs (size, member offsets and sizes) and every enum constant, from the
    top of each compile unit."""
    structs: dict[str, Any] = {}
    constants: dict[str, int] = {}
    names = {n for name, (old, _) in STRUCTS.items() for n in (name, *old)}
    for unit in dwarf.iter_CUs():
        for die in unit.get_top_DIE().iter_children():
            if die.tag == "DW_TAG_enumeration_type":
                constants.update({_name(c): c.attributes["DW_AT_const_value"].value
                                  for c in die.iter_children() if c.tag == "DW_TAG_enumerator"})
            elif die.tag == "DW_TAG_structure_type" and _name(die) in names and \
                    "DW_AT_byte_size" in die.attributes:
                structs.setdefault(_name(die), _struct(die))
    return structs, constants


def _struct(die: Any) -> dict[str, Any]:
    members = {_name(m): (m.attributes["DW_AT_data_member_location"].value,
                          _size(m.get_DIE_from_attribute("DW_AT_type")))
               for m in die.iter_children()
               if m.tag == "DW_TAG_member" and "DW_AT_data_member_location" in m.attributes}
    return {"size": die.attributes["DW_AT_byte_size"].value, "members": members}


def _size(die: Any) -> int:
    """Bytes of a type, through typedefs and qualifiers; an array's by its element count."""
    if "DW_AT_byte_size" in die.attributes:
        return int(die.attributes["DW_AT_byte_size"].value)
    if "DW_AT_type" not in die.attributes:
        return 0
    inner = _size(die.get_DIE_from_attribute("DW_AT_type"))
    return inner * _elements(die) if die.tag == "DW_TAG_array_type" else inner


def _elements(array: Any) -> int:
    count = 1
    for subrange in array.iter_children():
        if "DW_AT_count" in subrange.attributes:
            count *= subrange.attributes["DW_AT_count"].value
        elif "DW_AT_upper_bound" in subrange.attributes:
            count *= subrange.attributes["DW_AT_upper_bound"].value + 1
    return count


def _name(die: Any) -> str:
    attribute = die.attributes.get("DW_AT_name")
    return attribute.value.decode("utf-8", "replace") if attribute else ""


# --- guest: fill the tables, open the buffers, run a child, count its events ----------------

class Recipe:
    """A recipe's structs as bytes: packed from member values, read back from events."""

    def __init__(self, recipe: dict[str, Any]) -> None:
        self.structs = recipe["structs"]
        self.constants = recipe["constants"]

    def pack(self, name: str, **values: int) -> bytes:
        """`name` with these members set, the rest zero; members it lacks are left out."""
        layout = self.structs[name]
        out = bytearray(layout["size"])
        for member, value in values.items():
            if member in layout["members"]:
                offset, size = layout["members"][member]
                out[offset:offset + size] = value.to_bytes(size, "little")
        return bytes(out)

    def read(self, name: str, member: str, data: bytes, at: int = 0) -> int:
        offset, size = self.structs[name]["members"][member]
        return int.from_bytes(data[at + offset:at + offset + size], "little")

    def size(self, name: str) -> int:
        return int(self.structs[name]["size"])


Maps = dict[str, tuple[int, Any]]


def count_events(recipe: dict[str, Any], maps: Maps, programs: dict[str, int], bpf: Bpf,
                 *, machine: str = "") -> int:
    """Events the probe emits for a child's `openat` calls; raises BpfError or OSError.

    `maps` is name -> (fd, MapDef) of the loaded probe, `programs` filler name -> fd.
    """
    machine = machine or os.uname().machine
    if any(name not in maps for name in MAPS) or any(f not in programs for f in FILLERS) \
            or machine not in OPENAT:
        return 0
    layout, openat = Recipe(recipe), OPENAT[machine]
    fill_tables(layout, maps, programs, bpf, openat)
    buffers = _open_buffers(maps["perf_map"][0], bpf)
    try:
        _update(bpf, maps, "syscall_table", openat, openat_entry(layout, used=True))
        child = _opener()
        _update(bpf, maps, "syscall_table", openat, openat_entry(layout, used=False))
        return sum(_count(buffer, layout, child, openat) for _, buffer in buffers)
    finally:
        for fd, buffer in buffers:
            buffer.close()
            os.close(fd)


def fill_tables(layout: Recipe, maps: Maps, programs: dict[str, int], bpf: Bpf,
                openat: int) -> None:
    """Everything but openat's syscall table entry, which starts and stops the capture."""
    constant = layout.constants
    for filler in FILLERS:
        _update(bpf, maps, "tail_map", constant[f"PPM_FILLER_{filler}"],
                programs[filler].to_bytes(4, "little"))
    generic = constant["PPME_GENERIC_E"]
    _update(bpf, maps, "event_info_table", generic, generic_event_info(layout))
    _update(bpf, maps, "fillers_table", generic,
            layout.pack("ppm_event_entry", filler_id=constant["PPM_FILLER_sys_generic"]))
    for name, value in optional_entries(layout).items():
        if name in maps:
            _update(bpf, maps, name, openat, value.to_bytes(maps[name][1].value_size, "little"))
    _update(bpf, maps, "settings_map", 0, settings(layout))


def settings(layout: Recipe) -> bytes:
    """Capture on (where the probe has that switch), nothing sampled, UF_ALWAYS_DROP dropped."""
    return layout.pack("scap_bpf_settings", snaplen=SNAPLEN, sampling_ratio=1, dropping_mode=1,
                       capture_enabled=1)


def generic_event_info(layout: Recipe) -> bytes:
    """PPME_GENERIC_E's description: its two parameters, the ppm code and the native number."""
    constant = layout.constants
    info = bytearray(layout.pack("ppm_event_info", nparams=2))
    first = layout.structs["ppm_event_info"]["members"]["params"][0]
    for index, kind in enumerate((constant["PT_SYSCALLID"], constant["PT_UINT16"])):
        at = first + index * layout.size("ppm_param_info")
        param = layout.pack("ppm_param_info", type=kind)
        info[at:at + len(param)] = param
    return bytes(info)


def openat_entry(layout: Recipe, *, used: bool) -> bytes:
    """openat's syscall table entry: PPME_GENERIC_E both ways when used, else empty."""
    if not used:
        return bytes(layout.size("syscall_evt_pair"))
    constant = layout.constants
    return layout.pack("syscall_evt_pair", flags=constant["UF_USED"],
                       enter_event_type=constant["PPME_GENERIC_E"],
                       exit_event_type=constant["PPME_GENERIC_E"],
                       ppm_sc=constant["PPM_SC_OPENAT"])


def optional_entries(layout: Recipe) -> dict[str, int]:
    """openat's value in the maps only some driver versions have."""
    return {"interesting_syscalls_table": 1,
            "syscall_code_routing_table": layout.constants["PPM_SC_OPENAT"]}


def _update(bpf: Bpf, maps: Maps, name: str, key: int, value: bytes) -> None:
    """One u32-keyed map entry; a value of the wrong size means a wrong recipe."""
    fd, spec = maps[name]
    if len(value) != spec.value_size:
        raise OSError(f"{name}: the recipe gives {len(value)} bytes, the map holds "
                      f"{spec.value_size}")
    bpf.map_update(fd, key.to_bytes(4, "little"), value)


def _open_buffers(perf_map: int, bpf: Bpf) -> list[tuple[int, mmap.mmap]]:
    """One BPF output perf event per online CPU, in perf_map at its CPU, mapped once."""
    attr = perf_attr(PERF_TYPE_SOFTWARE, PERF_COUNT_SW_BPF_OUTPUT)
    out: list[tuple[int, mmap.mmap]] = []
    try:
        for cpu in sorted(os.sched_getaffinity(0)):
            fd = bpf.perf_event_open(attr, -1, cpu, -1, 0)
            try:
                size = (PERF_PAGES + 1) * mmap.PAGESIZE
                buffer = mmap.mmap(fd, size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
            except OSError:
                os.close(fd)
                raise
            out.append((fd, buffer))
            bpf.map_update(perf_map, struct.pack("<I", cpu), struct.pack("<I", fd))
    except (BpfError, OSError):
        for fd, buffer in out:
            buffer.close()
            os.close(fd)
        raise
    return out


def _opener(path: str = "/proc/self/status") -> int:
    """A child that opens `path` OPENS times and exits; returns its pid once it is gone."""
    pid = os.fork()
    if pid == 0:  # the child: nothing but the system calls we count
        try:
            for _ in range(OPENS):
                os.close(os.open(path, os.O_RDONLY))
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    time.sleep(0.05)  # let the last event land in the buffer
    return pid


def _count(buffer: mmap.mmap, layout: Recipe, tid: int, openat: int) -> int:
    """Events in one perf buffer that are thread `tid`'s openat (see is_openat_of)."""
    head, _tail, offset, size = struct.unpack_from("<QQQQ", buffer, PERF_HEAD)
    if not size:  # kernels before 4.1: data right after the header page
        offset, size = mmap.PAGESIZE, PERF_PAGES * mmap.PAGESIZE
    return sum(1 for raw in samples(bytes(buffer[offset:offset + size]), head)
               if is_openat_of(raw, layout, tid, openat))


def samples(data: bytes, head: int) -> list[bytes]:
    """The raw data of every PERF_RECORD_SAMPLE in a ring that has been written up to `head`."""
    out = []
    position = max(0, head - len(data))
    while position + 8 <= head:
        kind, _misc, length = struct.unpack("<IHH", _read(data, position, 8))
        if length < 8:
            break
        if kind == PERF_RECORD_SAMPLE and length >= 12:
            raw_size = struct.unpack("<I", _read(data, position + 8, 4))[0]
            out.append(_read(data, position + 12, min(raw_size, length - 12)))
        position += length
    return out


def is_openat_of(raw: bytes, layout: Recipe, tid: int, openat: int) -> bool:
    """Whether an event is a PPME_GENERIC_E of thread `tid` about openat: its header, and
    its two parameters (ppm code, native number) after their u16 lengths."""
    header = layout.size("ppm_evt_hdr")
    if len(raw) < header + 4 * PARAM_LEN:
        return False
    read = layout.read
    values = header + 2 * PARAM_LEN
    return (read("ppm_evt_hdr", "tid", raw) == tid
            and read("ppm_evt_hdr", "type", raw) == layout.constants["PPME_GENERIC_E"]
            and read("ppm_evt_hdr", "nparams", raw) == 2
            and int.from_bytes(raw[values:values + 2], "little") ==
            layout.constants["PPM_SC_OPENAT"]
            and int.from_bytes(raw[values + 2:values + 4], "little") == openat)


def _read(data: bytes, position: int, length: int) -> bytes:
    """`length` bytes of the ring at `position`, wrapping around its end."""
    start = position % len(data)
    chunk = data[start:start + length]
    return chunk + data[:length - len(chunk)]
